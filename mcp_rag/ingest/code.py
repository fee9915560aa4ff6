"""Source code: the file as written, with a section at each function, class and method.

tree-sitter parses the file with the language's grammar (one small wheel per language);
each definition starts a section named by its qualified name (``Parser.parse``), so a
chunk never runs from the end of one function into the next, and the name is part of
what the retrievers see. Decorators, ``export`` and ``template<>`` belong to the
definition they wrap. Without a grammar the file is indexed as plain text.
"""

from __future__ import annotations

import bisect
import importlib
import itertools
import logging
from typing import Any

from mcp_rag.errors import NotIndexed
from mcp_rag.types import Sections

log = logging.getLogger(__name__)

_JS = ("tree_sitter_javascript", "language")
_CPP = ("tree_sitter_cpp", "language")
# suffix -> (grammar module, function returning the language)
GRAMMARS = {
    ".py": ("tree_sitter_python", "language"),
    ".js": _JS, ".mjs": _JS, ".cjs": _JS, ".jsx": _JS,
    ".ts": ("tree_sitter_typescript", "language_typescript"),
    ".tsx": ("tree_sitter_typescript", "language_tsx"),
    ".go": ("tree_sitter_go", "language"),
    ".rs": ("tree_sitter_rust", "language"),
    ".java": ("tree_sitter_java", "language"),
    ".c": ("tree_sitter_c", "language"), ".h": ("tree_sitter_c", "language"),
    ".cpp": _CPP, ".cc": _CPP, ".cxx": _CPP, ".hpp": _CPP, ".hh": _CPP, ".hxx": _CPP,
}
CODE_EXTS = set(GRAMMARS)

# Node types (of any of the grammars) that define something worth a section of its own.
DEFINITIONS = {
    # Python
    "function_definition", "class_definition",
    # JavaScript / TypeScript
    "function_declaration", "generator_function_declaration", "class_declaration",
    "abstract_class_declaration", "method_definition", "interface_declaration",
    "type_alias_declaration", "enum_declaration", "internal_module",
    # Go
    "method_declaration", "type_declaration",
    # Rust
    "function_item", "impl_item", "struct_item", "enum_item", "trait_item", "mod_item",
    "macro_definition",
    # Java
    "record_declaration", "constructor_declaration",
    # C / C++
    "struct_specifier", "union_specifier", "enum_specifier", "class_specifier",
    "namespace_definition", "type_definition",
}
# Wrappers whose inner definition is named, but whose start (decorators...) is the section's.
WRAPPERS = {"decorated_definition", "export_statement", "template_declaration"}
# `const f = () => ...`: a variable holding a function is a function.
VARIABLES = {"lexical_declaration", "variable_declaration"}
FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function"}
MAX_DEPTH = 6  # how deep definitions nest before we stop looking (tree depth, not code)
_NAME_TYPES = {"identifier", "field_identifier", "type_identifier", "qualified_identifier",
               "destructor_name", "operator_name", "property_identifier", "scoped_identifier",
               "namespace_identifier"}

_parsers: dict[str, Any] = {}


def _parser(ext: str) -> Any:
    """The tree-sitter parser for a suffix (made once per process), or None."""
    if ext not in _parsers:
        try:
            from tree_sitter import Language, Parser

            module, fn = GRAMMARS[ext]
            _parsers[ext] = Parser(Language(getattr(importlib.import_module(module), fn)()))
        except (ImportError, AttributeError, ValueError) as e:
            log.info("no tree-sitter grammar for %s (%s): indexed as plain text", ext, e)
            _parsers[ext] = None
    return _parsers[ext]


def _descendants(node: Any) -> Any:
    for c in node.named_children:
        yield c
        yield from _descendants(c)


