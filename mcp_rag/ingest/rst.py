"""reStructuredText: the text as written, with its section titles found by docutils.

The stored text is the file's own (so a citation quotes what the author wrote, markup
and all) but for admonitions: ".. note::" and its content indented under it read as
"Note" on the line above the content, dedented (``_admonitions``), as HTML's admonitions
do; indented, the content was a code block. docutils parses the file only to find where
each section starts and its title path. Directives that read other files or pass raw
output through are off: parsing a file never reads another one. If docutils cannot parse
it, the file is indexed as plain text (its admonitions read as above).
"""

from __future__ import annotations

import logging
import re

from mcp_rag.ingest.admonitions import KINDS
from mcp_rag.ingest.admonitions import title as admonition_title
from mcp_rag.types import Sections

log = logging.getLogger(__name__)

RST_EXTS = {".rst", ".rest"}
_SAFE = {
    "report_level": 5, "halt_level": 5, "warning_stream": False, "file_insertion_enabled": False,
    "raw_enabled": False, "_disable_config": True, "input_encoding": "unicode",
}


# A directive, its name and what follows it on its line; those that wrap prose are
# ``admonitions.KINDS``
_DIRECTIVE = re.compile(r"^( *)\.\.[ \t]+([\w-]+)::[ \t]*(.*?)[ \t]*$")
_OPTION = re.compile(r"^ *:[\w-]+:")  # a directive's option, ":class: tip"
_LITERAL = re.compile(r"::[ \t]*$")  # what follows a line ending so is a literal block


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(lines: list[str], i: int, indent: int) -> int:
    """Where the block indented past ``indent`` after ``lines[i]`` ends (its trailing blank
    lines are the document's)."""
    j = i + 1
    while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > indent):
        j += 1
    while j > i + 1 and not lines[j - 1].strip():
        j -= 1
    return j


def _admonitions(lines: list[str]) -> tuple[list[str], list[int]]:
    """``lines`` with each admonition read as its title over its content, dedented; and
    where each of ``lines`` is in the result (a line dropped: where the next one is).
    The content of a literal block ("Example::") or of any other directive is left as
    written, an admonition shown in it included."""
    out: list[str] = []
    where: list[int] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _DIRECTIVE.match(line)
        if m is None or m.group(2) not in KINDS:
            where.append(len(out))
            out.append(line)
            end = _block_end(lines, i, _indent(line)) \
                if _LITERAL.search(line) or line.lstrip().startswith("..") else i + 1
            for k in range(i + 1, end):  # a literal block, or another directive's content
                where.append(len(out))
                out.append(lines[k])
            i = end
            continue
        lead, name, arg = m.group(1), m.group(2), m.group(3)
        end = _block_end(lines, i, len(lead))
        body = lines[i + 1:end]
        title, first = admonition_title(name, arg)
        start = 0  # its options, and the blank lines between the title and the content
        while start < len(body) and (_OPTION.match(body[start])
                                     or not (first or body[start].strip())):
            start += 1
        inner = [ln for ln in body[start:] if ln.strip()]
        cut = min((_indent(ln) for ln in inner), default=0) - len(lead)
        dedented = [lead + ln[len(lead) + cut:] if ln.strip() else "" for ln in body[start:]]
        nested, inside = _admonitions(dedented)
        head = len(out)
        out.append(lead + title)
        if first:
            out.append(lead + first)
        where.append(head)
        where.extend([len(out)] * start)  # options and blank lines before the content
        where.extend(len(out) + k for k in inside)
        out.extend(nested)
        i = end
    return out, where


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def parse_rst(raw: str, fallback_title: str) -> tuple[str, str, Sections]:
    """(text, title, sections): ``raw`` as written but for its admonitions
    (``_admonitions``), the document title, section starts."""
    lines = raw.split("\n")
    read, where = _admonitions(lines)
    text = "\n".join(read)
    try:
        from docutils import nodes
        from docutils.core import publish_doctree

        tree = publish_doctree(raw, settings_overrides=_SAFE)
    except Exception as e:  # docutils gave up: the words are still worth indexing
        log.info("reStructuredText not parsed (%s: %s); indexed as plain text",
                 type(e).__name__, e)
        return text, fallback_title, ()
    starts = _line_starts(text)
    title = str(tree.get("title") or "").strip()
    sections: list[tuple[int, str]] = []
    for sec in tree.findall(nodes.section):
        head = sec[0] if len(sec) and isinstance(sec[0], nodes.title) else None
        if head is None or not head.line:
            continue
        name = head.astext().strip()
        # docutils gives the line after the title (its underline); look back for the text
        at = next((i for i in range(head.line - 1, max(head.line - 4, -1), -1)
                   if i < len(lines) and lines[i].strip() == name), head.line - 2)
        if not 0 <= at < len(lines):
            continue
        path = [p[0].astext().strip() for p in reversed(list(_ancestors(sec, nodes)))]
        if title:
            path.insert(0, title)
        sections.append((starts[where[at]], " > ".join([*path, name])))
    return text, title or fallback_title, tuple(sorted(sections))


def _ancestors(sec, nodes):
    p = sec.parent
    while p is not None and isinstance(p, nodes.section):
        yield p
        p = p.parent
