"""reStructuredText: the text as written, with its section titles found by docutils.

The stored text is the file's own (so a citation quotes what the author wrote, markup
and all); docutils parses it only to find where each section starts and its title path.
Directives that read other files or pass raw output through are off: parsing a file
never reads another one. If docutils cannot parse it, the file is indexed as plain text.
"""

from __future__ import annotations

import logging

from mcp_rag.types import Sections

log = logging.getLogger(__name__)

RST_EXTS = {".rst", ".rest"}
_SAFE = {
    "report_level": 5, "halt_level": 5, "warning_stream": False, "file_insertion_enabled": False,
    "raw_enabled": False, "_disable_config": True, "input_encoding": "unicode",
}


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def parse_rst(raw: str, fallback_title: str) -> tuple[str, str, Sections]:
    """(text, title, sections): ``raw`` unchanged, the document title, section starts."""
    try:
        from docutils import nodes
        from docutils.core import publish_doctree

        tree = publish_doctree(raw, settings_overrides=_SAFE)
    except Exception as e:  # docutils gave up: the words are still worth indexing
        log.info("reStructuredText not parsed (%s: %s); indexed as plain text",
                 type(e).__name__, e)
        return raw, fallback_title, ()
    lines = raw.split("\n")
    starts = _line_starts(raw)
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
        sections.append((starts[at], " > ".join([*path, name])))
    return raw, title or fallback_title, tuple(sorted(sections))


def _ancestors(sec, nodes):
    p = sec.parent
    while p is not None and isinstance(p, nodes.section):
        yield p
        p = p.parent
