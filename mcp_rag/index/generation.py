"""The backend contract, written once: what an open generation answers (``Generation``) and
what stores generations (``GenerationStore``). The embedded index (``store.IndexReader``,
``backend.Embedded``) and Milvus (``milvus.MilvusReader``, ``backend.Milvus``) both meet
it, and mypy checks that they do (``backend.py``); everything above ``index/`` uses only
these methods, so a new backend is one module that meets them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

import numpy as np

from mcp_rag.types import Chunk, Document

if TYPE_CHECKING:
    from mcp_rag.index.manifest import Manifest
    from mcp_rag.index.store import DocInfo, NewGeneration

# What ``Generation.restrict`` returns for a filter, handed back to ``lexical`` and
# ``nearest`` as it is: a row mask (embedded) or a filter expression (Milvus); None: all.
Restriction = Any


class Frequencies(Protocol):
    """Document frequencies of BM25 tokens (a generation, or a BM25 index being built)."""

    def df(self, stem: str) -> int: ...

    def dfs(self, stems: Sequence[str]) -> dict[str, int]: ...


class Generation(Frequencies, Protocol):
    """One generation of an index, open for reading, whichever backend holds it."""

    index_dir: Path
    manifest: Manifest
    calibration: dict | None  # the answerability calibration, None before the first

    @property
    def doc_ids(self) -> list[str]: ...  # sorted

    @property
    def generation(self) -> int: ...

    @property
    def n_chunks(self) -> int: ...

    @property
    def n_embedded(self) -> int: ...  # rows 0..n_embedded-1 have a vector

    # Its life: held by queries (in_use), retired when a newer one switches in.
    def is_current(self) -> bool: ...

    def in_use(self) -> AbstractContextManager[Self, bool | None]: ...

    def retire(self) -> None: ...

    def close(self) -> None: ...

    # The first stage.
    def restrict(self, filters: Mapping[str, str] | None) -> Restriction: ...

    def lexical(self, query: str, n: int, allowed: Restriction = None
                ) -> tuple[np.ndarray, np.ndarray]: ...

    def nearest(self, vector: np.ndarray, n: int, allowed: Restriction = None
                ) -> tuple[np.ndarray, np.ndarray]: ...

    def doc_of(self, rows: Sequence[int]) -> list[int]: ...

    # Whether any chunk holding every one of ``stems`` has ``pattern`` in its casefolded
    # text ("create" and "type", then "create type" in a row); None: not known.
    def writes(self, stems: Sequence[str], pattern: re.Pattern[str]) -> bool | None: ...

    # Reading what is stored.
    def chunks(self, rows: Sequence[int]) -> list[Chunk]: ...

    def chunk_by_id(self, chunk_id: str) -> Chunk | None: ...

    def doc_chunks(self, doc_id: str, first: int, last: int) -> list[Chunk]: ...

    def document(self, doc_id: str) -> Document | None: ...

    def documents(self, after: str | None = None, limit: int | None = None) -> list[dict]: ...

    def collections(self) -> dict[str, tuple[int, int]]: ...

    # What the next indexing run builds on, and what tells clients what changed.
    def doc_infos(self) -> dict[str, DocInfo]: ...

    def doc_hashes(self) -> dict[str, str]: ...

    def chunk_rows_for_docs(self, doc_ids: set[str]) -> np.ndarray: ...

    def vectors(self, rows: Sequence[int]) -> np.ndarray: ...  # rows below n_embedded


class GenerationStore(Protocol):
    """Where an index's generations live: opens the live one, numbers the next, writes it
    beside the live one and switches to it atomically."""

    index_dir: Path

    @property
    def name(self) -> str: ...

    def open(self) -> Generation: ...

    def next_generation(self) -> int: ...

    def write(self, current: Any, gen: NewGeneration, bm25_tokens: list[list[str]],
              kept_chunks: list[Chunk]) -> None: ...


def coverage(g: Generation) -> float:
    """The share of ``g``'s chunks that have a vector: below 1 while a first index is being
    embedded (the rest are found by BM25 alone)."""
    return g.n_embedded / g.n_chunks if g.n_chunks else 1.0
