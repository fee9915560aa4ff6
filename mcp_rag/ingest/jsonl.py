"""BEIR corpora (``corpus.jsonl``): one document a line, ids kept."""

from __future__ import annotations

import json
from pathlib import Path

from mcp_rag.ingest.text import INVISIBLE, content_hash, read_text_file, strip_controls
from mcp_rag.types import Document


def parse_jsonl(path: Path, root: str) -> tuple[list[Document], list[str]]:
    """A BEIR corpus: one ``{"_id", "title", "text"}`` object a line; ids are kept.

    A record with a title and no text (CACM's 1,617 title-only papers) is its title: it is
    found and quoted by it, instead of being left without a passage.
    """
    docs: list[Document] = []
    warnings: list[str] = []
    seen: set[str] = set()
    raw = read_text_file(path)
    for n, line in enumerate(raw.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            warnings.append(f"{path}:{n}: not JSON ({e.msg}); line skipped")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            warnings.append(f'{path}:{n}: needs "_id" and a string "text"; line skipped')
            continue
        if not isinstance(obj.get("_id"), str | int) or isinstance(obj["_id"], bool) or not str(
            obj["_id"]
        ).strip():
            warnings.append(f'{path}:{n}: "_id" must be a non-empty string or a number, not '
                            f'{json.dumps(obj.get("_id"))}; line skipped')
            continue
        doc_id = str(obj["_id"])
        if doc_id in seen:
            warnings.append(f"{path}:{n}: duplicate _id {doc_id!r}; line skipped")
            continue
        seen.add(doc_id)
        title = INVISIBLE.sub("", strip_controls(str(obj.get("title") or "")))
        text = INVISIBLE.sub("", strip_controls(obj["text"]))
        if not text.strip():
            text = title
        docs.append(
            Document(
                doc_id=doc_id,
                source=str(path),
                title=title,
                text=text,
                root=root,
                format="jsonl",
                content_hash=content_hash(title, text),
            )
        )
    return docs, warnings
