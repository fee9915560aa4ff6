"""Markdown to plain text with heading paths: the text a chunk's span points into."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.common.utils import normalizeReference

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MD_RULE = re.compile(r"^ {0,3}([-*_])(\s*\1){2,}\s*$")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_MD_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_MD_LIST = re.compile(r"^(\s*)(?:[-*+]|\d{1,9}[.)])\s+(\[[ xX]\]\s+)?")
_MD_QUOTE = re.compile(r"^\s*(>\s?)+")
_MD_REFDEF = re.compile(r"^ {0,3}\[([^\]]+)\]:\s+(\S+)")
# Inline markup (code spans, links, emphasis, entities, escapes, inline HTML) is read by
# markdown-it-py, a CommonMark parser: a code span keeps what it holds as written
# (`<src>`, `map[string][]string`, `--format=<value>`), where stripping "HTML tags" and
# brackets line by line lost every placeholder in a command. Lines without a markup
# character skip the parser (most lines: faster than the regexes it replaces).
_MD = MarkdownIt("commonmark", {"html": True}).enable("strikethrough")
_MARKUP = re.compile(r"[\[\]`*_<>&\\!~]")
# A table cell ends at a pipe outside a code span (`<true|false>` is one cell).
_MD_CELL = re.compile(r"(`+).*?\1|\\\||[^|`\\]+|[`\\|]")


def _md_inline(line: str, refs: dict[str, dict[str, str]] | None = None) -> str:
    """One line's text without its inline markup: a link's or image's text (``refs``: the
    document's link reference definitions, for ``[text][label]``), a code span's content
    as written, entities decoded, inline HTML tags dropped."""
    if not _MARKUP.search(line):
        return line
    out: list[str] = []
    for t in _MD.parseInline(line, {"references": refs or {}})[0].children or ():
        if t.type in ("text", "code_inline"):
            out.append(t.content)
        elif t.type == "image":  # its alt text
            out.append("".join(c.content for c in t.children or ()))
        elif t.type in ("softbreak", "hardbreak"):
            out.append(" ")
    return "".join(out)


def _cells(row: str) -> list[str]:
    """A table row's cells: split at the pipes outside code spans."""
    cells: list[str] = []
    cell: list[str] = []
    for m in _MD_CELL.finditer(row.strip().strip("|")):
        if m.group(0) == "|":
            cells.append("".join(cell))
            cell = []
        else:
            cell.append(m.group(0))
    return [*cells, "".join(cell)]


def _front_matter(lines: list[str]) -> tuple[str, int]:
    """The title in YAML front matter (or ""), and the line the body starts at."""
    if not lines or lines[0].strip() != "---":
        return "", 0
    for j in range(1, min(len(lines), 200)):
        if lines[j].strip() in ("---", "..."):
            title = ""
            for fm in lines[1:j]:
                m = re.match(r"^title:\s*['\"]?(.*?)['\"]?\s*$", fm)
                if m:
                    title = m.group(1)
            return title, j + 1
    return "", 0


def _references(lines: list[str]) -> dict[str, dict[str, str]]:
    """The link reference definitions (``[label]: url``) of a document, as markdown-it
    looks them up."""
    refs: dict[str, dict[str, str]] = {}
    for line in lines:
        m = _MD_REFDEF.match(line)
        if m:
            refs.setdefault(normalizeReference(m.group(1)), {"href": m.group(2), "title": ""})
    return refs


def _plain(line: str, refs: dict[str, dict[str, str]]) -> str:
    """One body line without its quote and list markers, table pipes and inline markup."""
    line = _MD_QUOTE.sub("", line)
    line = _MD_LIST.sub(r"\1", line)
    if "|" in line and line.strip().startswith("|"):
        line = " | ".join(c.strip() for c in _cells(line) if c.strip())
    return _md_inline(line, refs).rstrip()


def parse_markdown(raw: str, fallback_title: str) -> tuple[str, str, tuple[tuple[int, str], ...]]:
    """Markdown to plain text; headings stay in the text and become section metadata.

    Fenced code becomes an indented block (four spaces), as HTML's ``<pre>`` does, so a
    sentence that introduces it is kept with it.

    A section is the heading path, e.g. ``Refund policy > Conditions``.
    """
    lines = raw.split("\n")
    title, i = _front_matter(lines)
    refs = _references(lines)
    out: list[str] = []
    pos = 0
    sections: list[tuple[int, str]] = []
    path: list[tuple[int, str]] = []  # (level, heading)
    fence: str | None = None

    def emit(text: str) -> None:
        nonlocal pos
        if text == "" and (not out or out[-1] == ""):
            return  # one blank line separates paragraphs; more add nothing
        out.append(text)
        pos += len(text) + 1

    def heading(level: int, text: str) -> None:
        nonlocal title
        text = _md_inline(text, refs).strip()
        if not text:
            return
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, text))
        if level == 1 and not title:
            title = text
        if out and out[-1] != "":
            emit("")
        sections.append((pos, " > ".join(h for _, h in path)))
        emit(text)
        emit("")

    while i < len(lines):
        line = lines[i]
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            else:  # code is an indented block in the text, as chunking reads it
                emit(f"    {line}" if line.strip() else "")
            i += 1
            continue
        m = _MD_FENCE.match(line)
        if m:
            fence = m.group(1)[0] * 3
            i += 1
            continue
        m = _MD_HEADING.match(line)
        if m:
            heading(len(m.group(1)), m.group(2))
            i += 1
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and _MD_SETEXT.match(nxt) and not _MD_LIST.match(line):
            heading(1 if nxt.strip().startswith("=") else 2, line.strip())
            i += 2
            continue
        if _MD_RULE.match(line) or _MD_TABLE_SEP.match(line) or _MD_REFDEF.match(line):
            i += 1
            continue
        emit(_plain(line, refs))
        i += 1
    return "\n".join(out).strip("\n"), title or fallback_title, tuple(sections)
