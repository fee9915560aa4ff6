"""Where an index's generations live: files on this machine (embedded, the default) or a
Milvus server (``MCP_RAG_BACKEND=milvus``). Everything above this module opens and writes
generations through ``backend_for(settings)`` and never asks which one it has.

A backend (a ``GenerationStore``) opens the live generation (an ``IndexReader`` or a
``MilvusReader``, each a ``Generation``: the contract is ``generation.py``), numbers the
next one, and writes it beside the live one with an atomic switch.
Both keep the write lock, the last run's report and interrupted writes' leftovers in the
index folder (``--index``), so one machine writes an index at a time.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mcp_rag.index.generation import Generation, GenerationStore
from mcp_rag.index.store import IndexReader, NewGeneration, write_generation
from mcp_rag.settings import Settings
from mcp_rag.types import Chunk

if TYPE_CHECKING:
    from mcp_rag.index.milvus import MilvusReader

    # Both backends meet the contract (mypy checks these assignments).
    def _conforms(e: Embedded, m: Milvus, r: IndexReader, mr: MilvusReader) -> None:
        _: GenerationStore = e
        _ = m
        __: Generation = r
        __ = mr

__all__ = ["Backend", "Embedded", "Generation", "Milvus", "backend_for"]


class Embedded:
    """Generations as folders under the index folder (SQLite, FAISS, BM25 postings)."""

    name: Literal["embedded"] = "embedded"

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)

    def open(self) -> IndexReader:
        return IndexReader(self.index_dir)

    def next_generation(self) -> int:
        names = (re.match(r"gen-(\d+)$", p.name) for p in self.index_dir.glob("gen-*"))
        return max((int(m.group(1)) for m in names if m), default=0) + 1

    def write(self, current: Any, gen: NewGeneration, bm25_tokens: list[list[str]],
              kept_chunks: list[Chunk]) -> None:
        write_generation(self.index_dir, current, gen, bm25_tokens)


class Milvus:
    """Generations as collections on a Milvus server (``index.milvus``)."""

    name: Literal["milvus"] = "milvus"

    def __init__(self, index_dir: Path, client: Any, ns: str) -> None:
        from mcp_rag.index.milvus import answering

        self.index_dir, self.client, self.ns = Path(index_dir), answering(client), ns

    def open(self) -> MilvusReader:
        from mcp_rag.index.milvus import MilvusReader

        return MilvusReader(self.client, self.ns, self.index_dir)

    def next_generation(self) -> int:
        from mcp_rag.index.milvus import next_generation

        return next_generation(self.client, self.ns)

    def write(self, current: Any, gen: NewGeneration, bm25_tokens: list[list[str]],
              kept_chunks: list[Chunk]) -> None:
        from mcp_rag.index.milvus import write_generation as write_milvus

        dim = gen.manifest.embedder.dim
        kept = (current.vectors(gen.keep_rows.tolist()) if current is not None
                and len(gen.keep_rows) else np.zeros((0, dim), dtype=np.float32))
        self.index_dir.mkdir(parents=True, exist_ok=True)
        write_milvus(self.client, self.ns, current, gen, bm25_tokens, kept_chunks, kept)


Backend = Embedded | Milvus

_clients: dict[tuple[str, str, str], Any] = {}
_clients_lock = threading.Lock()


def backend_for(settings: Settings) -> Backend:
    """The backend ``settings`` name, for the index at ``settings.index``. The Milvus client
    is made once per process and address."""
    if settings.backend == "embedded":
        return Embedded(settings.index)
    from mcp_rag.index.milvus import connect, namespace

    if not settings.milvus_uri:
        from mcp_rag.errors import QueryError

        raise QueryError("MCP_RAG_BACKEND=milvus needs MCP_RAG_MILVUS_URI (e.g. "
                         "http://127.0.0.1:19530)")
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    key = (settings.milvus_uri, token, settings.milvus_db)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = connect(settings.milvus_uri, token, settings.milvus_db)
        client = _clients[key]
    return Milvus(settings.index, client, namespace(settings.index))
