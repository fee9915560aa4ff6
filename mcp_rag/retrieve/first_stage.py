"""The first stage: BM25 and dense candidates, fused, capped per document, fetched.

``first_stage`` runs on one open generation; fusions are chosen by name from ``FUSIONS``.
Each retriever returns ``n`` chunks; capped per document they may hold fewer than ``k``
documents (evaluation asks for 100 documents at one chunk each), so it looks deeper,
doubling ``n``, until ``k`` are found or the index runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp_rag.index.generation import coverage
from mcp_rag.index.scope import key_terms
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve.fusion import choose, convex, rrf
from mcp_rag.retrieve.result import SearchResult
from mcp_rag.settings import Settings
from mcp_rag.types import Chunk, Embedder, Hit, Mode

if TYPE_CHECKING:
    from mcp_rag.index.backend import Generation


@dataclass
class Lists:
    """What each retriever returned: rows in rank order and their scores."""

    bm25_rows: list[int] = field(default_factory=list)
    bm25_scores: dict[int, float] = field(default_factory=dict)
    dense_rows: list[int] = field(default_factory=list)
    dense_scores: dict[int, float] = field(default_factory=dict)


def _convex(lists: Lists, s: Settings) -> list[tuple[int, float]]:
    w = s.fusion_dense_weight
    return convex({"bm25": lists.bm25_scores, "dense": lists.dense_scores},
                  {"bm25": 1.0 - w, "dense": w})


def _rrf(lists: Lists, s: Settings) -> list[tuple[int, float]]:
    return rrf({"bm25": lists.bm25_rows, "dense": lists.dense_rows}, k=s.rrf_k,
               weights={"bm25": s.bm25_weight, "dense": s.dense_weight})


# Hybrid fusions by name (Settings.fusion).
FUSIONS: dict[str, Callable[[Lists, Settings], list[tuple[int, float]]]] = {
    "convex": _convex,
    "rrf": _rrf,
}


class _Clock:
    """Milliseconds per stage, added up over the look-deeper rounds."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def add(self, stage: str, since: float) -> None:
        self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - since) * 1000


def _lists(reader: Generation, query: str, qv: Any, n: int, allowed: Any, bm25: bool,
           clock: _Clock) -> Lists:
    out = Lists()
    if bm25:
        t = time.perf_counter()
        rows, sc = reader.lexical(query, n, allowed)
        out.bm25_rows = rows.tolist()
        out.bm25_scores = dict(zip(out.bm25_rows, sc.tolist(), strict=True))
        clock.add("bm25", t)
    if qv is not None:
        t = time.perf_counter()
        rows, sc = reader.nearest(qv, n, allowed)
        out.dense_rows = rows.tolist()
        out.dense_scores = dict(zip(out.dense_rows, sc.tolist(), strict=True))
        clock.add("dense", t)
    return out


# The share of a hybrid score that BM25 gives, by fusion.
BM25_SHARE: dict[str, Callable[[Settings], float]] = {
    "convex": lambda s: 1.0 - s.fusion_dense_weight,
    "rrf": lambda s: s.bm25_weight / (s.bm25_weight + s.dense_weight),
}


def _fuse(lists: Lists, mode: Mode, s: Settings, n_embedded: int | None = None
          ) -> list[tuple[int, float]]:
    """The fused list; rows from ``n_embedded`` on (a first index still being embedded)
    have no vector, so BM25's score is their whole score rather than its share of it."""
    if mode != "hybrid":
        return list((lists.bm25_scores if mode == "bm25" else lists.dense_scores).items())
    fused = choose(FUSIONS, s.fusion, "fusion")(lists, s)
    if n_embedded is None:
        return fused
    share = BM25_SHARE[s.fusion](s)
    if share <= 0:
        return fused
    fused = [(row, score / share if row >= n_embedded else score) for row, score in fused]
    return sorted(fused, key=lambda rs: -rs[1])  # stable: ties keep the fusion's order


