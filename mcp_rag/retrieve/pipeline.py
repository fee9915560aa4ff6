"""The only module that wires stages together: settings + models + index -> search."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mcp_rag.errors import IndexMismatchError, IndexNotFoundError, MCPRagError, QueryError
from mcp_rag.index.backend import backend_for
from mcp_rag.index.scope import Term, key_terms
from mcp_rag.index.store import missing_index
from mcp_rag.ingest.chunking import index_text
from mcp_rag.models.embedding import UnavailableEmbedder, load_embedder
from mcp_rag.models.pack import resolve
from mcp_rag.models.rerank import load_reranker, relevance, token_starts
from mcp_rag.retrieve.answerability import Decision, decide
from mcp_rag.retrieve.focus import PAIR_SPECIALS, windows
from mcp_rag.retrieve.fusion import blend, convex, interpolate, rrf
from mcp_rag.settings import Settings
from mcp_rag.types import Embedder, Hit, Mode, Reranker, RerankStatus

if TYPE_CHECKING:
    from mcp_rag.index.backend import Generation
    from mcp_rag.index.indexer import Indexer

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 2000


@dataclass
class SearchResult:
    """Hits in their final order; ``Hit.score`` is the score of that order."""

    query: str
    mode: Mode
    hits: list[Hit]
    generation: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    rerank_status: RerankStatus = RerankStatus.NOT_REQUESTED
    rerank_reason: str | None = None  # why the cross-encoder did not (fully) run, in words
    no_answer: bool = False  # nothing cleared the relevance floor
    closest: list[Hit] = field(default_factory=list)  # when no_answer: best hits under the floor
    best_score: float | None = None  # best cross-encoder logit seen
    reranker: str | None = None
    terms: tuple[Term, ...] = ()  # the query's content words and their document frequency
    n_chunks: int = 0
    calibration: dict | None = None  # the index generation's answerability calibration
    nearest: float | None = None  # the question's similarity to its nearest chunk (dense)
    decision: Decision | None = None  # does the index hold the answer (when reranked)

    @property
    def reranked(self) -> bool:
        return self.rerank_status is RerankStatus.RERANKED


def validate_query(query: str) -> str:
    if not isinstance(query, str) or not query.strip():
        raise QueryError("query is empty: pass the question or keywords to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(
            f"query of {len(query)} characters is over the limit of {MAX_QUERY_CHARS}; "
            f"shorten it to the question itself"
        )
    return query.strip()


def _open(settings: Settings, require_index: bool) -> Generation | None:
    """The current generation at ``index``; None (with a warning) if there is none yet.

    With ``require_index`` False a damaged index is logged and left for each query to
    report (with the command that repairs it), so a server starts on it and says so.
    """
    index = settings.index
    try:
        return backend_for(settings).open()
    except MCPRagError as e:
        if require_index:
            raise
        if isinstance(e, IndexNotFoundError):
            log.warning("no index at %s yet: searches say so until one exists", index)
        else:
            log.error("%s", e)
        return None


def _load_reranker(s: Settings, spec: str, max_length: int) -> tuple[Reranker | None, str | None]:
    """Load a cross-encoder; on failure keep serving first-stage results and say why."""
    try:
        ref = resolve(spec, s.models, "reranker")
        return (
            load_reranker(
                ref,
                max_length=max_length,
                max_query_tokens=min(s.rerank_max_query_tokens, max_length // 2),
                threads=s.threads,
            ),
            None,
        )
    except Exception as e:  # any failure to load must not take the server down
        reason = f"reranker {spec!r} failed to load: {type(e).__name__}: {e}"
        log.error("%s; serving first-stage results", reason)
        return None, reason


class Pipeline:
    """Hybrid retrieval over one index. Thread-safe; reopens the index when it changes on disk.

    ``Pipeline(...)`` takes models that are loaded already; ``Pipeline.from_settings``
    loads them (once per process) and is what the CLI and the server call.
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        reranker: Reranker | None = None,
        cascade: Reranker | None = None,
        *,
        rerank_error: str | None = None,
        reader: Generation | None = None,
        require_index: bool = True,
    ) -> None:
        """
        Args:
            settings: ranking settings, and the index folder to open when ``reader`` is None.
            embedder: embeds queries; must be the model that built the index.
            reranker: the cross-encoder, or None to serve first-stage results.
            cascade: an optional cheaper cross-encoder that trims candidates first.
            rerank_error: why there is no reranker although settings ask for one.
            reader: an open index generation (default: the current one at settings.index).
            require_index: raise IndexNotFoundError when there is no index yet; when False,
                searches say so until one is built.
        """
        self.settings = settings
        self._lock = threading.Lock()
        self._reader = reader if reader is not None else _open(settings, require_index)
        if self._reader is not None and self._reader.manifest.embedder.name != embedder.name:
            raise IndexMismatchError(
                f"the index was built with embedder {self._reader.manifest.embedder.name!r}, "
                f"but {embedder.name!r} was given"
            )
        self.embedder = embedder
        self.reranker = reranker
        self.cascade = cascade if reranker is not None else None
        if settings.rerank and reranker is None and rerank_error is None:
            rerank_error = "no cross-encoder was loaded"
        self.rerank_error = rerank_error

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
        require_index: bool = True,
        require_models: bool = True,
    ) -> Pipeline:
        """Load the models ``settings`` name (those not given) and open the index.

        The query embedder is the one that built the index, whatever ``settings.embedder``
        says; a cross-encoder that fails to load leaves the pipeline serving first-stage
        results with the reason in ``rerank_error``. With ``require_models`` False an
        embedder that fails to load is replaced by one that answers every use with the
        reason (a server starts and says what to run, instead of exiting).
        """
        reader = _open(settings, require_index)
        if embedder is None:
            want = reader.manifest.embedder.name if reader is not None else settings.embedder
            if want != settings.embedder:
                log.info("index %s was built with %s; using it for queries", settings.index, want)
            try:
                ref = resolve(want, settings.models, "embedder")
                embedder = load_embedder(
                    ref, batch_size=settings.embed_batch_size, threads=settings.threads
                )
            except MCPRagError as e:
                if require_models:
                    raise
                log.error("%s", e)
                embedder = UnavailableEmbedder(
                    want, f"the embedder is not loaded: {e} Then restart the server."
                )
        error = cascade = None
        if settings.rerank and reranker is None:
            reranker, error = _load_reranker(
                settings, settings.reranker, settings.rerank_max_length
            )
        if settings.cascade_reranker and reranker is not None:
            cascade, err = _load_reranker(
                settings, settings.cascade_reranker, settings.cascade_max_length
            )
            if err:
                log.error("cascade disabled: %s", err)
        return cls(
            settings, embedder, reranker, cascade, rerank_error=error, reader=reader,
            require_index=require_index,
        )

    def fingerprint(self) -> dict:
        """Everything besides the query and its parameters that decides a result."""
        s = self.settings
        return {
            "embedder": self.embedder.name,
            "reranker": self.reranker.name if self.reranker is not None else None,
            "cascade": self.cascade.name if self.cascade is not None else None,
            "generation": self.reader.generation,
            "index": str(Path(s.index).resolve()),
            "backend": s.backend,
            "settings": {f: getattr(s, f) for f in s.RESULT_FIELDS},
        }

    @property
    def reader(self) -> Generation:
        """The open index generation; IndexNotFoundError (naming the fix) if there is none."""
        if self._reader is None:
            self.refresh()
        if self._reader is None:
            raise missing_index(self.settings.index)
        return self._reader

    @contextlib.contextmanager
    def current(self) -> Iterator[Generation]:
        """The newest generation (switched to first if another process wrote one), held
        open for the block even if a newer one switches in meanwhile."""
        self.refresh()
        with self.reader.in_use() as reader:
            yield reader

    def indexer(self) -> Indexer:
        """Indexing into this pipeline's index with its embedder (the server's tools and
        watch), loaded already."""
        from mcp_rag.index.indexer import Indexer

        return Indexer(self.settings, self.embedder)

    def refresh(self) -> bool:
        """Switch to the newest generation if another process wrote one. True if it switched.

        Cheap (one small file read) when nothing changed, so it can run before every query.
        """
        current = self._reader
        if current is not None and current.is_current():
            return False
        with self._lock:
            if self._reader is not current:
                return True  # another thread switched already
            try:
                new = backend_for(self.settings).open()
            except IndexNotFoundError:
                return False
            want = new.manifest.embedder.name
            if want != self.embedder.name:
                new.close()
                raise IndexMismatchError(
                    f"the index at {self.settings.index} was rebuilt with embedder {want!r}; "
                    f"this process has {self.embedder.name!r} loaded: restart it"
                )
            self._reader = new
            if current is not None:
                current.retire()  # closed now, or when the last query using it ends
            log.info(
                "index generation %s -> %d",
                current.generation if current else "none",
                new.generation,
            )
            return True

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: Mode | str = Mode.HYBRID,
        filters: Mapping[str, str] | None = None,
        rerank: bool | None = None,
        candidates: int | None = None,
    ) -> SearchResult:
        """First stage (hybrid by default), then the cross-encoder: the top ``k`` chunks."""
        s = self.settings
        k = s.k if k is None else k
        if not isinstance(k, int) or not 1 <= k <= 50:
            raise QueryError(f"k of {k} is out of range: choose 1..50")
        n = s.rerank_candidates if candidates is None else candidates
        if not isinstance(n, int) or not 1 <= n <= 200:
            raise QueryError(f"candidates of {n} is out of range: choose 1..200")
        if not (s.rerank if rerank is None else rerank):
            return replace(
                self.retrieve(query, k, mode, filters),
                rerank_status=RerankStatus.NOT_REQUESTED, rerank_reason="not requested",
            )
        n = max(n, k)  # every returned hit is reranked
        return self.rerank_result(self.retrieve(query, n, mode, filters), k, n)

    def _passages(self, first: SearchResult, cands: list[Hit]) -> list[str]:
        """What the cross-encoder reads of each candidate: its best ``rerank_window``."""
        s = self.settings
        if not s.rerank_window:
            return [index_text(h.chunk) for h in cands]
        assert self.reranker is not None
        starts = partial(token_starts, self.reranker)
        question = min(len(starts([first.query])[0]), s.rerank_max_query_tokens)
        weights = {t.stem: t.idf(first.n_chunks) for t in first.terms}
        budget = max(16, s.rerank_window - question - PAIR_SPECIALS)  # a long question
        return windows([h.chunk for h in cands], weights, budget, starts)

    def rerank_result(self, first: SearchResult, k: int, n: int) -> SearchResult:
        """Rerank the first ``n`` hits of ``first``, blend, apply the floor, keep ``k``."""
        s = self.settings
        cands = first.hits[:n]
        timings = dict(first.timings_ms)
        if self.reranker is None:
            return replace(
                first, hits=first.hits[:k], rerank_status=RerankStatus.UNAVAILABLE,
                rerank_reason=self.rerank_error,
            )
        if not cands:
            return replace(
                first, rerank_status=RerankStatus.RERANKED, reranker=self.reranker.name
            )
        t = time.perf_counter()
        pairs = list(zip([first.query] * len(cands), self._passages(first, cands), strict=True))
        timings["focus"] = (time.perf_counter() - t) * 1000
        status, reason = RerankStatus.RERANKED, None
        keep = list(range(len(cands)))
        try:
            t = time.perf_counter()
            if s.selective_rerank and cands[0].bm25_rank == 1 and cands[0].dense_rank == 1:
                # The first stage is confident: score only its top hit, for the floor.
                keep = [0]
                status = RerankStatus.SKIPPED
                reason = "skipped: BM25 and dense agree on the top hit"
            elif self.cascade is not None and len(cands) > s.cascade_keep:
                cheap = self.cascade.predict(pairs)
                keep = sorted(sorted(keep, key=lambda i: -cheap[i])[: s.cascade_keep])
                timings["cascade"] = (time.perf_counter() - t) * 1000
                t = time.perf_counter()
            logits = self.reranker.predict([pairs[i] for i in keep]).tolist()
            timings["rerank"] = (time.perf_counter() - t) * 1000
        except Exception as e:  # a failing model must not fail the search
            why = f"reranker failed: {type(e).__name__}: {e}"
            log.error("%s; serving first-stage results", why)
            return replace(
                first, hits=first.hits[:k], rerank_status=RerankStatus.FAILED, rerank_reason=why
            )
        scored = {i: lg for i, lg in zip(keep, logits, strict=True)}
        if status is RerankStatus.RERANKED:
            if s.rerank_blend == "scores":
                blended = interpolate([cands[i].score for i in keep], logits, s.rerank_weight)
            else:
                blended = blend([i + 1 for i in keep], logits, s.rerank_weight, s.rerank_rrf_k)
            order = [(keep[j], score) for j, score in blended]
        else:  # skipped: the first stage's order and scores stand
            order = [(i, h.score) for i, h in enumerate(cands)]
        hits = []
        for i, score in order:
            lg = scored.get(i)
            if lg is None and status is RerankStatus.RERANKED:
                continue  # trimmed by the cascade
            hits.append(
                replace(
                    cands[i],
                    score=score,
                    first_stage_rank=i + 1,
                    rerank_score=lg,
                    relevance=None if lg is None else relevance(lg),
                )
            )
        best = max(logits) if logits else None
        floor = s.relevance_floor
        no_answer = False
        closest: list[Hit] = []
        decision = None
        # The decision needs the dense similarity; a BM25-only search (asked for, or the
        # embedder is unavailable) falls back to the floor.
        if s.answerability and best is not None and first.nearest is not None:
            t = time.perf_counter()
            decision = decide(first.terms, first.n_chunks, hits, first.calibration,
                              first.nearest)
            timings["answerability"] = (time.perf_counter() - t) * 1000
            refuse = not decision.answerable
        else:
            refuse = floor is not None and best is not None and best < floor
        if refuse:
            hits, closest, no_answer = [], hits[:k], True
        elif floor is not None and best is not None and status is RerankStatus.RERANKED:
            # Passages under the floor are dropped; an answerable decision keeps its top one.
            top = 1 if decision is not None else 0
            hits = hits[:top] + [
                h for h in hits[top:] if h.rerank_score is not None and h.rerank_score >= floor
            ]
        timings["total"] = sum(v for key, v in timings.items() if key != "total")
        return replace(
            first,
            hits=hits[:k],
            rerank_status=status,
            rerank_reason=reason,
            no_answer=no_answer,
            closest=closest,
            best_score=best,
            decision=decision,
            reranker=self.reranker.name,
            timings_ms={key: round(v, 3) for key, v in timings.items()},
        )

    def retrieve(
        self,
        query: str,
        k: int,
        mode: Mode | str = Mode.HYBRID,
        filters: Mapping[str, str] | None = None,
    ) -> SearchResult:
        """``search`` without the bound on ``k`` (evaluation asks for 100 and more)."""
        query = validate_query(query)
        with self.reader.in_use() as reader:  # a switch meanwhile closes it only after
            return self._retrieve(reader, query, k, Mode.from_str(mode), filters)

    def _retrieve(
        self, reader: Generation, query: str, k: int, mode: Mode,
        filters: Mapping[str, str] | None,
    ) -> SearchResult:
        s = self.settings
        timings: dict[str, float] = {}
        allowed = reader.restrict(filters)
        use_bm25 = mode == "bm25" or (mode == "hybrid" and s.bm25_weight > 0)
        use_dense = mode == "dense" or (mode == "hybrid" and s.dense_weight > 0)
        qv = None
        if use_dense:
            t = time.perf_counter()
            qv = self.embedder.embed_query(query)
            timings["embed_query"] = (time.perf_counter() - t) * 1000
        # Each retriever returns n chunks; capped per document they may hold fewer than k
        # documents (evaluation asks for 100 documents at one chunk each). Then look deeper,
        # doubling n, until k are found or the index runs out.
        n = max(s.candidates, k * s.max_chunks_per_doc)
        while True:
            bm25_rows = dense_rows = np.zeros(0, dtype=np.int64)
            bm25_scores: dict[int, float] = {}
            dense_scores: dict[int, float] = {}
            if use_bm25:
                t = time.perf_counter()
                bm25_rows, sc = reader.lexical(query, n, allowed)
                bm25_scores = dict(zip(bm25_rows.tolist(), sc.tolist(), strict=True))
                timings["bm25"] = timings.get("bm25", 0.0) + (time.perf_counter() - t) * 1000
            if qv is not None:
                t = time.perf_counter()
                dense_rows, sc = reader.nearest(qv, n, allowed)
                dense_scores = dict(zip(dense_rows.tolist(), sc.tolist(), strict=True))
                timings["dense"] = timings.get("dense", 0.0) + (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            bm25_rank = {r: i + 1 for i, r in enumerate(bm25_rows.tolist())}
            dense_rank = {r: i + 1 for i, r in enumerate(dense_rows.tolist())}
            if mode == "hybrid" and s.fusion == "convex":
                w = s.fusion_dense_weight
                fused = convex({"bm25": bm25_scores, "dense": dense_scores},
                               {"bm25": 1.0 - w, "dense": w})
            elif mode == "hybrid":
                fused = rrf(
                    {"bm25": bm25_rows.tolist(), "dense": dense_rows.tolist()},
                    k=s.rrf_k,
                    weights={"bm25": s.bm25_weight, "dense": s.dense_weight},
                )
            else:
                scores = bm25_scores if mode == "bm25" else dense_scores
                fused = list(scores.items())
            timings["fusion"] = timings.get("fusion", 0.0) + (time.perf_counter() - t) * 1000
            # Cap chunks per document, and fetch only the rows that make the cut.
            picked: list[tuple[int, float]] = []
            per_doc: dict[int, int] = {}
            doc_of = dict(zip((r for r, _ in fused), reader.doc_of([r for r, _ in fused]),
                              strict=True))
            for row, score in fused:
                d = doc_of[row]
                if per_doc.get(d, 0) < s.max_chunks_per_doc:
                    per_doc[d] = per_doc.get(d, 0) + 1
                    picked.append((row, score))
                    if len(picked) == k:
                        break
            if len(picked) >= k or n >= reader.n_chunks:
                break
            n = min(2 * n, reader.n_chunks)
        t = time.perf_counter()
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
            terms=tuple(key_terms(query, reader)),
            n_chunks=reader.n_chunks,
            calibration=reader.calibration,
            nearest=max(dense_scores.values()) if dense_scores else None,
        )
