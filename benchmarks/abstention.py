"""Abstention of the `answer` tool: does it answer in-scope questions and refuse the rest?

    python benchmarks/abstention.py --dataset ../shared/datasets/scifact --index /tmp/sf \\
        --ood benchmarks/data/ood_questions.txt [--split test] [--json out.json]

Every question goes through ``RagService.answer`` with the default settings (hybrid
retrieval, cross-encoder, relevance floor, extractive answer), cache off. The dataset's
queries of the split should be answered; the out-of-scope questions (one a line, written
for this corpus) should be refused. Prints refusal precision (refusals that were out of
scope), refusal recall (out-of-scope questions refused), the in-scope answer rate, and the
answer latency, and checks them against the targets (0.9, 0.9, 0.95).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from mcp_rag.evaluate.beir import load_qrels, load_queries
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.service import RagService
from mcp_rag.settings import Settings

TARGETS = {"refusal_precision": 0.9, "refusal_recall": 0.9, "in_scope_answer_rate": 0.95}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--index", type=Path, required=True, help="An index of the dataset's corpus.")
    ap.add_argument("--ood", type=Path, required=True, help="One out-of-scope question a line.")
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", type=Path, help="Write the numbers and every refusal here.")
    args = ap.parse_args()

    settings = Settings(index=args.index)
    svc = RagService(Pipeline.from_settings(settings))
    texts, qrels = load_queries(args.dataset), load_qrels(args.dataset, args.split)
    inscope = [texts[q] for q in sorted(qrels) if q in texts]
    ood = [ln.strip() for ln in args.ood.read_text().splitlines() if ln.strip()]

    latency: list[float] = []

    def answered(q: str) -> bool:
        t = time.perf_counter()
        out = svc.answer(q, no_cache=True)
        latency.append((time.perf_counter() - t) * 1000)
        return out.answered

    got_in = [answered(q) for q in inscope]
    got_ood = [answered(q) for q in ood]
    refused_ood = sum(not a for a in got_ood)
    refused_in = sum(not a for a in got_in)
    res = {
        "dataset": str(args.dataset), "split": args.split,
        "in_scope": len(inscope), "out_of_scope": len(ood),
        "relevance_floor": settings.relevance_floor,
        "refusal_precision": refused_ood / max(1, refused_ood + refused_in),
        "refusal_recall": refused_ood / max(1, len(ood)),
        "in_scope_answer_rate": sum(got_in) / max(1, len(inscope)),
        "answer_ms": {"p50": statistics.median(latency),
                      "p95": statistics.quantiles(latency, n=20)[-1]},
        "refused_in_scope": [q for q, a in zip(inscope, got_in, strict=True) if not a],
        "answered_out_of_scope": [q for q, a in zip(ood, got_ood, strict=True) if a],
    }
    print(f"{len(inscope)} in-scope ({args.split}) and {len(ood)} out-of-scope questions, "
          f"floor {settings.relevance_floor}")
    print("| metric | value | target |\n|---|---|---|")
    for k, target in TARGETS.items():
        print(f"| {k.replace('_', ' ')} | {res[k]:.3f} | >= {target} "
              f"{'ok' if res[k] >= target else 'MISSED'} |")
    print(f"answer latency: p50 {res['answer_ms']['p50']:.0f} ms, "
          f"p95 {res['answer_ms']['p95']:.0f} ms")
    for q in res["answered_out_of_scope"]:
        print(f"  answered out of scope: {q}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
