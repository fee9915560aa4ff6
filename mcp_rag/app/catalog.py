"""What is indexed, read without any model: status, collections, documents, passages and
completions. The CLI's model-free commands and the server's read tools and resources use
it; ``RagService`` (which has the models) keeps one over the same open index.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

from mcp_rag.app.schemas import (
    DOCUMENTS,
    MAX_NEIGHBORS,
    MAX_READ_CHARS,
    ChunkOutput,
    ChunkView,
    CollectionsOutput,
    DocumentOutput,
    StatusOutput,
    document_uri,
)
from mcp_rag.errors import MCPRagError, QueryError
from mcp_rag.index.generation import coverage
from mcp_rag.index.handle import IndexHandle
from mcp_rag.index.indexer import Indexer
from mcp_rag.index.store import read_last_run
from mcp_rag.index.update import RunReport
from mcp_rag.models.pack import MULTILINGUAL, english_only
from mcp_rag.settings import Settings
from mcp_rag.types import Chunk, Document

if TYPE_CHECKING:
    from mcp_rag.index.backend import Generation


def language_note(languages: dict[str, int] | None, embedder: str,
                  reranker: str | None) -> str | None:
    """What to say when a tenth or more of the passages are not English and the models
    are the pack's English-only ones; None otherwise."""
    total = sum((languages or {}).values())
    other = total - (languages or {}).get("en", 0)
    english = [m for m in (embedder, reranker) if m is not None and english_only(m)]
    if not total or other < 0.1 * total or not english:
        return None
    mix = ", ".join(f"{lang} {n / total:.0%}" for lang, n in sorted(
        (languages or {}).items(), key=lambda x: -x[1]) if lang != "en")
    return (f"{other / total:.0%} of the passages are not in English ({mix}); "
            f"{' and '.join(english)} {'was' if len(english) == 1 else 'were'} trained on "
            f"English only: keyword search (BM25) handles those languages, meaning-based "
            f"search, reranking and the 'not in your documents' decision poorly (a "
            f"question in Chinese, Japanese or Korean is judged by its words alone). With "
            f"the Hugging "
            f"Face Hub reachable, choose "
            f"multilingual models, e.g. MCP_RAG_EMBEDDER={MULTILINGUAL['embedder']} (extra "
            f"[st]; then index with --rebuild) and MCP_RAG_RERANKER="
            f"{MULTILINGUAL['reranker']} (not checked by this project).")


def index_status(
    reader: Generation, reranker: str | None = None, reranker_error: str | None = None
) -> StatusOutput:
    """What is indexed in ``reader``'s generation, and what the last indexing run did."""
    m = reader.manifest
    last = read_last_run(reader.index_dir) or {}
    return StatusOutput(
        index=str(reader.index_dir), docs=m.counts.docs, chunks=m.counts.chunks,
        embedded=reader.n_embedded,
        coverage=round(coverage(reader), 4),
        generation=m.generation, created_at=m.created_at, embedder=m.embedder.name,
        embedder_dim=m.embedder.dim, chunking=asdict(m.chunking), dense_index=m.dense_index,
        roots=list(m.roots), reranker=reranker, reranker_error=reranker_error,
        collections={n: d for n, (d, _) in reader.collections().items()},
        last_run={**last, "skipped": len(last.get("skipped", []))} if last else {},
        calibration=reader.calibration,
        languages=dict(sorted((m.counts.languages or {}).items(), key=lambda x: -x[1])),
        ocr_pages=m.counts.ocr_pages or 0,
        language_note=language_note(m.counts.languages, m.embedder.name, reranker),
    )


