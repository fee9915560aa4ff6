"""Tool logic as plain functions over one loaded Pipeline: used by the MCP server and the CLI.

Results are pydantic models (the tools' output schemas) with a text rendering each.
Search and answer results go through the exact-match query cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from mcp_rag.cache import QueryCache, cache_key, normalize_query
from mcp_rag.errors import QueryError
from mcp_rag.pipeline import Pipeline, SearchResult, validate_query
from mcp_rag.rerank import rank
from mcp_rag.types import Hit

MAX_PASSAGES = 100
MAX_PASSAGE_CHARS = 20_000


def chunk_uri(chunk_id: str) -> str:
    return "rag://chunks/" + quote(chunk_id, safe="")


def document_uri(doc_id: str) -> str:
    return "rag://documents/" + quote(doc_id, safe="")


class Passage(BaseModel):
    """A retrieved chunk, with everything needed to cite it."""

    doc_id: str
    chunk_id: str
    uri: str = Field(description="rag://chunks/... resource with this passage.")
    document_uri: str = Field(description="rag://documents/... resource with the whole text.")
    source: str
    title: str
    section: str
    span: list[int] = Field(description="[start, end) character offsets in the document text.")
    page: int | None
    text: str
    score: float = Field(description="Final ranking score (higher is better).")
    rerank_score: float | None = Field(description="Cross-encoder logit.")
    relevance: float | None = Field(description="Calibrated 0..1 relevance (sigmoid of logit).")
    first_stage_rank: int | None
    bm25_rank: int | None
    dense_rank: int | None

    @classmethod
    def of(cls, h: Hit) -> Passage:
        c = h.chunk
        return cls(
            doc_id=c.doc_id,
            chunk_id=c.chunk_id,
            uri=chunk_uri(c.chunk_id),
            document_uri=document_uri(c.doc_id),
            source=c.source,
            title=c.title,
            section=c.section,
            span=[c.start, c.end],
            page=c.page,
            text=c.text,
            score=h.score,
            rerank_score=h.rerank_score,
            relevance=h.relevance,
            first_stage_rank=h.first_stage_rank,
            bm25_rank=h.bm25_rank,
            dense_rank=h.dense_rank,
        )


class SearchOutput(BaseModel):
    query: str
    results: list[Passage]
    no_answer: bool = Field(description="True when no passage cleared the relevance floor.")
    best_score: float | None = Field(description="Best cross-encoder logit seen.")
    reranked: bool
    rerank_reason: str | None
    cached: bool = False
    generation: int = Field(description="Index generation that served the query.")
    timings_ms: dict[str, float]


class RerankItem(BaseModel):
    id: str
    index: int = Field(description="Position of the passage in the request.")
    score: float = Field(description="Cross-encoder logit.")
    relevance: float = Field(description="Calibrated 0..1 relevance.")
    text: str


class RerankOutput(BaseModel):
    query: str
    reranker: str
    results: list[RerankItem]
    timings_ms: dict[str, float]


class AnswerOutput(BaseModel):
    question: str
    answered: bool
    answer: str = Field(description="The passages that answer, each followed by [n].")
    citations: list[Passage] = Field(description="citations[n-1] is what [n] points to.")
    confidence: float | None = Field(description="Top relevance (0..1).")
    mode: Literal["passages"] = "passages"
    cached: bool = False
    timings_ms: dict[str, float]


class StatusOutput(BaseModel):
    index: str
    docs: int
    chunks: int
    generation: int
    created_at: str
    embedder: str
    reranker: str | None
    reranker_error: str | None
    last_run: dict[str, Any]


class IndexOutput(BaseModel):
    added: int
    updated: int
    removed: int
    unchanged: int
    embedded_chunks: int
    generation: int | None
    skipped: list[dict[str, str]]


class RerankPassage(BaseModel):
    id: str | None = None
    text: str = Field(min_length=1, max_length=MAX_PASSAGE_CHARS)


def _render_passages(passages: Sequence[Passage]) -> str:
    lines = []
    for i, p in enumerate(passages, start=1):
        where = p.source + (f" § {p.section}" if p.section else "")
        where += f" p.{p.page}" if p.page else ""
        rel = f", relevance {p.relevance:.2f}" if p.relevance is not None else ""
        lines.append(f"[{i}] {p.title} — {where} (chars {p.span[0]}-{p.span[1]}{rel}; {p.uri})")
        lines.append(p.text.strip())
        lines.append("")
    return "\n".join(lines).strip()


def render_search(out: SearchOutput) -> str:
    if out.no_answer:
        return (
            f"No indexed document answers this: no passage cleared the relevance floor (best "
            f"cross-encoder score {out.best_score:.2f}). Say the documents do not contain it."
        )
    if not out.results:
        return "No matching passages in the indexed documents."
    head = f"{len(out.results)} passages for: {out.query}"
    if not out.reranked and out.rerank_reason:
        head += f" (not reranked: {out.rerank_reason})"
    return head + "\n\n" + _render_passages(out.results)


def render_answer(out: AnswerOutput) -> str:
    if not out.answered:
        return out.answer
    return out.answer + "\n\nSources:\n" + "\n".join(
        f"[{i}] {p.source}" + (f" § {p.section}" if p.section else "") + f" ({p.uri})"
        for i, p in enumerate(out.citations, start=1)
    )


def _degraded(rerank_reason: str | None) -> bool:
    """True when the reranker failed at run time: such a result must not be cached."""
    return bool(rerank_reason) and rerank_reason.startswith("reranker failed")


class RagService:
    """Tool logic as plain methods over one loaded Pipeline (thread-safe)."""

    def __init__(
        self,
        pipeline: Pipeline,
        allow_roots: Sequence[Path] = (),
        cache: QueryCache | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.allow_roots = [Path(r).expanduser().resolve() for r in allow_roots]
        self.cache = cache

    def _cached(
        self, tool: str, query: str, params: dict[str, Any], no_cache: bool,
        compute: Callable[[str], tuple[BaseModel, int, bool]], model: type[BaseModel],
    ) -> BaseModel:
        """``compute(normalised query)`` unless an identical call is cached.

        ``compute`` returns (result, generation it came from, whether it may be cached).
        The key holds the generation the result came from, so a result is never stored
        under a generation it did not come from, even if the index switched meanwhile; a
        degraded result (the reranker failed at run time) is not stored at all.
        """
        norm = normalize_query(validate_query(query))
        if not norm:
            raise QueryError("query is only punctuation: pass words to search for")
        self.pipeline.refresh()
        fp = self.pipeline.fingerprint()
        use = self.cache is not None and not no_cache
        if use:
            hit = self.cache.get(cache_key(tool, norm, params, fp))
            if hit is not None:
                return model.model_validate({**hit, "cached": True})
        out, generation, cacheable = compute(norm)
        if self.cache is not None and cacheable:  # no_cache still refreshes the entry
            fp["generation"] = generation
            self.cache.set(cache_key(tool, norm, params, fp), out.model_dump(mode="json"))
        return out

    def search(
        self,
        query: str,
        k: int = 5,
        filters: dict[str, str] | None = None,
        rerank: bool = True,
        mode: str = "hybrid",
        candidates: int | None = None,
        no_cache: bool = False,
    ) -> SearchOutput:
        def compute(norm: str) -> tuple[SearchOutput, int, bool]:
            r: SearchResult = self.pipeline.search(
                norm, k=k, filters=filters, rerank=rerank, mode=mode, candidates=candidates
            )
            return SearchOutput(
                query=query,
                results=[Passage.of(h) for h in r.hits],
                no_answer=r.no_answer,
                best_score=r.best_score,
                reranked=r.reranked,
                rerank_reason=r.rerank_reason,
                generation=r.generation,
                timings_ms=r.timings_ms,
            ), r.generation, not _degraded(r.rerank_reason)

        params = {"k": k, "filters": filters, "rerank": rerank, "mode": mode,
                  "candidates": candidates}
        t = time.perf_counter()
        out = self._cached("search", query, params, no_cache, compute, SearchOutput)
        if out.cached:
            out.query = query
            out.timings_ms = {"cache": round((time.perf_counter() - t) * 1000, 3)}
        return out  # type: ignore[return-value]

    def rerank(
        self, query: str, passages: Sequence[str | RerankPassage], top_k: int | None = None
    ) -> RerankOutput:
        query = validate_query(query)
        if not passages:
            raise QueryError("passages is empty: pass 1 to 100 passages to score")
        if len(passages) > MAX_PASSAGES:
            raise QueryError(f"{len(passages)} passages is over the limit of {MAX_PASSAGES}")
        items = [
            RerankPassage(id=str(i), text=p) if isinstance(p, str) else p
            for i, p in enumerate(passages)
        ]
        for i, p in enumerate(items):
            if not p.text.strip() or len(p.text) > MAX_PASSAGE_CHARS:
                raise QueryError(
                    f"passage {i} is empty or over {MAX_PASSAGE_CHARS} characters"
                )
        reranker = self.pipeline.reranker
        if reranker is None:
            raise QueryError(f"no reranker is available: {self.pipeline.rerank_error}")
        t = time.perf_counter()
        ranked = rank(reranker, query, [p.text for p in items], top_k)
        return RerankOutput(
            query=query,
            reranker=reranker.name,
            results=[
                RerankItem(
                    id=items[r["corpus_id"]].id or str(r["corpus_id"]),
                    index=r["corpus_id"],
                    score=r["score"],
                    relevance=r["relevance"],
                    text=r["text"],
                )
                for r in ranked
            ],
            timings_ms={"rerank": round((time.perf_counter() - t) * 1000, 3)},
        )

    def answer(self, question: str, k: int = 5, no_cache: bool = False) -> AnswerOutput:
        """The passages that clear the floor, numbered for citation, or a plain no-answer."""

        def compute(norm: str) -> tuple[AnswerOutput, int, bool]:
            s = self.search(norm, k=k, rerank=True, no_cache=True)
            if s.no_answer or not s.results:
                best = ""
                if s.best_score is not None:
                    best = f" (best cross-encoder score {s.best_score:.2f})"
                return AnswerOutput(
                    question=question,
                    answered=False,
                    answer=(
                        "The indexed documents do not contain an answer to this question"
                        f"{best}. Do not answer it from memory as if it came from them."
                    ),
                    citations=[],
                    confidence=None,
                    timings_ms=s.timings_ms,
                ), s.generation, not _degraded(s.rerank_reason)
            parts = [f"{p.text.strip()} [{i}]" for i, p in enumerate(s.results, start=1)]
            return AnswerOutput(
                question=question,
                answered=True,
                answer="\n\n".join(parts),
                citations=s.results,
                confidence=s.results[0].relevance,
                timings_ms=s.timings_ms,
            ), s.generation, not _degraded(s.rerank_reason)

        t = time.perf_counter()
        out = self._cached("answer", question, {"k": k}, no_cache, compute, AnswerOutput)
        if out.cached:
            out.question = question
            out.timings_ms = {"cache": round((time.perf_counter() - t) * 1000, 3)}
        return out  # type: ignore[return-value]

    def status(self) -> StatusOutput:
        from mcp_rag.store import read_last_run

        self.pipeline.refresh()
        r = self.pipeline.reader
        last = read_last_run(r.index_dir) or {}
        base = r.summary()
        return StatusOutput(
            **{k: base[k] for k in ("index", "docs", "chunks", "generation", "created_at")},
            embedder=self.pipeline.embedder.name,
            reranker=self.pipeline.reranker.name if self.pipeline.reranker else None,
            reranker_error=self.pipeline.rerank_error,
            last_run={k: v for k, v in last.items() if k != "skipped"},
        )

    def check_allowed(self, paths: Sequence[str]) -> list[Path]:
        """Resolve ``paths`` and refuse any outside the allowed roots."""
        if not self.allow_roots:
            raise QueryError("indexing from the client is off: start the server with --allow-root")
        out = []
        for raw in paths:
            p = Path(raw).expanduser().resolve()
            if not any(p == root or p.is_relative_to(root) for root in self.allow_roots):
                raise QueryError(
                    f"{raw} is outside the allowed roots ({', '.join(map(str, self.allow_roots))})"
                )
            out.append(p)
        return out

    def index(
        self, paths: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> IndexOutput:
        from mcp_rag.indexer import index_paths

        resolved = self.check_allowed(paths)
        s = self.pipeline.settings
        rep = index_paths(
            s.index, resolved, self.pipeline.embedder, target_tokens=s.chunk_tokens,
            overlap=s.chunk_overlap, dense_kind=s.dense_index, quiet=True, progress=progress,
        )
        self.pipeline.refresh()
        return IndexOutput(
            added=rep.added, updated=rep.updated, removed=rep.removed, unchanged=rep.unchanged,
            embedded_chunks=rep.embedded_chunks, generation=rep.generation,
            skipped=[{"path": p, "reason": why} for p, why in rep.skipped],
        )


