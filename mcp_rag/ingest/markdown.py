"""Markdown to plain text with heading paths: the text a chunk's span points into."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.common.utils import normalizeReference

from mcp_rag.ingest.admonitions import KINDS, kind
from mcp_rag.ingest.admonitions import title as admonition_title

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MD_RULE = re.compile(r"^ {0,3}([-*_])(\s*\1){2,}\s*$")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_MD_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_MD_LIST = re.compile(r"^(\s*)(?:[-*+]|\d{1,9}[.)])\s+(\[[ xX]\]\s+)?")
_MD_QUOTE = re.compile(r"^\s*(>\s?)+")
_MD_REFDEF = re.compile(r"^ {0,3}\[([^\]]+)\]:\s+(\S+)")
# Containers that MkDocs (Python-Markdown, pymdown-extensions) and MyST write around
# prose: an admonition, "!!! note" or "!!! tip \"Title\"", collapsible with "???"; a
# content tab, '=== "Linux"'; their content indented four spaces. Read as written, the
# content was a code block and the marker a line of text. Each reads as its title (the
# quoted one, else the kind: "Note") on the line above its content, dedented: a term over
# its description, as HTML's admonition titles are.
_MD_ADMONITION = re.compile(
    r'^( *)(?:!!!|\?\?\?\+?)[ \t]+([\w-]+)(?:[ \t]+[\w-]+)*(?:[ \t]+"([^"]*)")?[ \t]*$')
_MD_TAB = re.compile(r'^( *)===[+!]?[ \t]+"([^"]*)"[ \t]*$')
# pymdown-extensions' blocks, "/// note | Title" ... "///", their content not indented
_MD_BLOCK = re.compile(r"^ {0,3}///[ \t]+([\w-]+)(?:[ \t]*\|[ \t]*(.*?))?[ \t]*$")
_MD_BLOCK_END = re.compile(r"^ {0,3}///[ \t]*$")
# MyST's admonitions: a fence of backticks or colons whose info is a directive,
# "```{note}" or ":::{warning} Title", with options (":class: dropdown") first
_MYST = re.compile(r"^ {0,3}(`{3,}|:{3,})\{([\w-]+)\}[ \t]*(.*?)[ \t]*$")
_MYST_OPTION = re.compile(r"^ *:[\w-]+:")
# A MyST role, {ref}`the title <a-label>`, {issue}`9475`: its text, the title without its
# target; a code span is passed over whole ("`${name}`" holds no role)
_MYST_ROLE = re.compile(r"\{([a-z][\w:.-]*)\}`([^`]*?)(?:\s*<[^<>`]+>)?`|(`+).+?\3")
_MYST_NAMED = {"pep": "PEP ", "rfc": "RFC "}  # as Sphinx shows them: "PEP 508"
# A quote that is a note: GitHub's alerts, "> [!WARNING]", and the bold label many write,
# "> **Note**" or "> **Note:**" (Docker's reference); read as the title over the quote
_MD_ALERT = re.compile(r"^ {0,3}>[ \t]*(?:\[!(note|tip|important|warning|caution)\]|"
                       r"\*\*(note|tip|important|warning|caution|danger|hint)(?::\*\*|\*\*:?))"
                       r"[ \t]*$", re.I)
_MD_QUOTE_BLANK = re.compile(r"^ {0,3}>[ \t]*$")
# A MyST target, "(requirement-specifiers)=" on the line above a heading: no text
_MYST_TARGET = re.compile(r"^ {0,3}\([^()]+\)=[ \t]*$")
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


def _closes(line: str, fence: str) -> bool:
    """``line`` closes a fence opened with ``fence``: only its character, at least as many
    (CommonMark)."""
    bare = line.strip()
    return len(bare) >= len(fence) and bare == fence[0] * len(bare)


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
    if "}`" in line:
        line = _MYST_ROLE.sub(lambda m: m.group() if m.group(1) is None
                              else _MYST_NAMED.get(m.group(1), "") + m.group(2), line)
    if "|" in line and line.strip().startswith("|"):
        line = " | ".join(c.strip() for c in _cells(line) if c.strip())
    return _md_inline(line, refs).rstrip()


def _dedent_block(lines: list[str], i: int, indent: int) -> int | None:
    """The lines after ``lines[i]`` indented past ``indent`` by four (blank lines between
    them included), dedented by four in place; the index of the first that is not blank,
    or None when there is none (nothing is changed then)."""
    j = i + 1
    while j < len(lines) and (not lines[j].strip()
                              or len(lines[j]) - len(lines[j].lstrip(" ")) >= indent + 4):
        j += 1
    first = next((k for k in range(i + 1, j) if lines[k].strip()), None)
    for k in range(i + 1, j):
        lines[k] = lines[k][:indent] + lines[k][indent + 4:] if lines[k].strip() else ""
    return first


def _container(lines: list[str], i: int) -> tuple[str | None, int] | None:
    """When ``lines[i]`` opens an admonition or a content tab (``_MD_ADMONITION``,
    ``_MD_TAB``) with content under it, a quoted note (``_MD_ALERT``), or a MyST
    admonition (``_MYST``) or a pymdown-extensions block (``_MD_BLOCK``) that closes: its
    title (None: asked for
    none, ``!!! note ""``) and the line its content starts at, ``lines`` rewritten in
    place (the content dedented, a closing fence blanked; never spliced, so a page of
    many notes costs no more than one of few). None otherwise: "!!! Do not run this in
    production" with nothing indented under it is a line of text."""
    line = lines[i]
    m = _MD_ALERT.match(line)
    if m:  # the quote goes on under it, past an empty quote line
        nxt = i + 2 if i + 1 < len(lines) and _MD_QUOTE_BLANK.match(lines[i + 1]) else i + 1
        return (m.group(1) or m.group(2)).capitalize(), nxt
    m = _MYST.match(line)
    if m and m.group(2) in KINDS:  # fenced: closed by its fence, not indented
        j = i + 1
        while j < len(lines) and not _closes(lines[j], m.group(1)):
            j += 1
        if j == len(lines):
            return None
        named, opening = admonition_title(m.group(2), m.group(3))
        k = i + 1
        while k < j and _MYST_OPTION.match(lines[k]):
            k += 1
        lines[j] = ""
        if opening:  # "```{warning} Never run it as root.": the content's first line
            k -= 1
            lines[k] = opening
        return named, k
    m = _MD_ADMONITION.match(line) or _MD_TAB.match(line)
    if m:
        if m.re is _MD_TAB:
            title: str | None = m.group(2)
        else:
            title = kind(m.group(2)) if m.group(3) is None else m.group(3)
        start = _dedent_block(lines, i, len(m.group(1)))
        return None if start is None else ((title or None), start)
    m = _MD_BLOCK.match(line)
    if m is None:
        return None
    j = i + 1
    while j < len(lines) and not _MD_BLOCK_END.match(lines[j]):
        j += 1
    if j == len(lines):
        return None
    lines[j] = ""
    return (m.group(2) or kind(m.group(1))), i + 1