class Catalog:
    """The documents and passages of one index, and what it is; no model is loaded.

    Example:
        >>> Catalog.open(Settings.load(index="notes")).collections().collections[0].name
        'default'
    """

    def __init__(self, handle: IndexHandle) -> None:
        self.handle = handle

    @classmethod
    def open(cls, settings: Settings) -> Catalog:
        """The catalog of the index at ``settings.index`` (IndexNotFoundError if none)."""
        return cls(IndexHandle(settings))

    def close(self) -> None:
        self.handle.close()

    def remove(self, targets: Sequence[str]) -> RunReport:
        """Remove documents by id, id prefix ending in '/', or source path (no model needed),
        and read the new generation from then on."""
        report = Indexer(self.handle.settings).remove(targets)
        self.handle.refresh()
        return report

    def doc_ids(self) -> list[str]:
        """Every document id, sorted."""
        with self.handle.current() as r:
            return list(r.doc_ids)

    def sample_chunks(self, n: int, rng: random.Random) -> list[Chunk]:
        """``n`` passages drawn by ``rng`` (all of them, in random order, when there are
        fewer): queries any index can answer are made from them (``mcp-rag bench``)."""
        with self.handle.current() as r:
            return r.chunks(rng.sample(range(r.n_chunks), min(n, r.n_chunks)))

    def status(self, reranker: str | None = None,
               reranker_error: str | None = None) -> StatusOutput:
        """What is indexed and what the last run did (with the reranker, when one is loaded)."""
        self.handle.refresh()
        return index_status(self.handle.reader, reranker, reranker_error)

    def documents(self, after: str | None = None, limit: int | None = None) -> list[dict]:
        """The indexed documents in id order (after ``after``, at most ``limit``)."""
        with self.handle.current() as r:
            return r.documents(after, limit)

    def document(self, doc_id: str) -> Document | None:
        """A whole document, or None."""
        with self.handle.current() as r:
            return r.document(doc_id)

    def chunk(self, chunk_id: str) -> Chunk | None:
        """One passage, or None."""
        with self.handle.current() as r:
            return r.chunk_by_id(chunk_id)

    def get_document(self, doc_id: str, start: int = 0, end: int | None = None) -> DocumentOutput:
        """A document's text from ``start`` to ``end``, at most MAX_READ_CHARS at a time."""
        if start < 0 or (end is not None and end < start):
            raise QueryError(f"start {start} and end {end} are not a range: 0 <= start <= end")
        with self.handle.current() as r:
            doc = r.document(doc_id)
        if doc is None:
            raise QueryError(f"no document {doc_id!r}: take ids from search results, or list "
                             f"them at {DOCUMENTS}")
        n = len(doc.text)
        limit = n if end is None else min(end, n)
        start = min(start, limit)
        stop = min(limit, start + MAX_READ_CHARS)
        return DocumentOutput(
            doc_id=doc.doc_id, uri=document_uri(doc.doc_id), source=doc.source,
            title=doc.title, format=doc.format, length=n, span=[start, stop],
            text=doc.text[start:stop], next_start=stop if stop < limit else None,
            sections=[[at, label] for at, label in doc.sections if start <= at < stop],
        )

    def get_chunk(self, chunk_id: str, neighbors: int = 0) -> ChunkOutput:
        """A passage and up to ``neighbors`` passages either side of it in its document."""
        if not 0 <= neighbors <= MAX_NEIGHBORS:
            raise QueryError(f"neighbors of {neighbors} is out of range: choose 0..{MAX_NEIGHBORS}")
        with self.handle.current() as r:
            c = r.chunk_by_id(chunk_id)
            if c is None:
                raise QueryError(f"no passage {chunk_id!r}: take chunk ids from search results")
            near = r.doc_chunks(c.doc_id, c.chunk_no - neighbors, c.chunk_no + neighbors)
            doc = r.document(c.doc_id)
        lo, hi = near[0].start, max(x.end for x in near)
        return ChunkOutput(
            chunk=ChunkView.of(c),
            before=[ChunkView.of(x) for x in near if x.chunk_no < c.chunk_no],
            after=[ChunkView.of(x) for x in near if x.chunk_no > c.chunk_no],
            context=doc.text[lo:hi] if doc is not None else c.text,
            context_span=[lo, hi] if doc is not None else [c.start, c.end],
        )

    def complete_doc_ids(self, prefix: str, limit: int = 100) -> tuple[list[str], int]:
        """Document ids starting with ``prefix`` (at most ``limit``), and how many there are."""
        try:
            self.handle.refresh()
            ids = self.handle.reader.doc_ids  # sorted
        except MCPRagError:
            return [], 0
        lo = bisect.bisect_left(ids, prefix)
        hi = bisect.bisect_left(ids, prefix + "\U0010ffff")
        return ids[lo:min(hi, lo + limit)], hi - lo

    def complete_chunk_ids(self, prefix: str, limit: int = 100) -> tuple[list[str], int]:
        """Passage ids starting with ``prefix``: ``doc_id#`` for each matching document
        until ``prefix`` names one document and its ``#``, then that document's passages."""
        doc_id, hash_, _ = prefix.rpartition("#")
        if not hash_:
            docs, total = self.complete_doc_ids(prefix, limit)
            return [d + "#" for d in docs], total
        try:
            with self.handle.current() as r:
                chunks = r.doc_chunks(doc_id, 0, 1 << 30)
        except MCPRagError:
            return [], 0
        ids = [c.chunk_id for c in chunks if c.chunk_id.startswith(prefix)]
        return ids[:limit], len(ids)

    def collections(self) -> CollectionsOutput:
        """The named collections with their document and chunk counts."""
        with self.handle.current() as r:
            return CollectionsOutput.of(r.collections())

    def complete_collections(self, prefix: str) -> tuple[list[str], int]:
        try:
            names = [c.name for c in self.collections().collections if c.name.startswith(prefix)]
        except MCPRagError:
            return [], 0
        return names[:100], len(names)
