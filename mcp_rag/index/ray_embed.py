"""Indexing fanned out over a Ray cluster (optional extra ``[ray]``): ``index --ray``.

The driver discovers the files and decides from their stamps which changed; Ray tasks
read those (``load_on_ray``: the converters, PDF and office files included) and chunk the
changed documents (``chunk_on_ray``, with the embedder's tokenizer alone); the chunks'
texts become a Ray Dataset and ``map_batches`` runs them through a pool of actors, each
holding one model session made once (``factory``). Vectors come back in
order, identical to a local run (the embedder's output never depends on its batch), and
the driver writes the generation with the usual atomic switch, into either backend. A
worker that dies is restarted and its batch retried by Ray; if the job fails anyway, no
generation is written.

``ray_cluster(address)`` joins a cluster (``ray start --head`` / KubeRay's address) or,
with ``local``, starts one on this machine bound to 127.0.0.1 and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcp_rag.errors import QueryError
from mcp_rag.models.embedding import token_counter
from mcp_rag.types import Embedder

log = logging.getLogger(__name__)

INSTALL = "pip install 'mcp-rag-server[ray]'"
LOCAL = "local"
MAX_TEMP_CHARS = 36


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise QueryError(f"--ray needs Ray. Install it with: {INSTALL}") from e
    return ray


@contextlib.contextmanager
def ray_cluster(address: str = LOCAL, temp_dir: Path | None = None, num_cpus: int | None = None
                ) -> Iterator[Any]:
    """Ray, connected to ``address`` (``local``: a cluster started here, stopped on exit;
    never ``ray stop``, which would stop every Ray process on the machine)."""
    ray = _ray()
    # Ray puts Unix sockets ~70 characters deeper; the OS allows 107 in all.
    if address == LOCAL and temp_dir is not None and len(str(temp_dir)) > MAX_TEMP_CHARS:
        raise QueryError(
            f"the Ray session folder {temp_dir} is too long a path for its sockets "
            f"({len(str(temp_dir))} characters, at most {MAX_TEMP_CHARS}): set "
            f"MCP_RAG_RAY_TEMP_DIR to a shorter one, e.g. /tmp/mcp-rag-ray")
    if ray.is_initialized():  # the caller's own session (tests, notebooks)
        yield ray
        return
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                          "logging_level": logging.WARNING}
    if address == LOCAL:
        kw.update(_node_ip_address="127.0.0.1", num_cpus=num_cpus or os.cpu_count() or 1)
        if temp_dir is not None:
            kw["_temp_dir"] = str(temp_dir)
    else:
        kw["address"] = address
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its progress, not ours
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    ray.init(**kw)
    log.info("Ray %s ready in %.1f s", "started here" if address == LOCAL else address,
             time.perf_counter() - t)
    try:
        yield ray
    finally:
        ray.shutdown()


FILES_PER_TASK = 16


def _load_some(files: list[Any]) -> list[Any]:
    from mcp_rag.index.update import load_here

    return load_here(files)


def load_on_ray(files: list[Any]) -> list[Any]:
    """``load_here`` as Ray tasks of FILES_PER_TASK files each (retried if a worker dies):
    each file's documents, or why it cannot be read, in the files' order. The files must
    be on a path every node sees."""
    if not files:
        return []
    ray = _ray()
    task = ray.remote(num_cpus=1, max_retries=3)(_load_some)
    parts = [files[i:i + FILES_PER_TASK] for i in range(0, len(files), FILES_PER_TASK)]
    refs = [task.remote(p) for p in parts]
    size = {r: len(p) for r, p in zip(refs, parts, strict=True)}
    t = last = time.perf_counter()
    done = 0
    pending = list(refs)
    while pending:  # progress as tasks finish; results are taken in order below
        ready, pending = ray.wait(pending, num_returns=1)
        done += size[ready[0]]
        if not pending or time.perf_counter() - last > 5:
            last = time.perf_counter()
            print(f"ray: {done}/{len(files)} files read "
                  f"({done / max(last - t, 1e-9):.1f} files/s)", file=sys.stderr, flush=True)
    return [r for got in ray.get(refs) for r in got]


DOCS_PER_TASK = 64


def _chunk_some(docs: list[Any], count_tokens: Callable[[str], int], target: int,
                overlap: int) -> list[list[Any]]:
    from mcp_rag.index.update import chunk_here

    return chunk_here(docs, count_tokens, target, overlap)


def chunk_on_ray(docs: list[Any], count_tokens: Callable[[str], int], target: int,
                 overlap: int) -> list[list[Any]]:
    """``chunk_here`` as Ray tasks of DOCS_PER_TASK documents, in the documents' order."""
    if not docs:
        return []
    ray = _ray()
    task = ray.remote(num_cpus=1, max_retries=3)(_chunk_some)
    counter = ray.put(count_tokens)
    parts = [docs[i:i + DOCS_PER_TASK] for i in range(0, len(docs), DOCS_PER_TASK)]
    refs = [task.remote(p, counter, target, overlap) for p in parts]
    return [cs for got in ray.get(refs) for cs in got]


class _Embed:
    """One actor of the pool: one model session, made once, for every batch it gets."""

    def __init__(self, factory: Callable[[], Embedder]) -> None:
        self.embedder = factory()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.embed_documents([str(t) for t in batch["text"]])
        return {"i": batch["i"], "vector": np.asarray(vectors, dtype=np.float32)}


class RayEmbedder:
    """The local embedder for everything but ``embed_documents``, which Ray fans out."""

    def __init__(self, local: Embedder, factory: Callable[[], Embedder], *, actors: int = 2,
                 batch_size: int = 64, cpus_per_actor: float = 1.0, quiet: bool = False
                 ) -> None:
        self.local, self.factory = local, factory
        self.actors, self.batch_size, self.cpus = actors, batch_size, cpus_per_actor
        self.quiet = quiet
        self.name, self.dim = local.name, local.dim
        self.seconds = 0.0

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def embed_query(self, text: str) -> np.ndarray:
        return self.local.embed_query(text)

    def token_counter(self) -> Callable[[str], int]:
        """What the workers that chunk count tokens with (the local model's tokenizer)."""
        return token_counter(self.local)

    def __getattr__(self, name: str) -> Any:  # embed_queries and the like, where it has them
        if name == "local":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.local, name)

    def embed_documents(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ray = _ray()
        batches = -(-len(texts) // self.batch_size)
        actors = min(self.actors, batches)  # no actor (and no model load) without work
        ds = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)],
                                 override_num_blocks=min(batches, 4 * actors))
        vectors = ds.map_batches(
            _Embed, fn_constructor_kwargs={"factory": self.factory},
            batch_size=self.batch_size, concurrency=actors, num_cpus=self.cpus,
        )  # Ray Data restarts a dead actor and resends its batch (tested)
        t = time.perf_counter()
        done, last = 0, 0.0
        for batch in vectors.iter_batches(batch_size=None, batch_format="numpy"):
            out[batch["i"]] = batch["vector"]
            done += len(batch["i"])
            if progress is not None:
                progress(len(batch["i"]))
            if not self.quiet and (done == len(texts) or time.perf_counter() - last > 5):
                last = time.perf_counter()
                rate = done / max(last - t, 1e-9)
                print(f"ray: {done}/{len(texts)} chunks embedded ({rate:.1f} chunks/s, "
                      f"{self.actors} actors)", file=sys.stderr, flush=True)
        self.seconds = time.perf_counter() - t
        return out
