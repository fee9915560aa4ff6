"""Indexing throughput: the local path against `index --ray` with 1 and 2 actors, one run.

    python benchmarks/ray_index.py --dataset ../shared/datasets/scifact --docs 600

Takes the first ``--docs`` documents of a BEIR corpus, and indexes them from scratch three
ways in one process on one machine: the local path, then a local Ray cluster (bound to
127.0.0.1, started once) reading the files in Ray tasks and embedding with 1 and with 2
actors (one model session, one thread each). Prints chunks/s of the whole run and of the
embedding alone, and Ray's fixed costs: starting the cluster and a job's first batch
(actor start and model load).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

from mcp_rag.index.manifest import BuildOptions
from mcp_rag.index.ray_embed import RayEmbedder, load_on_ray, ray_cluster
from mcp_rag.index.update import index_paths
from mcp_rag.models.embedding import load_embedder
from mcp_rag.models.pack import resolve
from mcp_rag.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--docs", type=int, default=600)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
    corpus = work / "corpus.jsonl"
    with (args.dataset / "corpus.jsonl").open() as src, corpus.open("w") as out:
        for i, line in enumerate(src):
            if i == args.docs:
                break
            out.write(line)
    s = Settings(index=work / "x")
    ref = resolve(s.embedder, s.models, "embedder")
    local = load_embedder(ref, batch_size=s.embed_batch_size, threads=s.threads)
    factory = functools.partial(load_embedder, ref, batch_size=s.embed_batch_size, threads=1)
    rows = []

    def run(name: str, emb, load=None) -> None:
        t = time.perf_counter()
        rep = index_paths(work / name, [corpus], emb, options=BuildOptions.from_settings(s),
                          quiet=True, load=load)
        total = time.perf_counter() - t
        embed_s = getattr(emb, "seconds", None)
        rows.append({"run": name, "chunks": rep.embedded_chunks, "seconds": round(total, 1),
                     "chunks/s": round(rep.embedded_chunks / total, 1),
                     "embedding chunks/s": round(rep.embedded_chunks / embed_s, 1)
                     if embed_s else None})
        print(json.dumps(rows[-1]), flush=True)

    run("local", local)
    t = time.perf_counter()
    with ray_cluster("local", temp_dir=work / "r", num_cpus=2):
        start = time.perf_counter() - t
        for actors in (1, 2):
            run(f"ray-{actors}", RayEmbedder(local, factory, actors=actors, quiet=True),
                load_on_ray)
        t = time.perf_counter()
        one = RayEmbedder(local, factory, actors=1, quiet=True)
        one.embed_documents(["warm-up"])
        first = time.perf_counter() - t
    print(json.dumps({"cpu": platform.processor() or platform.machine(),
                      "cluster start s": round(start, 1), "job with one batch s": round(first, 1)}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
