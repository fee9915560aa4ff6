"""Tool logic as plain methods over one loaded Pipeline: used by the MCP server and the CLI.

Results are the pydantic models of ``schemas``; search and answer results go through the
exact-match query cache.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, overload

from mcp_rag.answer.compose import AnswerPolicy, compose
from mcp_rag.answer.extractive import Run
from mcp_rag.answer.generated import ChatClient
from mcp_rag.app.added import Added, AddedDocuments
from mcp_rag.app.cache import QueryCache, cache_key, normalize_query
from mcp_rag.app.catalog import Catalog
from mcp_rag.app.requests import AnswerRequest, SearchRequest
from mcp_rag.app.schemas import (
    MAX_PASSAGE_CHARS,
    MAX_PASSAGES,
    OUTPUT_SCHEMA,
    AddedOutput,
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
from mcp_rag.retrieve.answerability import Decision
from mcp_rag.retrieve.pipeline import MAX_QUERY_CHARS, Pipeline, SearchResult, validate_query
from mcp_rag.settings import Answers
from mcp_rag.types import Hit, Mode, Reranker

log = logging.getLogger(__name__)


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


def _answerability(d: Decision | None, best_score: float | None) -> Answerability | None:
    return None if d is None else Answerability.of(d, best_score)


class RagService:
    """Tool logic as plain methods over one loaded Pipeline (thread-safe)."""

    def __init__(
        self,
        pipeline: Pipeline,
        allow_roots: Sequence[Path] = (),
        cache: QueryCache | None = None,
        allow_add: bool = False,
    ) -> None:
        self.pipeline = pipeline
        # add_document / remove_document: with --allow-add, or with allowed roots
        self.added = AddedDocuments(pipeline) if allow_add or allow_roots else None
        self.catalog = Catalog(pipeline.handle)  # the same open index, read without models
        self.allow_roots = [Path(r).expanduser().resolve() for r in allow_roots]
        self.cache = cache
        s = pipeline.settings
        self.llm = None if not s.llm_url else ChatClient(
            s.llm_url, s.llm_model or "", s.llm_api_key.get_secret_value() if s.llm_api_key
            else None, timeout=s.llm_timeout, max_tokens=s.llm_max_tokens,
        )

    @overload
    def run(self, req: SearchRequest, no_cache: bool = False) -> SearchOutput: ...

    @overload
    def run(self, req: AnswerRequest, no_cache: bool = False) -> AnswerOutput: ...

    def run(self, req: SearchRequest | AnswerRequest,
            no_cache: bool = False) -> SearchOutput | AnswerOutput:
        """The tool's result for ``req``: from the cache, or computed (and then cached).

        ``no_cache`` skips the lookup; the result computed still refreshes the entry.
        """
        out = self._cached(req, no_cache, peek=False)
        assert out is not None
        return out

    @overload
    def lookup(self, req: SearchRequest) -> SearchOutput | None: ...

    @overload
    def lookup(self, req: AnswerRequest) -> AnswerOutput | None: ...

    def lookup(self, req: SearchRequest | AnswerRequest) -> SearchOutput | AnswerOutput | None:
        """What ``run`` would return from the cache, or None: no model is run (the server
        serves cache hits without queueing behind model work)."""
        return self._cached(req, no_cache=False, peek=True)

    def search(self, query: str, k: int = 5, filters: dict[str, str] | None = None,
               rerank: bool = True, mode: Mode | str = Mode.HYBRID,
               candidates: int | None = None, no_cache: bool = False) -> SearchOutput:
        """The ``search`` tool: the top ``k`` passages for ``query`` (cached)."""
        return self.run(SearchRequest(query, k, filters, rerank, mode, candidates), no_cache)

    def answer(self, question: str, k: int | None = None, max_sentences: int | None = None,
               no_cache: bool = False, filters: dict[str, str] | None = None) -> AnswerOutput:
        """Answer from the top ``k`` passages with citations, or say plainly there is none.

        ``filters`` (as for search) narrow the documents it answers from. Extractive by
        default (sentences scored by the cross-encoder); generated by the configured LLM
        endpoint when there is one, falling back to extractive if it fails or cites a
        passage it was not given (``answer/compose.py``).
        """
        return self.run(AnswerRequest(question, k, max_sentences, filters), no_cache)

    def rerank(
        self, query: str, passages: Sequence[str | RerankPassage], top_k: int | None = None
    ) -> RerankOutput:
        if self.pipeline.reranker is None:
            raise QueryError(f"no reranker is available: {self.pipeline.rerank_error}")
        return rerank_passages(self.pipeline.reranker, query, passages, top_k)

    def _cached(self, req: SearchRequest | AnswerRequest, no_cache: bool,
                peek: bool) -> SearchOutput | AnswerOutput | None:
        """``req``'s result unless an identical call is cached; with ``peek`` only the cache
        is consulted (None on a miss).

        The key holds the generation the result came from, so a result is never stored
        under a generation it did not come from, even if the index switched meanwhile; a
        degraded result (the reranker failed at run time) is not stored at all.
        """
        t = time.perf_counter()
        model: type[SearchOutput] | type[AnswerOutput]
        compute: Callable[[str], tuple[SearchOutput | AnswerOutput, int, bool]]
        if isinstance(req, SearchRequest):
            model = SearchOutput
            params, compute = req.params(), partial(self._compute_search, req)
        else:
            model = AnswerOutput
            params, compute = self._answer_call(req)
        norm = self._normalised(req.text)
        # The evidence check reads the capitals the normalised text has lost: what it
        # would look for is part of the key (a dictionary lookup, no model).
        params["focal"] = self.pipeline.focal(req.text, norm)
        self.pipeline.refresh()
        fp = self.pipeline.fingerprint() | {"output_schema": OUTPUT_SCHEMA}
        out: SearchOutput | AnswerOutput | None = None
        if self.cache is not None and not no_cache:
            hit = self.cache.get(cache_key(req.tool, norm, params, fp))
            if hit is not None:
                out = model.model_validate({**hit, "cached": True})
        if out is None and not peek:
            out, generation, cacheable = compute(norm)
            if self.cache is not None and cacheable:  # no_cache still refreshes the entry
                fp["generation"] = generation
                self.cache.set(cache_key(req.tool, norm, params, fp),
                               out.model_dump(mode="json"))
        if out is None:
            return None
        if out.cached:  # what the caller wrote, and the lookup's time
            if isinstance(out, SearchOutput):
                out.query = req.text
            else:
                out.question = req.text
            out.timings_ms = {"cache": _ms(t)}
        elif isinstance(out, AnswerOutput):
            out.timings_ms["total"] = _ms(t)
        return out

    @staticmethod
    def _normalised(query: str) -> str:
        norm = normalize_query(validate_query(query))
        if not norm:
            raise QueryError("query is only punctuation: pass words to search for")
        if len(norm) > MAX_QUERY_CHARS:
            raise QueryError(
                f"the query is {len(query)} characters, {len(norm)} after Unicode "
                f"normalisation (NFKC), over the limit of {MAX_QUERY_CHARS}: shorten it"
            )
        return norm

    def _compute_search(self, req: SearchRequest, norm: str) -> tuple[SearchOutput, int, bool]:
        r: SearchResult = self.pipeline.search(
            norm, k=req.k, filters=req.filters, rerank=req.rerank, mode=req.mode,
            candidates=req.candidates, question=req.query,
        )
        return SearchOutput(
            query=req.query, results=[Passage.of(h) for h in r.hits], no_answer=r.no_answer,
            closest=[Passage.of(h) for h in r.closest], best_score=r.best_score,
            answerability=_answerability(r.decision, r.best_score), reranked=r.reranked,
            rerank_status=r.rerank_status, rerank_reason=r.rerank_reason,
            generation=r.generation, coverage=round(r.coverage, 4), timings_ms=r.timings_ms,
        ), r.generation, r.rerank_status.cacheable

    def _answer_call(self, req: AnswerRequest) -> tuple[
            dict[str, Any], Callable[[str], tuple[AnswerOutput, int, bool]]]:
        """``answer``'s cache parameters and how it computes (``answer/compose.py``)."""
        s = self.pipeline.settings
        k = ANSWER_PASSAGES.check(s.answer_passages if req.k is None else req.k, "k",
                                  " passages")
        budget = ANSWER_SENTENCES.check(
            s.answer_sentences if req.max_sentences is None else req.max_sentences,
            "max_sentences")
        policy = AnswerPolicy(budget=budget, margin=s.answer_margin,
                              min_score=s.answer_min_score, relevance_floor=s.relevance_floor,
                              dense_share=s.answer_dense_share)

        def compute(norm: str) -> tuple[AnswerOutput, int, bool]:
            r = self.pipeline.search(norm, k=k, rerank=True, filters=req.filters,
                                     question=req.question, copies=False)
            c = compose(norm, r, self.pipeline.reranker, self.llm, policy,
                        embedder=self.pipeline.embedder)
            return AnswerOutput(
                question=req.question, answered=c.answered, state=c.state,
                missing=list(c.missing), mode=c.mode, answer=c.text,
                citations=[self._citation(n, what) for n, what in c.citations],
                sources=[Passage.of(h) for h in c.sources], fallback=c.fallback,
                no_answer_reason=c.no_answer_reason, confidence=c.confidence,
                best_score=r.best_score, answerability=_answerability(c.decision, r.best_score),
                generation=r.generation, coverage=round(r.coverage, 4),
                timings_ms=c.timings_ms,
            ), r.generation, c.cacheable

        # The whole Answers group, so a setting added to it changes the key by itself.
        return {"k": k, "max_sentences": budget, "filters": req.filters,
                "answers": s.dump_group(Answers)}, compute

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
            reused_chunks=0, coverage=1.0, ocr_pages=0, generation=None, skipped=[])
        out.skipped += [{"path": str(r), "reason": "outside the allowed roots: not synced"}
                        for r in outside]
        out.skipped += [{"path": str(r), "reason": "no longer exists: remove its documents "
                         "with `mcp-rag remove`"} for r in gone]
        return out

    def add_document(self, title: str, text: str, source: str | None = None,
                     collection: str | None = None) -> AddedOutput:
        """Index ``text`` as a document of its own (``added/<slug of title>``)."""
        return _added(self._adding().add(title, text, source, collection))

    def remove_document(self, doc_id: str) -> AddedOutput:
        """Remove a document ``add_document`` added."""
        return _added(self._adding().remove(doc_id))

    def _adding(self) -> AddedDocuments:
        if self.added is None:
            raise QueryError("adding documents from the client is off: start the server with "
                             "--allow-add")
        return self.added

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
            embedded_chunks=rep.embedded_chunks, reused_chunks=rep.reused_chunks,
            ocr_pages=rep.ocr_pages,
            coverage=round(rep.coverage, 4), generation=rep.generation,
            skipped=[{"path": p, "reason": why} for p, why in rep.skipped],
        )


def _added(a: Added) -> AddedOutput:
    return AddedOutput(doc_id=a.doc_id, document_uri=document_uri(a.doc_id),
                       replaced=a.replaced, chunks=a.chunks, generation=a.generation)
