"""Records shared by every stage, and the model protocols the stages talk to.

Records are frozen: a stage returns new values, never edits old ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from mcp_rag.errors import QueryError

if TYPE_CHECKING:
    import numpy as np


# (offset into a document's text, heading) pairs, sorted by offset: what loaders return.
Sections = tuple[tuple[int, str], ...]
DEFAULT_COLLECTION = "default"  # the collection of documents indexed without --collection


@dataclass(frozen=True)
class Document:
    """One source document, as text, with where its sections and pages start."""

    doc_id: str
    source: str
    title: str
    text: str
    root: str = ""
    format: str = "txt"
    # (offset into text, heading) pairs, sorted by offset; a heading applies until the next one.
    sections: tuple[tuple[int, str], ...] = ()
    # (offset into text, 1-based page number) pairs, sorted by offset (PDF only).
    pages: tuple[tuple[int, int], ...] = ()
    content_hash: str = ""
    mtime: float = 0.0
    size: int = 0
    collection: str = DEFAULT_COLLECTION


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: ``document.text[start:end] == text``."""

    doc_id: str
    chunk_no: int
    text: str
    start: int
    end: int
    title: str = ""
    section: str = ""
    page: int | None = None
    source: str = ""

    @property
    def chunk_id(self) -> str:
        return chunk_id(self.doc_id, self.chunk_no)


def chunk_id(doc_id: str, chunk_no: int) -> str:
    return f"{doc_id}#{chunk_no}"


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with the evidence of every stage that found it (ranks are 1-based)."""

    chunk: Chunk
    score: float
    bm25_rank: int | None = None
    dense_rank: int | None = None
    bm25_score: float | None = None
    dense_score: float | None = None
    first_stage_rank: int | None = None
    rerank_score: float | None = None  # cross-encoder logit
    relevance: float | None = None  # calibrated 0..1 (sigmoid of the logit)


@runtime_checkable
class Embedder(Protocol):
    """What the index needs from an embedding model."""

    name: str
    dim: int

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class Reranker(Protocol):
    """What the pipeline needs from a cross-encoder: a raw score (logit) per pair."""

    name: str

    def predict(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray: ...


class Choice(StrEnum):
    """A closed set of names; ``from_str`` turns a name into a member or lists the valid ones."""

    @classmethod
    def from_str(cls, value: str) -> Self:
        try:
            return cls(value)
        except ValueError:
            raise QueryError(
                f"{cls.__name__.lower()} {value!r} is unknown: choose one of "
                f"{', '.join(m.value for m in cls)}"
            ) from None


class Mode(Choice):
    """Which first stage retrieves: BM25, dense, or both fused by RRF."""

    HYBRID = "hybrid"
    BM25 = "bm25"
    DENSE = "dense"


class Stage(Choice):
    """A stage of the pipeline that evaluation and benchmarks measure on its own."""

    BM25 = "bm25"
    DENSE = "dense"
    HYBRID = "hybrid"
    RERANKED = "reranked"


class RerankStatus(Choice):
    """What the cross-encoder did for a search; the reason beside it is for people to read."""

    RERANKED = "reranked"
    NOT_REQUESTED = "not requested"
    SKIPPED = "skipped"  # selective reranking: the first stage was confident
    UNAVAILABLE = "unavailable"  # no cross-encoder loaded (it failed to load, or none given)
    FAILED = "failed"  # the cross-encoder failed on this query

    @property
    def model_works(self) -> bool:
        """True when the cross-encoder is loaded and answered (so it can score sentences)."""
        return self in (RerankStatus.RERANKED, RerankStatus.SKIPPED)

    @property
    def cacheable(self) -> bool:
        """False for a result served while the model was failing: next time it may work."""
        return self is not RerankStatus.FAILED


def cite_label(source: str, section: str = "", page: int | None = None) -> str:
    """Where a passage is, as cited to people and models: ``source § section p.N``.

    Example:
        >>> cite_label("guides/refunds.md", "Refunds > Annual plans", 3)
        'guides/refunds.md § Refunds > Annual plans p.3'
    """
    return source + (f" § {section}" if section else "") + (f" p.{page}" if page else "")
