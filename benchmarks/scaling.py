"""How index cost grows: build time, size on disk, memory and per-stage latency at 10k-1M chunks.

    python benchmarks/scaling.py --work /tmp/scaling --sizes 10000,100000,1000000 \\
        [--dense flat,hnsw] [--queries 50] [--json out.json]

A synthetic corpus (one chunk per document, ~60 words drawn from a Zipf-distributed
vocabulary of 50k made-up words, seeded) is indexed with a stand-in embedder that returns
seeded random unit vectors of the real dimension (384), so the measured build time is
everything but the model: loading, chunking, BM25, FAISS, SQLite and the atomic write.
Embedding with the real model is reported apart, from its measured rate (--embed-rate).
Queries (3-6 vocabulary words) run in a fresh subprocess per index, so its peak memory is
that of a server holding the index: BM25, dense, fusion and fetch p50/p95.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

DIM = 384
VOCAB = 50_000
WORDS_PER_DOC = 60


class RandomEmbedder:
    """Seeded random unit vectors: the cost of a real index without the model."""

    name = "bench/random-384"
    dim = DIM

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _vec(self, text: str) -> np.ndarray:
        v = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(DIM)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def embed_documents(self, texts, progress=None) -> np.ndarray:
        out = np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)
        if progress:
            progress(len(texts))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)


def vocabulary(seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    syll = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < VOCAB:
        n = rng.integers(2, 5)
        words.add("".join(syll[i] for i in rng.integers(0, len(syll), n)))
    return sorted(words)


def write_corpus(folder: Path, n_docs: int, seed: int = 0, shard: int = 100_000) -> None:
    """BEIR-style JSONL shards of at most ``shard`` documents (a file stays under the
    loaders' 100 MB limit)."""
    words = np.array(vocabulary(seed))
    rng = np.random.default_rng(seed + 1)
    p = 1.0 / np.arange(1, VOCAB + 1) ** 1.05  # Zipf-like, as in natural text
    p /= p.sum()
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for first in range(0, n_docs, shard):
        with (tmp / f"part-{first // shard:03d}.jsonl").open("w") as f:
            for start in range(first, min(first + shard, n_docs), 10_000):
                n = min(10_000, n_docs - start)
                draws = words[rng.choice(VOCAB, size=(n, WORDS_PER_DOC), p=p)]
                for i, row in enumerate(draws):
                    body = (" ".join(row[:30]).capitalize() + ". "
                            + " ".join(row[30:]).capitalize() + ".")
                    f.write(json.dumps({"_id": f"d{start + i}", "title": "", "text": body}))
                    f.write("\n")
    tmp.rename(folder)


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build(corpus: Path, index: Path, dense: str) -> dict:
    from mcp_rag.index.manifest import BuildOptions
    from mcp_rag.index.update import index_paths

    if index.exists():
        shutil.rmtree(index)
    t = time.perf_counter()
    rep = index_paths(index, [corpus], RandomEmbedder(), options=BuildOptions(dense_index=dense),
                      quiet=True)
    secs = time.perf_counter() - t
    if rep.skipped:
        raise SystemExit(f"corpus files were skipped: {rep.skipped}")
    gen = next(p for p in index.iterdir() if p.name.startswith("gen-"))
    return {"chunks": rep.embedded_chunks, "build_s": round(secs, 1),
            "size_mb": round(du(gen) / 2**20, 1)}


def query_phase(index: Path, n_queries: int) -> dict:
    """Runs in its own process: open the index, run queries, report latency and memory."""
    from mcp_rag.evaluate.latency import peak_rss_mb
    from mcp_rag.retrieve.pipeline import Pipeline
    from mcp_rag.settings import Settings

    t = time.perf_counter()
    p = Pipeline(Settings(index=index, rerank=False), embedder=RandomEmbedder())
    open_s = time.perf_counter() - t
    words = vocabulary()
    rng = np.random.default_rng(7)
    ms: dict[str, list[float]] = {}
    for _ in range(n_queries):
        q = " ".join(words[i] for i in rng.integers(0, 5000, rng.integers(3, 7)))
        res = p.retrieve(q, 30)
        for k, v in res.timings_ms.items():
            ms.setdefault(k, []).append(v)
    return {
        "open_s": round(open_s, 2),
        "peak_rss_mb": peak_rss_mb(),
        "latency_ms": {k: {"p50": round(float(np.percentile(v, 50)), 2),
                           "p95": round(float(np.percentile(v, 95)), 2)}
                       for k, v in ms.items() if k != "embed_query"},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="Scratch folder (corpora, indexes).")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dense", default="flat,hnsw", help="Dense index kinds to build.")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--embed-rate", type=float, default=19.5,
                    help="Measured chunks/s of the real embedder (README), for the estimate.")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--query-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.query_only:
        print(json.dumps(query_phase(args.query_only, args.queries)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        corpus = args.work / f"corpus-{n}"
        if not corpus.exists():
            write_corpus(corpus, n)
        for kind in args.dense.split(","):
            index = args.work / f"index-{n}-{kind}"
            row = {"chunks_target": n, "dense": kind, **build(corpus, index, kind)}
            out = subprocess.run(
                [sys.executable, __file__, "--work", str(args.work), "--query-only", str(index),
                 "--queries", str(args.queries)],
                check=True, capture_output=True, text=True, env={**os.environ},
            )
            row.update(json.loads(out.stdout.strip().splitlines()[-1]))
            row["real_embedding_h"] = round(row["chunks"] / args.embed_rate / 3600, 1)
            rows.append(row)
            lat = row["latency_ms"]
            print(
                f"{row['chunks']:>9} chunks {kind:>4}: build {row['build_s']:>7} s "
                f"(+ ~{row['real_embedding_h']} h of real embedding), {row['size_mb']:>7} MB on "
                f"disk, open {row['open_s']} s, peak RSS {row['peak_rss_mb']} MB | p50 ms: "
                + ", ".join(f"{k} {v['p50']}" for k, v in lat.items()),
                flush=True,
            )
            shutil.rmtree(index)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
