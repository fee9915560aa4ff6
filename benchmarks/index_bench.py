"""Indexing throughput, per-stage query latency and first-stage quality on a BEIR dataset.

    python benchmarks/index_bench.py --dataset ../shared/datasets/scifact --index /tmp/sf

Builds the index if it is missing (reporting chunks/s), then runs every test query in
bm25, dense and hybrid mode and prints nDCG@10 / Recall@100 per mode (documents ranked
by their best chunk) and the median / p95 latency of each stage. Not a test: numbers
on a shared machine vary, so compare runs made side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from mcp_rag.evaluate.beir import load_qrels, load_queries
from mcp_rag.evaluate.quality import evaluate
from mcp_rag.index.update import index_paths
from mcp_rag.models.embedding import load_embedder
from mcp_rag.models.pack import resolve
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings


def load_beir(dataset: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    queries, qrels = load_queries(dataset), load_qrels(dataset, split)
    return {q: queries[q] for q in qrels if q in queries}, qrels


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(xs, p)) if xs else float("nan")


def throughput(dataset: Path, n_docs: int, base: Settings) -> dict:
    """Time a from-scratch index of the first ``n_docs`` documents (load, chunk, embed, write)."""
    import tempfile

    emb = load_embedder(resolve(base.embedder, base.models, "embedder"))
    lines = (dataset / "corpus.jsonl").read_text().splitlines()[:n_docs]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("\n".join(lines))
        t = time.perf_counter()
        rep = index_paths(Path(tmp) / "index", [corpus], emb, quiet=True)
        secs = time.perf_counter() - t
        r = Pipeline(Settings(index=Path(tmp) / "index"), embedder=emb).reader
        toks = [emb.count_tokens(c.text) for c in r.chunks(list(range(r.n_chunks)))]
    return {
        "docs": rep.added,
        "chunks": rep.embedded_chunks,
        "seconds": round(secs, 1),
        "chunks_per_s": round(rep.embedded_chunks / secs, 1),
        "tokens_per_chunk": round(statistics.mean(toks), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--queries", type=int, default=0, help="Use only the first N queries.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the numbers here.")
    ap.add_argument("--rerank", action="store_true",
                    help="Also evaluate the default pipeline: hybrid -> cross-encoder blend.")
    ap.add_argument("--throughput-docs", type=int, default=300,
                    help="Index the first N documents into a scratch index to time it (0: skip).")
    args = ap.parse_args()

    base = Settings()
    s = Settings(index=args.index, candidates=100, max_chunks_per_doc=1, rerank=False)
    out: dict = {"dataset": str(args.dataset), "split": args.split}
    if args.throughput_docs:
        out["throughput"] = throughput(args.dataset, args.throughput_docs, base)
        t = out["throughput"]
        print(f"throughput: {t['docs']} docs, {t['chunks']} chunks in {t['seconds']}s = "
              f"{t['chunks_per_s']} chunks/s ({t['tokens_per_chunk']} tokens/chunk)")
    emb = load_embedder(resolve(base.embedder, base.models, "embedder"))
    stages = ["bm25", "dense", "hybrid"] + (["reranked"] if args.rerank else [])
    ev = evaluate(args.dataset, base, emb, stages=stages, split=args.split,
                  index_dir=args.index, max_queries=args.queries)
    out["index"] = ev["index"]  # built now (build_seconds) or reused
    quality = {st: {key: v for key, v in row.items() if key in ("ndcg@10", "recall@100")}
               for st, row in ev["stages"].items()}
    out["quality"] = quality
    # Where the time of one hybrid query goes, stage by stage.
    p = Pipeline.from_settings(s, embedder=emb)
    queries, _ = load_beir(args.dataset, args.split)
    items = list(queries.items())[: args.queries or None]
    stage_ms: dict[str, list[float]] = {}
    for _, text in items:
        for key, v in p.retrieve(text, 100).timings_ms.items():
            stage_ms.setdefault(key, []).append(v)
    if "reranked" in ev["latency_ms"]:
        stage_ms["search with rerank"] = [ev["latency_ms"]["reranked"]["p50"]]
    out["latency_ms"] = {
        k: {"p50": round(pct(v, 50), 2), "p95": round(pct(v, 95), 2)} for k, v in stage_ms.items()
    }
    out["queries"] = len(items)
    # rank-bm25's get_scores (a Python loop over every row per query term) against our
    # postings on the same rows and queries: same scores, measured side by side.
    from rank_bm25 import BM25Okapi

    from mcp_rag.index.lexical import tokenize
    from mcp_rag.ingest.chunking import index_text

    chunks = p.reader.chunks(list(range(p.reader.n_chunks)))
    ref = BM25Okapi([tokenize(index_text(c)) for c in chunks])
    ours_ms, ref_ms = [], []
    for _, text in items[:100]:
        toks = tokenize(text)
        t = time.perf_counter()
        a = p.reader.bm25.scores(toks)
        ours_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        b = ref.get_scores(toks)
        ref_ms.append((time.perf_counter() - t) * 1000)
        assert np.allclose(a, b, rtol=1e-4, atol=1e-4)
    out["bm25_scoring_ms"] = {"postings_p50": round(pct(ours_ms, 50), 3),
                              "rank_bm25_p50": round(pct(ref_ms, 50), 3)}
    print(f"\n{len(items)} queries, {p.reader.n_chunks} chunks\n")
    print("| mode | nDCG@10 | Recall@100 |\n|---|---|---|")
    for mode, q in quality.items():
        r100 = f"{q['recall@100']:.3f}" if "recall@100" in q else "–"
        print(f"| {mode} | {q['ndcg@10']:.3f} | {r100} |")
    print("\n| stage (hybrid, k=100) | p50 ms | p95 ms |\n|---|---|---|")
    for k, v in out["latency_ms"].items():
        print(f"| {k} | {v['p50']:.2f} | {v['p95']:.2f} |")
    b = out["bm25_scoring_ms"]
    print(f"\nBM25 scoring p50: postings {b['postings_p50']:.2f} ms, rank-bm25 get_scores "
          f"{b['rank_bm25_p50']:.2f} ms ({b['rank_bm25_p50'] / b['postings_p50']:.0f}x)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