def _capped(reader: Generation, fused: list[tuple[int, float]], k: int,
            per_doc_max: int) -> list[tuple[int, float]]:
    """The first ``k`` of ``fused`` with at most ``per_doc_max`` chunks a document."""
    picked: list[tuple[int, float]] = []
    per_doc: dict[int, int] = {}
    doc_of = dict(zip((r for r, _ in fused), reader.doc_of([r for r, _ in fused]), strict=True))
    for row, score in fused:
        d = doc_of[row]
        if per_doc.get(d, 0) < per_doc_max:
            per_doc[d] = per_doc.get(d, 0) + 1
            picked.append((row, score))
            if len(picked) == k:
                break
    return picked


# At most this many of a query's first picks are embedded on the spot (the depth the
# cross-encoder reads by default; ~0.1 s of bge-small on 2 cores).
EMBED_NOW = 10


def _embed_missing(embedder: Embedder, qv: Any, picked: list[tuple[int, float]],
                   chunks: list[Chunk], n_embedded: int) -> dict[int, float]:
    """The dense similarity of the picked rows that have no vector yet (a first index
    still being embedded), embedded now as the index will embed them: the answerability
    decision then weighs the passages it would quote as it will once they have vectors,
    rather than with no dense evidence at all (with none, it answered more questions from
    other fields: research/partial_coverage.py)."""
    missing = [(row, c) for (row, _), c in zip(picked[:EMBED_NOW], chunks, strict=False)
               if row >= n_embedded]
    if not missing:
        return {}
    # One text a call: the embedder's latency path. A list would go to its bulk worker
    # threads, behind every passage the indexer has queued there (in `serve --watch`, a
    # batch of thousands: the first version's searches waited up to a minute).
    return {row: float(embedder.embed_documents([index_text(c)])[0] @ qv)
            for row, c in missing}


def first_stage(
    reader: Generation, embedder: Embedder, s: Settings, query: str, k: int, mode: Mode,
    filters: Mapping[str, str] | None,
) -> SearchResult:
    """The top ``k`` chunks of ``reader`` for ``query`` by ``mode``, before reranking."""
    clock = _Clock()
    allowed = reader.restrict(filters)
    use_bm25 = mode == "bm25" or (mode == "hybrid" and s.bm25_weight > 0)
    use_dense = mode == "dense" or (mode == "hybrid" and s.dense_weight > 0)
    qv = None
    if use_dense:
        t = time.perf_counter()
        qv = embedder.embed_query(query)
        clock.add("embed_query", t)
    partial = reader.n_embedded < reader.n_chunks  # a first index still being embedded
    n = max(s.candidates, k * s.max_chunks_per_doc)
    while True:
        lists = _lists(reader, query, qv, n, allowed, use_bm25, clock)
        t = time.perf_counter()
        fused = _fuse(lists, mode, s, reader.n_embedded if partial else None)
        clock.add("fusion", t)
        picked = _capped(reader, fused, k, s.max_chunks_per_doc)
        if len(picked) >= k or n >= reader.n_chunks:
            break
        n = min(2 * n, reader.n_chunks)
    t = time.perf_counter()
    bm25_rank = {r: i + 1 for i, r in enumerate(lists.bm25_rows)}
    dense_rank = {r: i + 1 for i, r in enumerate(lists.dense_rows)}
    chunks = reader.chunks([r for r, _ in picked])
    clock.add("fetch", t)
    dense_scores = lists.dense_scores
    if qv is not None and partial:
        t = time.perf_counter()
        dense_scores = {**dense_scores, **_embed_missing(
            embedder, qv, picked, chunks, reader.n_embedded)}
        clock.add("embed_missing", t)
    hits = [
        Hit(chunk=c, score=float(score), bm25_rank=bm25_rank.get(row),
            dense_rank=dense_rank.get(row), bm25_score=lists.bm25_scores.get(row),
            dense_score=dense_scores.get(row))
        for (row, score), c in zip(picked, chunks, strict=True)
    ]
    timings = clock.ms
    timings["total"] = sum(timings.values())
    return SearchResult(
        query=query, mode=mode, hits=hits, generation=reader.generation,
        timings_ms={key: round(v, 3) for key, v in timings.items()},
        terms=tuple(key_terms(query, reader)), n_chunks=reader.n_chunks,
        calibration=reader.calibration,
        nearest=max(dense_scores.values()) if dense_scores else None,
        coverage=coverage(reader), query_vector=qv,
    )
