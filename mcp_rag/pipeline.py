"""The only module that wires stages together: settings + models + index -> search."""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from mcp_rag.embedding import Embedder, load_embedder
from mcp_rag.errors import IndexMismatchError, QueryError
from mcp_rag.fusion import rrf
from mcp_rag.models import resolve
from mcp_rag.settings import Settings
from mcp_rag.store import IndexReader
from mcp_rag.types import Hit

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "bm25", "dense"]
MODES: tuple[str, ...] = ("hybrid", "bm25", "dense")
FILTER_FIELDS = {
    "source": "a glob on the source path, e.g. '*/policies/*.md'",
    "doc_id_prefix": "documents whose id starts with this, e.g. 'policies/'",
}
MAX_QUERY_CHARS = 2000


@dataclass
class SearchResult:
    query: str
    mode: str
    hits: list[Hit]
    generation: int
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "query": self.query,
            "mode": self.mode,
            "generation": self.generation,
            "results": [h.to_dict() for h in self.hits],
            "timings_ms": self.timings_ms,
        }


def validate_query(query: str) -> str:
    if not isinstance(query, str) or not query.strip():
        raise QueryError("query is empty: pass the question or keywords to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(
            f"query of {len(query)} characters is over the limit of {MAX_QUERY_CHARS}; "
            f"shorten it to the question itself"
        )
    return query.strip()


class Pipeline:
    """Hybrid retrieval over one index. Thread-safe; reopens the index when it changes on disk."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        reader: IndexReader | None = None,
    ) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self.reader = reader if reader is not None else IndexReader(settings.index)
        want = self.reader.manifest["models"]["embedder"]["name"]
        if embedder is None:
            if want != settings.embedder:
                log.info("index %s was built with %s; using it for queries", settings.index, want)
            ref = resolve(want, settings.models, "embedder")
            embedder = load_embedder(
                ref, batch_size=settings.embed_batch_size, threads=settings.threads
            )
        if embedder.name != want:
            raise IndexMismatchError(
                f"the index was built with embedder {want!r}, but {embedder.name!r} was given"
            )
        self.embedder = embedder

    def refresh(self) -> bool:
        """Switch to the newest generation if another process wrote one. True if it switched."""
        if self.reader.is_current():
            return False
        with self._lock:
            if not self.reader.is_current():
                old = self.reader
                self.reader = IndexReader(self.settings.index)
                log.info("index generation %d -> %d", old.generation, self.reader.generation)
                return True
        return False

    def _allowed(self, reader: IndexReader, filters: Mapping[str, str] | None) -> np.ndarray | None:
        if not filters:
            return None
        unknown = set(filters) - set(FILTER_FIELDS)
        if unknown:
            raise QueryError(
                f"unknown filter field(s) {sorted(unknown)}; valid fields: "
                + "; ".join(f"{k}: {v}" for k, v in FILTER_FIELDS.items())
            )
        ok = np.ones(len(reader.doc_ids), dtype=bool)
        if src := filters.get("source"):
            ok &= np.array([fnmatch.fnmatch(s, src) for s in reader.doc_sources], dtype=bool)
        if prefix := filters.get("doc_id_prefix"):
            ok &= np.array([d.startswith(prefix) for d in reader.doc_ids], dtype=bool)
        return ok[reader.row_doc]

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: str = "hybrid",
        filters: Mapping[str, str] | None = None,
    ) -> SearchResult:
        """Hybrid (or single-retriever) search: the top ``k`` chunks, best first."""
        k = self.settings.k if k is None else k
        if not isinstance(k, int) or not 1 <= k <= 50:
            raise QueryError(f"k of {k} is out of range: choose 1..50")
        return self.retrieve(query, k, mode, filters)

    def retrieve(
        self,
        query: str,
        k: int,
        mode: str = "hybrid",
        filters: Mapping[str, str] | None = None,
    ) -> SearchResult:
        """``search`` without the bound on ``k`` (evaluation asks for 100 and more)."""
        s = self.settings
        query = validate_query(query)
        if mode not in MODES:
            raise QueryError(f"mode {mode!r} is unknown: choose one of {', '.join(MODES)}")
        reader = self.reader
        timings: dict[str, float] = {}
        allowed = self._allowed(reader, filters)
        n = max(s.candidates, k * s.max_chunks_per_doc)
        bm25_rows = dense_rows = np.zeros(0, dtype=np.int64)
        bm25_scores: dict[int, float] = {}
        dense_scores: dict[int, float] = {}
        if mode == "bm25" or (mode == "hybrid" and s.bm25_weight > 0):
            t = time.perf_counter()
            bm25_rows, sc = reader.bm25.search(query, n, allowed)
            bm25_scores = dict(zip(bm25_rows.tolist(), sc.tolist(), strict=True))
            timings["bm25"] = (time.perf_counter() - t) * 1000
        if mode == "dense" or (mode == "hybrid" and s.dense_weight > 0):
            t = time.perf_counter()
            qv = self.embedder.embed_query(query)
            timings["embed_query"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            rows = None if allowed is None else np.flatnonzero(allowed)
            dense_rows, sc = reader.dense.search(qv, n, rows)
            dense_scores = dict(zip(dense_rows.tolist(), sc.tolist(), strict=True))
            timings["dense"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        bm25_rank = {r: i + 1 for i, r in enumerate(bm25_rows.tolist())}
        dense_rank = {r: i + 1 for i, r in enumerate(dense_rows.tolist())}
        if mode == "hybrid":
            fused = rrf(
                {"bm25": bm25_rows.tolist(), "dense": dense_rows.tolist()},
                k=s.rrf_k,
                weights={"bm25": s.bm25_weight, "dense": s.dense_weight},
            )
        else:
            scores = bm25_scores if mode == "bm25" else dense_scores
            fused = list(scores.items())
        timings["fusion"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        # Cap chunks per document, and fetch only the rows that make the cut.
        picked: list[tuple[int, float]] = []
        per_doc: dict[int, int] = {}
        for row, score in fused:
            d = int(reader.row_doc[row])
            if per_doc.get(d, 0) < s.max_chunks_per_doc:
                per_doc[d] = per_doc.get(d, 0) + 1
                picked.append((row, score))
                if len(picked) == k:
                    break
        chunks = reader.chunks([r for r, _ in picked])
        hits = [
            Hit(
                chunk=c,
                score=float(score),
                bm25_rank=bm25_rank.get(row),
                dense_rank=dense_rank.get(row),
                bm25_score=bm25_scores.get(row),
                dense_score=dense_scores.get(row),
            )
            for (row, score), c in zip(picked, chunks, strict=True)
        ]
        timings["fetch"] = (time.perf_counter() - t) * 1000
        timings["total"] = sum(timings.values())
        return SearchResult(
            query=query,
            mode=mode,
            hits=hits,
            generation=reader.generation,
            timings_ms={k_: round(v, 3) for k_, v in timings.items()},
        )
