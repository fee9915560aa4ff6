"""How deep and how much of each passage the cross-encoder must read, at equal quality.

    python research/rerank_depth.py collect --index /tmp/sf \\
        --dataset ../shared/datasets/scifact --split train --n 200 --out sf_train.jsonl
    python research/rerank_depth.py study sf_train.jsonl nf_dev.jsonl

``collect`` takes each query's top 30 first-stage hits (the default hybrid) and scores
them with the cross-encoder three ways: whole passages (up to 512 tokens, the old
default), the passage's first W tokens, and its best W-token window (``retrieve.focus``,
what is served), for each W of ``--windows``; with the time each took. ``study`` replays
the default blend (RRF of the cross-encoder rank, weight 0.3, and the first-stage rank,
k 10) over the top M of them (the rest follow in first-stage order, as ``mcp-rag eval``
ranks them) and prints nDCG@10 and nDCG@5 against whole passages at M = 30, and the
cross-encoder time per query. Tune on train/dev splits; report on test with ``mcp-rag
eval``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from functools import partial
from pathlib import Path

from mcp_rag.evaluate.beir import judged_queries, load_qrels, load_queries
from mcp_rag.evaluate.metrics import docs_from_chunks, ndcg_at_k
from mcp_rag.ingest.chunking import index_text
from mcp_rag.models.rerank import token_starts
from mcp_rag.retrieve.focus import PAIR_SPECIALS, windows
from mcp_rag.retrieve.fusion import blend
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

DEPTH = 30


def collect(args: argparse.Namespace) -> None:
    s = Settings(index=args.index, rerank_candidates=DEPTH, cache_enabled=False)
    pipe = Pipeline.from_settings(s)
    ce = pipe.reranker
    assert ce is not None, pipe.rerank_error
    starts = partial(token_starts, ce)
    texts, qrels = load_queries(args.dataset), load_qrels(args.dataset, args.split)
    items = judged_queries(texts, qrels)[: args.n]
    with args.out.open("w") as fh:
        for qid, q in items:
            first = pipe.retrieve(q, DEPTH)
            rec = {"qid": qid, "docs": [h.chunk.doc_id for h in first.hits], "rel": qrels[qid]}

            def score(name: str, passages: list[str], first=first, q=q, rec=rec) -> None:
                t = time.perf_counter()
                rec[name] = ce.predict([(q, p) for p in passages]).tolist()
                rec[f"ms_{name}"] = (time.perf_counter() - t) * 1000

            whole = [index_text(h.chunk) for h in first.hits]
            score("whole", whole)
            question = min(len(starts([q])[0]), s.rerank_max_query_tokens)
            weights = {t.stem: t.idf(first.n_chunks) for t in first.terms}
            for w in args.windows:
                budget = w - question - PAIR_SPECIALS
                score(f"head{w}", [p[: st[budget]] if len(st) > budget else p
                                   for p, st in zip(whole, starts(whole), strict=True)])
                score(f"win{w}", windows([h.chunk for h in first.hits], weights, budget, starts))
            fh.write(json.dumps(rec) + "\n")


def ndcg(rec: dict, variant: str, m: int, k: int) -> float:
    logits = rec[variant][:m]
    order = [i for i, _ in blend(list(range(1, len(logits) + 1)), logits, 0.3, 10)]
    order += list(range(len(logits), len(rec["docs"])))
    return ndcg_at_k(docs_from_chunks([rec["docs"][i] for i in order]), rec["rel"], k)


def study(args: argparse.Namespace) -> None:
    for path in args.files:
        recs = [json.loads(line) for line in path.read_text().splitlines()]
        variants = [v for v in recs[0] if not v.startswith("ms_") and v not in
                    ("qid", "docs", "rel")]
        base = {k: statistics.mean(ndcg(r, "whole", DEPTH, k) for r in recs) for k in (10, 5)}
        print(f"\n{path.name}: {len(recs)} queries; whole passages, top {DEPTH}: nDCG@10 "
              f"{base[10]:.4f}, nDCG@5 {base[5]:.4f}. Change in nDCG@10 / nDCG@5:")
        print("| passages | ms per pair | " + " | ".join(f"top {m}" for m in args.depths)
              + " |\n|---|---|" + "---|" * len(args.depths))
        for v in variants:
            per_pair = statistics.median(r[f"ms_{v}"] / len(r[v]) for r in recs)
            cells = []
            for m in args.depths:
                d = [statistics.mean(ndcg(r, v, m, k) for r in recs) - base[k] for k in (10, 5)]
                cells.append(f"{d[0]:+.4f} / {d[1]:+.4f}")
            print(f"| {v} | {per_pair:.1f} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--index", type=Path, required=True)
    c.add_argument("--dataset", type=Path, required=True)
    c.add_argument("--split", default="train")
    c.add_argument("--n", type=int, default=200)
    c.add_argument("--windows", type=lambda v: [int(x) for x in v.split(",")],
                   default=[128, 160])
    c.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("study")
    s.add_argument("files", type=Path, nargs="+")
    s.add_argument("--depths", type=lambda v: [int(x) for x in v.split(",")],
                   default=[10, 12, 15, 20, 30])
    args = ap.parse_args()
    collect(args) if args.cmd == "collect" else study(args)


if __name__ == "__main__":
    main()
