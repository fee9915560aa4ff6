"""The only module that wires stages together: settings + models + index -> search."""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mcp_rag import __version__
from mcp_rag.errors import MCPRagError
from mcp_rag.index.handle import IndexHandle, open_current
from mcp_rag.index.lexical import tokenize
from mcp_rag.index.scope import Term, key_terms
from mcp_rag.ingest.text import INVISIBLE
from mcp_rag.limits import CANDIDATES, MAX_QUERY_CHARS, K
from mcp_rag.models.embedding import UnavailableEmbedder, load_embedder
from mcp_rag.models.pack import resolve
from mcp_rag.models.rerank import load_reranker, vocabulary
from mcp_rag.retrieve.evidence import (
    as_written,
    commands,
    focal_terms,
    phrase_pattern,
    targets,
    tools,
    written_names,
)
from mcp_rag.retrieve.first_stage import first_stage
from mcp_rag.retrieve.rerank import passages, rerank, shown
from mcp_rag.retrieve.result import SearchResult, validate_query
from mcp_rag.settings import Settings
from mcp_rag.types import Chunk, Embedder, Hit, Mode, Reranker, RerankStatus

# ``Pipeline.opening`` looks this many passages back for the one that opens a section (a
# longer section's heading is not looked for).
OPENING_LOOKBACK = 30

# Re-exported: what callers of a search need beside the Pipeline.
__all__ = ["MAX_QUERY_CHARS", "Pipeline", "SearchResult", "validate_query"]

if TYPE_CHECKING:
    from mcp_rag.index.backend import Generation
    from mcp_rag.index.indexer import Indexer

log = logging.getLogger(__name__)

