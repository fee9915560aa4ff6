"""Documents a client adds as text (``add_document``): what an agent wants to keep.

Each is one record of a ``.jsonl`` file of its own in the index folder's ``added/``
(``{"_id": "added/<slug>", "title", "text"}``), indexed like any file: searched, quoted and
cited as ``rag://documents/added/<slug>``. The id comes from the title, so adding a document
with a title already used replaces that document. Files under ``added/`` are written
atomically and only by this module; watching and ``sync`` never prune them (they lie outside
the folders those scan).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from mcp_rag.errors import QueryError
from mcp_rag.index.store import atomic_write_text
from mcp_rag.limits import MAX_ADDED_CHARS, MAX_ADDED_DOCS, MAX_TITLE_CHARS
from mcp_rag.retrieve.pipeline import Pipeline

FOLDER = "added"  # in the index folder; also the doc ids' prefix


def slug(title: str) -> str:
    """``"Release checklist (v2)"`` -> ``release-checklist-v2``: ASCII, at most 60 characters;
    a title with no letter or digit has none (the caller refuses it)."""
    ascii_ = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")[:60].strip("-")


@dataclass
class Added:
    """What adding or removing did."""

    doc_id: str
    replaced: bool  # a document with this id was there before (now replaced or removed)
    chunks: int  # passages embedded (add) or 0 (remove)
    generation: int | None


class AddedDocuments:
    """The documents added through the tools, for one index."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.folder = Path(pipeline.settings.index) / FOLDER

    def _file(self, doc_id: str) -> Path:
        name = doc_id.removeprefix(f"{FOLDER}/")
        if name == doc_id or not name or slug(name) != name:
            raise QueryError(f"{doc_id!r} is not a document added with add_document (their "
                             f"ids start with '{FOLDER}/'): only those can be removed here")
        return self.folder / f"{name}.jsonl"

    def add(self, title: str, text: str, source: str | None = None,
            collection: str | None = None) -> Added:
        """Index ``text`` as the document ``added/<slug of title>`` (replacing one of that
        title); ``source``, where the text came from, is kept as its last line."""
        title, text = title.strip(), text.strip()
        if not text:
            raise QueryError("text is empty: give the document's text")
        if not slug(title):
            raise QueryError(f"title {title!r} needs a letter or digit: it names the document")
        if len(title) > MAX_TITLE_CHARS or len(text) > MAX_ADDED_CHARS:
            raise QueryError(f"too long: a title holds at most {MAX_TITLE_CHARS:,} characters "
                             f"and a text {MAX_ADDED_CHARS:,}; split the text into documents")
        doc_id = f"{FOLDER}/{slug(title)}"
        path = self._file(doc_id)
        replaced = path.exists()
        if not replaced and self.folder.exists() and sum(
                1 for _ in self.folder.glob("*.jsonl")) >= MAX_ADDED_DOCS:
            raise QueryError(f"{MAX_ADDED_DOCS:,} documents are added already: remove some "
                             f"with remove_document first")
        body = text + (f"\n\nSource: {source.strip()}" if source and source.strip() else "")
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"_id": doc_id, "title": title, "text": body},
                                           ensure_ascii=False) + "\n")
        rep = self.pipeline.indexer().index([path], roots=[self.folder], quiet=True,
                                            collection=collection)
        self.pipeline.refresh()
        return Added(doc_id, replaced, rep.embedded_chunks + rep.reused_chunks, rep.generation)

    def remove(self, doc_id: str) -> Added:
        """Remove the added document ``doc_id`` from the index and from ``added/``."""
        path = self._file(doc_id)
        if not path.exists():
            raise QueryError(f"no added document {doc_id!r}: list_collections and search "
                             f"show what there is")
        rep = self.pipeline.indexer().remove([doc_id])
        path.unlink()
        self.pipeline.refresh()
        return Added(doc_id, True, 0, rep.generation)
