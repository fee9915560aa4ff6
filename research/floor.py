"""Calibrate the relevance floor: in-scope queries vs out-of-scope questions, one index.

    python research/floor.py --dataset ../shared/datasets/scifact --index /tmp/sf \\
        --ood research/data/ood_questions.txt --split train

Every query runs through the default pipeline with no floor; the best cross-encoder logit
among its candidates decides. For each threshold it prints refusal precision (refused
queries that were out of scope), refusal recall (out-of-scope queries refused) and the
in-scope answer rate. Choose the floor on the train split; check it on test.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mcp_rag.evaluate.beir import judged_queries, load_qrels, load_queries
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings


def load_split(dataset: Path, split: str) -> list[str]:
    texts, qrels = load_queries(dataset), load_qrels(dataset, split)
    return [t for _, t in judged_queries(texts, qrels)]


def table(inscope: np.ndarray, ood: np.ndarray, floors: np.ndarray) -> list[dict]:
    rows = []
    for f in floors:
        ref_ood, ref_in = int((ood < f).sum()), int((inscope < f).sum())
        rows.append({
            "floor": round(float(f), 2),
            "refusal_precision": ref_ood / max(1, ref_ood + ref_in),
            "refusal_recall": ref_ood / len(ood),
            "in_scope_answer_rate": float((inscope >= f).mean()),
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--ood", type=Path, required=True, help="One out-of-scope question a line.")
    ap.add_argument("--split", default="train")
    ap.add_argument("--queries", type=int, default=0, help="Only the first N in-scope queries.")
    args = ap.parse_args()
    # The answerability decision off too: it would drop a refused question's candidates
    # before its best logit is read.
    p = Pipeline.from_settings(
        Settings(index=args.index, relevance_floor=None, answerability=False))
    inscope_q = load_split(args.dataset, args.split)[: args.queries or None]
    ood_q = [ln.strip() for ln in args.ood.read_text().splitlines() if ln.strip()]

    def best(q: str) -> float:
        res = p.search(q, k=1)
        return res.best_score if res.best_score is not None else -1e9

    inscope = np.array([best(q) for q in inscope_q])
    ood = np.array([best(q) for q in ood_q])
    print(f"{len(inscope)} in-scope ({args.split}), {len(ood)} out-of-scope questions")
    print("| floor | refusal precision | refusal recall | in-scope answer rate |")
    print("|---|---|---|---|")
    for r in table(inscope, ood, np.arange(-8.0, -1.5, 0.5)):
        print(f"| {r['floor']} | {r['refusal_precision']:.3f} | {r['refusal_recall']:.3f} | "
              f"{r['in_scope_answer_rate']:.3f} |")


if __name__ == "__main__":
    main()
