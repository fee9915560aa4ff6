"""Tool logic as plain methods over one loaded Pipeline: used by the MCP server and the CLI.

Results are the pydantic models of ``schemas``; search and answer results go through the
exact-match query cache.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from mcp_rag.answer.compose import AnswerPolicy, compose
from mcp_rag.answer.extractive import Run
from mcp_rag.answer.generated import ChatClient
from mcp_rag.app.cache import QueryCache, cache_key, normalize_query
from mcp_rag.app.catalog import Catalog
from mcp_rag.app.schemas import (
    MAX_PASSAGE_CHARS,
    MAX_PASSAGES,
    OUTPUT_SCHEMA,
    Answerability,
    AnswerOutput,
    Citation,
    IndexOutput,
    Passage,
    RerankItem,
    RerankOutput,
    RerankPassage,
    SearchOutput,
    StatusOutput,
    chunk_uri,
    document_uri,
)
from mcp_rag.errors import MCPRagError, QueryError
from mcp_rag.ingest.chunking import label_at
from mcp_rag.limits import ANSWER_PASSAGES, ANSWER_SENTENCES
from mcp_rag.models.rerank import rank, relevance
from mcp_rag.retrieve.pipeline import MAX_QUERY_CHARS, Pipeline, SearchResult, validate_query
from mcp_rag.types import Hit, Mode, Reranker

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 3)


def rerank_passages(
    reranker: Reranker, query: str, passages: Sequence[str | RerankPassage],
    top_k: int | None = None,
) -> RerankOutput:
    """Score caller-given passages against ``query``, best first (the ``rerank`` tool)."""
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


def _answerability(r: SearchResult) -> Answerability | None:
    return None if r.decision is None else Answerability.of(r.decision, r.best_score)


class RagService:
    """Tool logic as plain methods over one loaded Pipeline (thread-safe)."""

    def __init__(
        self,
        pipeline: Pipeline,
        allow_roots: Sequence[Path] = (),
        cache: QueryCache | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.catalog = Catalog(pipeline.handle)  # the same open index, read without models
        self.allow_roots = [Path(r).expanduser().resolve() for r in allow_roots]
        self.cache = cache
        s = pipeline.settings
        self.llm = None if not s.llm_url else ChatClient(
            s.llm_url, s.llm_model or "", s.llm_api_key.get_secret_value() if s.llm_api_key
            else None, timeout=s.llm_timeout, max_tokens=s.llm_max_tokens,
        )

    def _cached(
        self, tool: str, query: str, params: dict[str, Any], no_cache: bool,
        compute: Callable[[str], tuple[M, int, bool]] | None, model: type[M],
    ) -> M | None:
        """``compute(normalised query)`` unless an identical call is cached.

        With ``compute`` None only the cache is consulted (None on a miss): the server
        serves cache hits without queueing behind model work.

        ``compute`` returns (result, generation it came from, whether it may be cached).
        The key holds the generation the result came from, so a result is never stored
        under a generation it did not come from, even if the index switched meanwhile; a
        degraded result (the reranker failed at run time) is not stored at all.
        """
        norm = normalize_query(validate_query(query))
        if not norm:
            raise QueryError("query is only punctuation: pass words to search for")
        if len(norm) > MAX_QUERY_CHARS:
            raise QueryError(
                f"the query is {len(query)} characters, {len(norm)} after Unicode "
                f"normalisation (NFKC), over the limit of {MAX_QUERY_CHARS}: shorten it"
            )
        self.pipeline.refresh()
        fp = self.pipeline.fingerprint() | {"output_schema": OUTPUT_SCHEMA}
        if self.cache is not None and not no_cache:
            hit = self.cache.get(cache_key(tool, norm, params, fp))
            if hit is not None:
                return model.model_validate({**hit, "cached": True})
        if compute is None:
            return None
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
        mode: Mode | str = Mode.HYBRID,
        candidates: int | None = None,
        no_cache: bool = False,
    ) -> SearchOutput:
        """The ``search`` tool: the top ``k`` passages for ``query`` (cached)."""
        out = self._search(query, k, filters, rerank, mode, candidates, no_cache, peek=False)
        assert out is not None
        return out

    def cached_search(
        self,
        query: str,
        k: int = 5,
        filters: dict[str, str] | None = None,
        rerank: bool = True,
        mode: Mode | str = Mode.HYBRID,
        candidates: int | None = None,
    ) -> SearchOutput | None:
        """What ``search`` would return from the cache, or None (no model is run)."""
        return self._search(query, k, filters, rerank, mode, candidates, False, peek=True)

    def _search(
        self, query: str, k: int, filters: dict[str, str] | None, rerank: bool,
        mode: Mode | str, candidates: int | None, no_cache: bool, peek: bool,
    ) -> SearchOutput | None:
        def compute(norm: str) -> tuple[SearchOutput, int, bool]:
            r: SearchResult = self.pipeline.search(
                norm, k=k, filters=filters, rerank=rerank, mode=mode, candidates=candidates
            )
            return SearchOutput(
                query=query,
                results=[Passage.of(h) for h in r.hits],
                no_answer=r.no_answer,
                closest=[Passage.of(h) for h in r.closest],
                best_score=r.best_score,
                answerability=_answerability(r),
                reranked=r.reranked,
                rerank_status=r.rerank_status,
                rerank_reason=r.rerank_reason,
                generation=r.generation,
                timings_ms=r.timings_ms,
            ), r.generation, r.rerank_status.cacheable

        params = {"k": k, "filters": filters, "rerank": rerank, "mode": mode,
                  "candidates": candidates}
        t = time.perf_counter()
        out = self._cached("search", query, params, no_cache, None if peek else compute,
                           SearchOutput)
        if out is not None and out.cached:
            out.query = query
            out.timings_ms = {"cache": round((time.perf_counter() - t) * 1000, 3)}
        return out

    def rerank(
        self, query: str, passages: Sequence[str | RerankPassage], top_k: int | None = None
    ) -> RerankOutput:
        if self.pipeline.reranker is None:
            raise QueryError(f"no reranker is available: {self.pipeline.rerank_error}")
        return rerank_passages(self.pipeline.reranker, query, passages, top_k)

    def answer(
        self,
        question: str,
        k: int | None = None,
        max_sentences: int | None = None,
        no_cache: bool = False,
        filters: dict[str, str] | None = None,
    ) -> AnswerOutput:
        """Answer from the top ``k`` passages with citations, or say plainly there is none.

        ``filters`` (as for search) narrow the documents it answers from.

        Extractive by default (sentences scored by the cross-encoder); generated by the
        configured LLM endpoint when there is one, falling back to extractive if it fails
        or cites a passage it was not given.
        """
        out = self._answer(question, k, max_sentences, no_cache, peek=False, filters=filters)
        assert out is not None
        return out

    def cached_answer(
        self, question: str, k: int | None = None, max_sentences: int | None = None,
        filters: dict[str, str] | None = None,
    ) -> AnswerOutput | None:
        """What ``answer`` would return from the cache, or None (no model is run)."""
        return self._answer(question, k, max_sentences, False, peek=True, filters=filters)

    def _answer(
        self, question: str, k: int | None, max_sentences: int | None, no_cache: bool,
        peek: bool, filters: dict[str, str] | None = None,
    ) -> AnswerOutput | None:
        s = self.pipeline.settings
        k = s.answer_passages if k is None else k
        budget = s.answer_sentences if max_sentences is None else max_sentences
        ANSWER_PASSAGES.check(k, "k", " passages")
        ANSWER_SENTENCES.check(budget, "max_sentences")
        llm = self.llm
        policy = AnswerPolicy(budget=budget, margin=s.answer_margin,
                              min_score=s.answer_min_score, relevance_floor=s.relevance_floor)

        def compute(norm: str) -> tuple[AnswerOutput, int, bool]:
            r = self.pipeline.search(norm, k=k, rerank=True, filters=filters)
            c = compose(norm, r, self.pipeline.reranker, llm, policy)
            return AnswerOutput(
                question=question, answered=c.answered, mode=c.mode, answer=c.text,
                citations=[self._citation(n, what) for n, what in c.citations],
                sources=[Passage.of(h) for h in c.sources], fallback=c.fallback,
                no_answer_reason=c.no_answer_reason, confidence=c.confidence,
                best_score=r.best_score, answerability=_answerability(r),
                generation=r.generation, timings_ms=c.timings_ms,
            ), r.generation, c.cacheable

        # The whole Answers group, so a setting added to it changes the key by itself.
        params = {"k": k, "max_sentences": budget, "filters": filters,
                  "answers": s.answers.model_dump(mode="json")}
        t = time.perf_counter()
        out = self._cached("answer", question, params, no_cache, None if peek else compute,
                           AnswerOutput)
        if out is None:
            return None
        if out.cached:
            out.question = question
            out.timings_ms = {"cache": _ms(t)}
        else:
            out.timings_ms["total"] = _ms(t)
        return out

    def _citation(self, n: int, what: Hit | Run) -> Citation:
        """Citation [n] of a whole passage (generated answers) or of a run of sentences."""
        if isinstance(what, Hit):
            c, start, end, quote, rel = (
                what.chunk, what.chunk.start, what.chunk.end, what.chunk.text, what.relevance
            )
        else:
            c, start, end, quote = what.chunk, what.start, what.end, what.quote
            rel = None if what.score is None else relevance(what.score)
        page = c.page
        if page is not None and start != c.start:  # the page where the quote starts
            with self.pipeline.reader.in_use() as reader:
                doc = reader.document(c.doc_id)
            if doc is not None:
                page = label_at(doc.pages, start, page)
        return Citation(
            n=n, doc_id=c.doc_id, chunk_id=c.chunk_id, uri=chunk_uri(c.chunk_id),
            document_uri=document_uri(c.doc_id), source=c.source, title=c.title,
            section=c.section, page=page, span=[start, end], quote=quote, relevance=rel,
        )

    def status(self) -> StatusOutput:
        """``Catalog.status`` with the reranker this process loaded."""
        p = self.pipeline
        return self.catalog.status(p.reranker.name if p.reranker else None, p.rerank_error)

    def health(self) -> dict[str, Any]:
        """What a health check reports: the loaded models and the index generation served."""
        p = self.pipeline
        index: dict[str, Any] = {"path": str(p.settings.index), "generation": None,
                                 "error": None}
        try:
            p.refresh()
            index["generation"] = p.reader.generation
        except MCPRagError as e:
            index["error"] = str(e)
        embedder_error = getattr(p.embedder, "error", None)
        return {
            "status": "ok" if index["error"] is None and embedder_error is None else "degraded",
            "models": {"embedder": p.embedder.name, "embedder_error": embedder_error,
                       "reranker": p.reranker.name if p.reranker else None,
                       "reranker_error": p.rerank_error},
            "index": index,
        }

    def sync(self, progress: Callable[[int, int], None] | None = None) -> IndexOutput:
        """Bring the index up to date with its files: re-read the folders and files it was
        built from that lie under the allowed roots (all the allowed roots for a new index);
        changed files are re-embedded, deleted ones pruned."""
        from mcp_rag.ingest import safety

        if not self.allow_roots:
            raise QueryError("indexing from the client is off: start the server with --allow-root")
        try:
            self.pipeline.refresh()
            recorded = [Path(r) for r in self.pipeline.reader.manifest.roots]
        except MCPRagError:
            recorded = []
        inside = [r for r in recorded if safety.within(r, self.allow_roots)]
        outside = [r for r in recorded if r not in inside]
        gone = [r for r in inside if not r.exists()]
        paths = [r for r in inside if r.exists()] if recorded else list(self.allow_roots)
        out = self.index([str(p) for p in paths], progress) if paths else IndexOutput(
            added=0, updated=0, removed=0, unchanged=0, moved=0, embedded_chunks=0,
            generation=None, skipped=[])
        out.skipped += [{"path": str(r), "reason": "outside the allowed roots: not synced"}
                        for r in outside]
        out.skipped += [{"path": str(r), "reason": "no longer exists: remove its documents "
                         "with `mcp-rag remove`"} for r in gone]
        return out

    def index(
        self, paths: Sequence[str], progress: Callable[[int, int], None] | None = None,
        collection: str | None = None,
    ) -> IndexOutput:
        """Index ``paths``; discovery's path-safety gate refuses any outside the allowed roots."""
        if not self.allow_roots:
            raise QueryError("indexing from the client is off: start the server with --allow-root")
        rep = self.pipeline.indexer().index(paths, roots=self.allow_roots, quiet=True,
                                            progress=progress, collection=collection)
        self.pipeline.refresh()
        return IndexOutput(
            added=rep.added, updated=rep.updated, removed=rep.removed, unchanged=rep.unchanged,
            moved=rep.moved,
            embedded_chunks=rep.embedded_chunks, generation=rep.generation,
            skipped=[{"path": p, "reason": why} for p, why in rep.skipped],
        )


