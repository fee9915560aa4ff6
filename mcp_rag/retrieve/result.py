"""What a search returns, and the check every query passes first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from mcp_rag.errors import QueryError
from mcp_rag.index.scope import Term
from mcp_rag.ingest.text import INVISIBLE
from mcp_rag.limits import MAX_QUERY_CHARS
from mcp_rag.retrieve.answerability import Decision
from mcp_rag.types import Chunk, Hit, Mode, RerankStatus


class Corpus(Protocol):
    """Lookups in the index a result came from, made only when an answer needs them."""

    def writes(self, words: list[str]) -> bool | None:
        """Whether the corpus writes a phrase's ``words`` (lowercase) in a row anywhere;
        None: not known."""
        ...

    def opening(self, chunk: Chunk) -> Chunk | None:
        """The passage that opens ``chunk``'s section, when ``chunk`` continues it."""
        ...

    def preceding(self, chunk: Chunk) -> Chunk | None:
        """The passage just before ``chunk`` in its section; None when ``chunk`` opens it."""
        ...


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
    # the query's vector, as the first stage embedded it (None: no dense retrieval)
    query_vector: np.ndarray | None = field(default=None, repr=False, compare=False)
    decision: Decision | None = None  # does the index hold the answer (when reranked)
    names: dict[str, str] = field(default_factory=dict)  # words written as names or code
    tools: tuple[Term, ...] = ()  # lower-case words it asks its steps with (``evidence.tools``)
    coverage: float = 1.0  # share of the generation's chunks with a vector (a first index)
    # What the evidence check and the answer may look up in the index afterwards (the
    # pipeline); None: nothing (a result built by hand).
    corpus: Corpus | None = field(default=None, repr=False, compare=False)

    @property
    def reranked(self) -> bool:
        return self.rerank_status is RerankStatus.RERANKED


def validate_query(query: str) -> str:
    """``query`` trimmed and without invisible characters (a zero-width space pasted
    from PostgreSQL's manual inside ``ddl_command_start``: ``ingest.text.INVISIBLE``), or
    a ``QueryError`` saying what is wrong with it."""
    if isinstance(query, str):
        query = INVISIBLE.sub("", query)
    if not isinstance(query, str) or not query.strip():
        raise QueryError("query is empty: pass the question or keywords to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(
            f"query of {len(query)} characters is over the limit of {MAX_QUERY_CHARS}; "
            f"shorten it to the question itself"
        )
    return query.strip()
