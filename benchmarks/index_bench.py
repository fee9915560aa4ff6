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
import sys
import time
from pathlib import Path

import numpy as np

from mcp_rag.embedding import load_embedder
from mcp_rag.indexer import index_paths
from mcp_rag.metrics import docs_from_chunks, ndcg_at_k, recall_at_k
from mcp_rag.models import resolve
from mcp_rag.pipeline import Pipeline
from mcp_rag.settings import Settings
from mcp_rag.store import read_current


def load_beir(dataset: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    queries = {}
    for line in (dataset / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        queries[q["_id"]] = q["text"]
    qrels: dict[str, dict[str, int]] = {}
    for line in (dataset / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(score)
    return {q: queries[q] for q in qrels if q in queries}, qrels


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(xs, p)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--queries", type=int, default=0, help="Use only the first N queries.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the numbers here.")
    args = ap.parse_args()

    base = Settings()
    s = Settings(index=args.index, candidates=100, max_chunks_per_doc=1)
    out: dict = {"dataset": str(args.dataset), "split": args.split}
    if read_current(args.index) is None:
        emb = load_embedder(resolve(base.embedder, base.models, "embedder"))
        t = time.perf_counter()
        rep = index_paths(args.index, [args.dataset / "corpus.jsonl"], emb)
        secs = time.perf_counter() - t
        out["indexing"] = {
            "docs": rep.added,
            "chunks": rep.embedded_chunks,
            "seconds": round(secs, 1),
            "chunks_per_s": round(rep.embedded_chunks / secs, 1),
        }
        print(f"indexed {rep.added} docs, {rep.embedded_chunks} chunks in {secs:.1f}s "
              f"({rep.embedded_chunks / secs:.1f} chunks/s)", file=sys.stderr)
    p = Pipeline(s)
    queries, qrels = load_beir(args.dataset, args.split)
    items = list(queries.items())[: args.queries or None]
    quality = {}
    stage_ms: dict[str, list[float]] = {}
    for mode in ("bm25", "dense", "hybrid"):
        nd, r100 = [], []
        for qid, text in items:
            res = p.retrieve(text, 100, mode=mode)
            ranking = docs_from_chunks([h.chunk.doc_id for h in res.hits])
            nd.append(ndcg_at_k(ranking, qrels[qid], 10))
            r100.append(recall_at_k(ranking, qrels[qid], 100))
            if mode == "hybrid":
                for k, v in res.timings_ms.items():
                    stage_ms.setdefault(k, []).append(v)
        quality[mode] = {"ndcg@10": round(statistics.mean(nd), 4),
                         "recall@100": round(statistics.mean(r100), 4)}
    out["quality"] = quality
    out["latency_ms"] = {
        k: {"p50": round(pct(v, 50), 2), "p95": round(pct(v, 95), 2)} for k, v in stage_ms.items()
    }
    out["queries"] = len(items)
    print(f"\n{len(items)} queries, {p.reader.n_chunks} chunks\n")
    print("| mode | nDCG@10 | Recall@100 |\n|---|---|---|")
    for mode, q in quality.items():
        print(f"| {mode} | {q['ndcg@10']:.3f} | {q['recall@100']:.3f} |")
    print("\n| stage (hybrid, k=100) | p50 ms | p95 ms |\n|---|---|---|")
    for k, v in out["latency_ms"].items():
        print(f"| {k} | {v['p50']:.2f} | {v['p95']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