def load_cross_encoder(s: Settings, spec: str, max_length: int) -> Reranker:
    """The cross-encoder ``spec`` as every caller loads it (the server, ``mcp-rag rerank``):
    pairs of ``max_length`` tokens, the question's share capped at half of them."""
    return load_reranker(resolve(spec, s.models, "reranker"), max_length=max_length,
                         max_query_tokens=min(s.rerank_max_query_tokens, max_length // 2),
                         threads=s.threads, exact=s.rerank_exact_int8)


def _load_reranker(s: Settings, spec: str, max_length: int) -> tuple[Reranker | None, str | None]:
    """Load a cross-encoder; on failure keep serving first-stage results and say why."""
    try:
        return load_cross_encoder(s, spec, max_length), None
    except Exception as e:  # any failure to load must not take the server down
        reason = f"reranker {spec!r} failed to load: {type(e).__name__}: {e}"
        log.error("%s; serving first-stage results", reason)
        return None, reason


def _load_models(
    settings: Settings, want: str, embedder: Embedder | None, reranker: Reranker | None,
    require_models: bool,
) -> tuple[Embedder, Reranker | None, Reranker | None, str | None]:
    """The embedder ``want`` (unless given), the cross-encoder and the cascade the
    settings name, and why there is no cross-encoder when one is asked for."""
    if embedder is None:
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
        reranker, error = _load_reranker(settings, settings.reranker, settings.rerank_max_length)
    if settings.cascade_reranker and reranker is not None:
        cascade, err = _load_reranker(
            settings, settings.cascade_reranker, settings.cascade_max_length
        )
        if err:
            log.error("cascade disabled: %s", err)
    return embedder, reranker, cascade if reranker is not None else None, error


def _why_no_reranker(s: Settings, reranker: Reranker | None, error: str | None) -> str | None:
    """Why there is no cross-encoder although the settings ask for one (None: there is one,
    or none is asked for)."""
    if s.rerank and reranker is None and error is None:
        return "no cross-encoder was loaded"
    return error


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
        self.handle = IndexHandle(settings, embedder.name, reader, require_index)
        self.embedder = embedder
        self.reranker = reranker
        self.words = vocabulary(reranker)  # the evidence check tells commands by them
        self.cascade = cascade if reranker is not None else None
        self.rerank_error = _why_no_reranker(settings, reranker, rerank_error)

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
        reader = open_current(settings, require_index)
        want = reader.manifest.embedder.name if reader is not None else settings.embedder
        if embedder is None and want != settings.embedder:
            log.info("index %s was built with %s; using it for queries", settings.index, want)
        loaded = _load_models(settings, want, embedder, reranker, require_models)
        return cls(settings, *loaded[:3], rerank_error=loaded[3], reader=reader,
                   require_index=require_index)

    def reload_models(self) -> None:
        """Load the models again, as ``from_settings`` does (a server that started before
        its first-start download of the model pack finished)."""
        want = self.handle.embedder or self.embedder.name
        self.embedder, self.reranker, self.cascade, error = _load_models(
            self.settings, want, None, None, require_models=False)
        self.rerank_error = _why_no_reranker(self.settings, self.reranker, error)

    def fingerprint(self) -> dict:
        """Everything besides the query and its parameters that decides a result."""
        s = self.settings
        return {
            "version": __version__,  # another release may compute the same call otherwise
            "embedder": self.embedder.name,
            "reranker": self.reranker.name if self.reranker is not None else None,
            "cascade": self.cascade.name if self.cascade is not None else None,
            "generation": self.reader.generation,
            "index": str(Path(s.index).resolve()),
            "backend": s.backend,
            # Whole groups, so a setting added to one changes the key by itself.
            "settings": {g.__name__: s.dump_group(g) for g in s.RESULT_GROUPS},
        }

    @property
    def reader(self) -> Generation:
        """The open index generation; IndexNotFoundError (naming the fix) if there is none."""
        return self.handle.reader

    def current(self) -> contextlib.AbstractContextManager[Generation]:
        """The newest generation, held open for the block (``IndexHandle.current``)."""
        return self.handle.current()

    def refresh(self) -> bool:
        """Switch to the newest generation if another process wrote one (cheap)."""
        return self.handle.refresh()

    def indexer(self) -> Indexer:
        """Indexing into this pipeline's index with its embedder (the server's tools and
        watch), loaded already."""
        from mcp_rag.index.indexer import Indexer

        return Indexer(self.settings, self.embedder)

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: Mode | str = Mode.HYBRID,
        filters: Mapping[str, str] | None = None,
        rerank: bool | None = None,
        candidates: int | None = None,
        question: str | None = None,
        copies: bool = True,
    ) -> SearchResult:
        """First stage (hybrid by default), then the cross-encoder: the top ``k`` chunks.

        ``question``: the question as written, when ``query`` is a normalised form of it
        (the evidence check reads its capitals; ``retrieve/evidence.py``). ``copies``:
        False keeps the best of passages that are near copies of one another, in the order
        of their scores (``answer``); True lists the hits as ``search`` shows them, each
        document's best passage before any second one (``Settings.page_first``).
        """
        s = self.settings
        k = K.check(s.k if k is None else k, "k")
        n = CANDIDATES.check(s.rerank_candidates if candidates is None else candidates,
                             "candidates")
        n = max(n, k)  # every returned hit is reranked
        if not (s.rerank if rerank is None else rerank):
            # as listed with reranking: page by page over as many candidates
            got = self.retrieve(query, n if copies and s.page_first else k, mode, filters)
            return replace(
                got, hits=shown(got.hits, k, s) if copies else got.hits,
                rerank_status=RerankStatus.NOT_REQUESTED, rerank_reason="not requested",
            )
        first = self.retrieve(query, n, mode, filters)
        asked = query if question is None else INVISIBLE.sub("", question)
        first.names = self.names(asked, first.terms)
        first.tools = tuple(tools(asked, self.words, first.terms, first.n_chunks, first.names))
        first.corpus = self
        return self.rerank_result(first, k, n, copies)

    def names(self, question: str, terms: Sequence[Term]) -> dict[str, str]:
        """What ``question`` writes as a name or code (``evidence.written_names``), and the
        commands a how-to question asks its steps in or with that the corpus never
        mentions (``evidence.commands``; ``terms``: the question's, with their counts)."""
        return commands(question, self.words, terms) | written_names(question)

    def writes(self, words: list[str]) -> bool | None:
        """Whether the corpus writes ``words`` (a phrase's, lowercase) in a row anywhere
        (``Generation.writes``; None: not known)."""
        stems = [s for w in words for s in tokenize(w)]
        with self.reader.in_use() as reader:
            return reader.writes(stems, phrase_pattern(words))

    def opening(self, chunk: Chunk) -> Chunk | None:
        """The passage that opens ``chunk``'s section when ``chunk`` continues it (the
        same section in the passages before it, at most ``OPENING_LOOKBACK`` back); None
        when ``chunk`` opens it, or the opening is further back."""
        if chunk.chunk_no == 0:
            return None
        with self.reader.in_use() as reader:
            before = reader.doc_chunks(chunk.doc_id, max(0, chunk.chunk_no - OPENING_LOOKBACK),
                                       chunk.chunk_no - 1)
        same = list(itertools.takewhile(lambda c: c.section == chunk.section, reversed(before)))
        if not same or (len(same) == len(before) and same[-1].chunk_no > 0):
            return None  # the section may begin further back
        return same[-1]

    def preceding(self, chunk: Chunk) -> Chunk | None:
        """The passage just before ``chunk`` in its section; None when ``chunk`` opens it."""
        if chunk.chunk_no == 0:
            return None
        with self.reader.in_use() as reader:
            before = reader.doc_chunks(chunk.doc_id, chunk.chunk_no - 1, chunk.chunk_no - 1)
        return before[0] if before and before[0].section == chunk.section else None

    def focal(self, question: str, query: str) -> list[str]:
        """What the evidence check would look for in ``question`` (asked as ``query``):
        its focal terms, casefolded. Two questions that differ only here share results."""
        with self.reader.in_use() as reader:
            terms, n = key_terms(query, reader), reader.n_chunks
        names = self.names(question, terms)
        steps_in = targets(question, names)
        return sorted([t.word.casefold() for t in focal_terms(terms, names, n, steps_in=steps_in)]
                      + as_written(names))

    def passages(self, first: SearchResult, cands: list[Hit]) -> list[str]:
        """What the cross-encoder reads of each candidate (the studies use it)."""
        assert self.reranker is not None
        return passages(first, cands, self.reranker, self.settings)

    def rerank_result(self, first: SearchResult, k: int, n: int,
                      copies: bool = True) -> SearchResult:
        """Rerank the first ``n`` hits of ``first``, blend, apply the floor, keep ``k``
        (``copies``: as ``search``)."""
        return rerank(first, k, n, self.reranker, self.cascade, self.settings,
                      self.rerank_error, copies)

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
            return first_stage(reader, self.embedder, self.settings, query, k,
                               Mode.from_str(mode), filters)
