"""When does the cross-encoder earn its cost? One rule for documentation and abstracts,
chosen leave-one-collection-out and judged by the worst collection.

    python research/rerank_rule.py collect --index /tmp/dx/sqlite \\
        --questions benchmarks/data/docs/sqlite.jsonl --out /tmp/rr/sqlite.jsonl
    python research/rerank_rule.py collect --index /tmp/sf \\
        --dataset ../shared/datasets/scifact --split train --n 300 --out /tmp/rr/scifact.jsonl
    python research/rerank_rule.py study /tmp/rr/*.jsonl --out research/data/rerank_rule.json

``collect`` asks each question once, as `search` does (normalised, the default first stage
and its top ``rerank_candidates``, the cross-encoder reading its default windows) and keeps,
per candidate, its document, first-stage score and whether BM25 and dense both ranked it
first, with the cross-encoder's logit and the milliseconds the logits took. A docs question
file's in-scope questions count their pages as relevant; a BEIR dataset its judgments.

``study`` orders each question's candidates under every rule offline: the score blend at
cross-encoder shares 0 (the first stage) to 1, each with and without skipping the
cross-encoder where BM25 and dense agree on the top hit (``selective_rerank``). nDCG@10 and
hit@1 over the documents of the top 10, per collection, as gains over the first stage. For
each collection held out, the rule with the best worst gain on the others is chosen; its
gain on the held-out collection is what it would have done there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from mcp_rag.app.cache import normalize_query
from mcp_rag.evaluate.latency import cpu
from mcp_rag.evaluate.metrics import ndcg_at_k
from mcp_rag.retrieve.fusion import interpolate
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.retrieve.rerank import retrievers_agree
from mcp_rag.settings import Settings
from research.study_args import questions, run

SHARES = [round(0.1 * i, 1) for i in range(11)]


def record(p: Pipeline, qid: str, text: str, rel: dict[str, int]) -> dict[str, Any]:
    """One question as `search` asks it: the first stage's top ``rerank_candidates`` with
    their documents, scores and logits, and the milliseconds the logits took."""
    assert p.reranker is not None, p.rerank_error
    first = p.retrieve(normalize_query(text), p.settings.rerank_candidates)
    cands = first.hits[: p.settings.rerank_candidates]
    t = time.perf_counter()
    pairs = [(first.query, x) for x in p.passages(first, cands)]
    logits = p.reranker.predict(pairs).tolist() if cands else []
    ms = (time.perf_counter() - t) * 1000
    return {
        "qid": qid, "rel": rel, "ms": round(ms, 1),
        "agree": retrievers_agree(cands),
        "cands": [[h.chunk.doc_id, h.score, lg] for h, lg in zip(cands, logits, strict=True)],
    }


def collect(args: argparse.Namespace,
            recorded: Callable[[Pipeline, str, str, dict[str, int]], dict] = record) -> None:
    """Each in-scope question's ``recorded`` (``record``; ``research/prf_study.py`` keeps
    more), one JSON line a question."""
    p = Pipeline.from_settings(Settings.load(index=str(args.index), cache_enabled=False))
    with args.out.open("w") as f:
        for q in questions(args):
            if q["kind"] == "in_scope":
                f.write(json.dumps(recorded(p, q["id"], q["text"], q["rel"])) + "\n")
    print(f"{args.out}: {cpu()}", file=sys.stderr)


def order(rec: dict, share: float, selective: bool) -> list[str]:
    """Documents of the top candidates under the score blend at ``share`` (0: first stage)."""
    cands = rec["cands"]
    if share == 0 or (selective and rec["agree"]) or not cands:
        ids = [c[0] for c in cands]
    else:
        ids = [cands[i][0] for i, _ in interpolate([c[1] for c in cands],
                                                   [c[2] for c in cands], share)]
    return list(dict.fromkeys(ids))


def _hit(docs: list[str], rel: dict[str, int]) -> int:
    return int(bool(docs) and rel.get(docs[0], 0) > 0)


def gains(recs: list[dict], share: float, selective: bool) -> dict[str, float]:
    """Mean nDCG@10 and hit@1 gain over the first stage, and the share of questions that
    pay for the cross-encoder."""
    d_ndcg, d_hit = [], []
    for r in recs:
        base, new = order(r, 0, False), order(r, share, selective)
        d_ndcg.append(ndcg_at_k(new, r["rel"], 10) - ndcg_at_k(base, r["rel"], 10))
        d_hit.append(_hit(new, r["rel"]) - _hit(base, r["rel"]))
    paid = [not (selective and r["agree"]) and share > 0 for r in recs]
    return {"ndcg": statistics.mean(d_ndcg), "hit@1": sum(d_hit),
            "paid": sum(paid) / len(recs)}


def study(args: argparse.Namespace) -> None:
    sets = {p.stem: [json.loads(ln) for ln in p.read_text().splitlines()] for p in args.files}
    rules = [(s, sel) for s in SHARES for sel in (False, True) if s or not sel]
    table = {f"scores {s}{' selective' if sel else ''}": {k: gains(v, s, sel)
                                                          for k, v in sets.items()}
             for s, sel in rules}
    names = list(sets)
    print("| rule | " + " | ".join(names) + " | worst |")
    print("|---|" + "---|" * (len(names) + 1))
    for rule, row in table.items():
        worst = min(row[k]["ndcg"] for k in names)
        print(f"| {rule} | " + " | ".join(
            f"{row[k]['ndcg']:+.4f} ({row[k]['hit@1']:+d})" for k in names)
            + f" | {worst:+.4f} |")
    loo = {}
    for held in names:
        rest = [k for k in names if k != held]
        # best worst gain on the others; ties to the cheaper rule (fewer questions reranked)
        best = max(table, key=lambda r: (round(min(table[r][k]["ndcg"] for k in rest), 4),
                                         -statistics.mean(table[r][k]["paid"] for k in rest)))
        loo[held] = {"rule": best, "held_out": table[best][held]}
    print("\nleave one collection out:")
    for held, v in loo.items():
        print(f"  {held}: {v['rule']} -> nDCG@10 {v['held_out']['ndcg']:+.4f}, "
              f"hit@1 {v['held_out']['hit@1']:+d}, reranked {v['held_out']['paid']:.2f}")
    ms = {k: statistics.median(r["ms"] for r in v) for k, v in sets.items()}
    agree = {k: sum(r["agree"] for r in v) / len(v) for k, v in sets.items()}
    print("\ncross-encoder ms p50:", ms, "\nBM25 and dense agree on the top:", agree)
    if args.out:
        args.out.write_text(json.dumps({"cpu": cpu(), "questions": {k: len(v) for k, v in
                                        sets.items()}, "rules": table, "loo": loo,
                                        "rerank_ms_p50": ms, "agree": agree}, indent=1))


def main() -> None:
    run(__doc__, 300, collect, study)


if __name__ == "__main__":
    main()
