"""Fusion functions for the first stage, compared offline on cached BM25 and dense lists.

    python research/fusion_study.py --index-base /tmp/evalidx/eval \
        ../shared/datasets/scifact:train ../shared/datasets/nfcorpus:dev [--json OUT]

For every DATASET:SPLIT, each query's top-``--depth`` chunks from BM25 and from dense are
taken once from the dataset's eval index (built by `mcp-rag eval`; found by the same key),
collapsed to documents (best chunk), and then every fusion function is scored on them in
memory: nDCG@10 per collection, with the mean over collections (the choice must hold on
all of them, not one). Tune on train/dev splits; check the winner on test with
`mcp-rag eval` once it is the default.

Fusion functions compared (Bruch, Gai & Ingber, "An Analysis of Fusion Functions for
Hybrid Retrieval", TOIS 2023, for RRF vs convex combination):
- ``rrf``: reciprocal rank fusion, k = 60 (the current default);
- ``cc-minmax-A``: convex combination A * dense + (1 - A) * bm25 of min-max normalised
  scores over each list;
- ``cc-z-A``: the same with z-score normalisation;
- ``adaptive``: a convex combination whose weight follows each retriever's confidence on
  this query (the gap between its top score and the mean of its top 10, normalised by
  their spread), so a retriever that separates nothing counts less.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from mcp_rag.evaluate.beir import judged_queries, load_qrels, load_queries
from mcp_rag.evaluate.metrics import ndcg_at_k
from mcp_rag.evaluate.quality import eval_index_dir
from mcp_rag.models.embedding import load_embedder
from mcp_rag.models.pack import resolve
from mcp_rag.retrieve.pipeline import MAX_QUERY_CHARS, Pipeline
from mcp_rag.settings import Settings


def lists_for(dataset: Path, split: str, base: Path, depth: int, s: Settings, emb) -> list:
    """[(qrels, {doc: bm25 score}, {doc: dense score})] per judged query."""
    index = eval_index_dir(base, dataset / "corpus.jsonl", emb.name, s)
    if not (index / "CURRENT").exists():
        raise SystemExit(f"no eval index for {dataset} under {base}: run `mcp-rag eval` first")
    p = Pipeline(s.model_copy(update={"index": index, "rerank": False, "candidates": depth,
                                      "max_chunks_per_doc": 1}), embedder=emb)
    queries, qrels = load_queries(dataset), load_qrels(dataset, split)
    out = []
    for qid, text in judged_queries(queries, qrels):
        text = text[:MAX_QUERY_CHARS]
        per = []
        for mode in ("bm25", "dense"):
            hits = p.retrieve(text, depth, mode=mode).hits
            per.append({h.chunk.doc_id: h.score for h in hits})
        out.append((qrels[qid], per[0], per[1]))
    return out


def _norm(scores: dict[str, float], how: str) -> dict[str, float]:
    if not scores:
        return {}
    v = np.array(list(scores.values()), dtype=np.float64)
    if how == "minmax":
        lo, hi = v.min(), v.max()
        z = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    else:
        sd = v.std()
        z = (v - v.mean()) / sd if sd > 0 else np.zeros_like(v)
    return dict(zip(scores, z.tolist(), strict=True))


def _confidence(scores: dict[str, float]) -> float:
    """How far the top score stands out of the top 10, in units of their spread."""
    v = np.sort(np.array(list(scores.values()), dtype=np.float64))[::-1][:10]
    if len(v) < 2 or v.std() == 0:
        return 0.0
    return float((v[0] - v.mean()) / v.std())


def fuse(kind: str, bm25: dict[str, float], dense: dict[str, float]) -> list[str]:
    docs = set(bm25) | set(dense)
    if kind == "rrf":
        rb = {d: r for r, d in enumerate(sorted(bm25, key=lambda d: -bm25[d]), 1)}
        rd = {d: r for r, d in enumerate(sorted(dense, key=lambda d: -dense[d]), 1)}
        score = {d: (1 / (60 + rb[d]) if d in rb else 0) + (1 / (60 + rd[d]) if d in rd else 0)
                 for d in docs}
    else:
        name, *rest = kind.split("-")
        how = rest[0] if name == "cc" else "minmax"
        nb, nd = _norm(bm25, how), _norm(dense, how)
        floor_b = min(nb.values(), default=0.0)
        floor_d = min(nd.values(), default=0.0)
        if name == "cc":
            a = float(rest[1])
        else:  # adaptive
            cb, cd = _confidence(bm25), _confidence(dense)
            a = 0.5 if cb + cd == 0 else cd / (cb + cd)
        score = {d: a * nd.get(d, floor_d) + (1 - a) * nb.get(d, floor_b) for d in docs}
    return sorted(docs, key=lambda d: -score[d])


KINDS = (["rrf", "adaptive"]
         + [f"cc-minmax-{a}" for a in (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)]
         + [f"cc-z-{a}" for a in (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)])


def _ranked(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda d: -scores[d])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="+", help="DATASET:SPLIT, e.g. ../shared/datasets/scifact:train")
    ap.add_argument("--index-base", type=Path, required=True)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    s = Settings()
    emb = load_embedder(resolve(s.embedder, s.models, "embedder"))
    table: dict[str, dict[str, float]] = {}
    for spec in args.sets:
        path, split = spec.rsplit(":", 1)
        rows = lists_for(Path(path), split, args.index_base, args.depth, s, emb)
        name = f"{Path(path).name}:{split}"
        print(f"{name}: {len(rows)} queries", file=sys.stderr)
        table[name] = {
            "bm25": statistics.mean(ndcg_at_k(_ranked(b), q) for q, b, _ in rows),
            "dense": statistics.mean(ndcg_at_k(_ranked(d), q) for q, _, d in rows),
        }
        for kind in KINDS:
            table[name][kind] = statistics.mean(ndcg_at_k(fuse(kind, b, d), q) for q, b, d in rows)
    names = list(table)
    print("| fusion | " + " | ".join(names) + " | mean |")
    print("|---" * (len(names) + 2) + "|")
    for kind in ["bm25", "dense", *KINDS]:
        vals = [table[n][kind] for n in names]
        print(f"| {kind} | " + " | ".join(f"{v:.4f}" for v in vals)
              + f" | {statistics.mean(vals):.4f} |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