def parse_markdown(raw: str, fallback_title: str) -> tuple[str, str, tuple[tuple[int, str], ...]]:
    """Markdown to plain text; headings stay in the text and become section metadata.

    Fenced code becomes an indented block (four spaces), as HTML's ``<pre>`` does, so a
    sentence that introduces it is kept with it. A fence closes at a line of at least as
    many of its characters (a four-backtick fence holds three-backtick ones). Admonitions
    and content tabs (MkDocs, MyST) read as their title on the line above their content
    (``_container``).

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

    def titled(title: str | None) -> None:  # a container's title, above its content
        if title:
            if out and out[-1] != "":
                emit("")
            emit(_md_inline(title, refs).strip())

    while i < len(lines):
        line = lines[i]
        if fence is not None:
            if _closes(line, fence):
                fence = None
            else:  # code is an indented block in the text, as chunking reads it
                emit(f"    {line}" if line.strip() else "")
            i += 1
            continue
        opened = _container(lines, i)
        if opened is not None:
            titled(opened[0])
            i = opened[1]
            continue
        m = _MD_FENCE.match(line)
        if m:
            fence = m.group(1)
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
        if _MD_RULE.match(line) or _MD_TABLE_SEP.match(line) or _MD_REFDEF.match(line) \
                or _MYST_TARGET.match(line):
            i += 1
            continue
        emit(_plain(line, refs))
        i += 1
    return "\n".join(out).strip("\n"), title or fallback_title, tuple(sections)