def _name(node: Any) -> str | None:
    """A definition's name: its ``name`` field, or the identifier its declarator holds."""
    if node.type == "method_declaration" and (recv := node.child_by_field_name("receiver")):
        # Go: func (s *Server) Start() is Server.Start
        own = next((n for n in _descendants(recv) if n.type == "type_identifier"), None)
        name = node.child_by_field_name("name")
        if own is not None and name is not None:
            return f"{own.text.decode('utf-8', 'replace')}.{name.text.decode('utf-8', 'replace')}"
    for field in ("name", "type"):  # Rust's impl_item names its type
        n = node.child_by_field_name(field)
        if n is not None and n.type in _NAME_TYPES | {"generic_type"}:
            return n.text.decode("utf-8", "replace")
    if node.type == "type_declaration":  # Go: type_declaration > type_spec > name
        spec = next((c for c in node.named_children if c.type == "type_spec"), None)
        return _name(spec) if spec is not None else None
    d = node.child_by_field_name("declarator")
    while d is not None:
        if d.type in _NAME_TYPES:
            return d.text.decode("utf-8", "replace")
        d = d.child_by_field_name("declarator") or d.child_by_field_name("name")
    return None


def _function_variable(node: Any) -> tuple[str, Any] | None:
    """(name, value) of ``const f = () => ...``, else None."""
    for d in node.named_children:
        if d.type == "variable_declarator":
            value = d.child_by_field_name("value")
            name = d.child_by_field_name("name")
            if value is not None and name is not None and value.type in FUNCTION_VALUES:
                return name.text.decode("utf-8", "replace"), value
    return None


def definitions(root: Any) -> list[tuple[int, str]]:
    """(start byte, qualified name) of every definition, in order."""
    found: list[tuple[int, str]] = []

    def walk(node: Any, path: tuple[str, ...], depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        for child in node.named_children:
            start, inner = child.start_byte, child
            while inner.type in WRAPPERS:  # @decorator / export / template<>: the inside
                nxt = inner.child_by_field_name("definition") or inner.child_by_field_name(
                    "declaration") or next(
                    (c for c in reversed(inner.named_children)
                     if c.type in DEFINITIONS | WRAPPERS | VARIABLES), None)
                if nxt is None:
                    break
                inner = nxt
            named = None
            if inner.type in DEFINITIONS:
                named = _name(inner)
            elif inner.type in VARIABLES and (fv := _function_variable(inner)):
                named, inner = fv
            if named:
                found.append((start, ".".join([*path, named])))
                walk(inner, (*path, named), depth + 1)
            else:
                walk(inner, path, depth + 1)

    walk(root, (), 0)
    return found


# A source file with a line this long was written by a program for a program (a minified
# bundle, Sphinx's searchindex.js, a generated table): no one asks about it, and its
# thousands of chunks of packed identifiers crowd out the pages people wrote.
MINIFIED_LINE = 5_000


def parse_code(raw: str, ext: str, fallback_title: str) -> tuple[str, str, Sections]:
    """(text, title, sections) of a source file: ``raw`` unchanged, a section per
    definition (the code before the first one is untitled).

    Raises:
        NotIndexed: the file is minified or generated (a line over ``MINIFIED_LINE``).
    """
    longest = max(map(len, raw.split("\n")))
    if longest > MINIFIED_LINE:
        raise NotIndexed(f"minified or generated code (a line of {longest:,} characters), "
                         "not indexed")
    parser = _parser(ext)
    if parser is None:
        return raw, fallback_title, ()
    data = raw.encode("utf-8", "surrogatepass")
    defs = definitions(parser.parse(data).root_node)
    if raw.isascii():
        to_char = lambda b: b  # noqa: E731 - bytes are characters
    else:  # byte offset -> character offset
        ends = list(itertools.accumulate(len(ch.encode("utf-8", "surrogatepass")) for ch in raw))
        to_char = lambda b: bisect.bisect_right(ends, b)  # noqa: E731
    sections: list[tuple[int, str]] = []
    for start, name in defs:
        at = to_char(start)
        if sections and sections[-1][0] == at:  # two names for one place: keep the outer
            continue
        sections.append((at, name))
    return raw, fallback_title, tuple(sections)
