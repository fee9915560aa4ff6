"""Does a prior against long pages put the right page first? Replayed on the final order.

    python research/page_prior.py collect --index /tmp/dk \\
        --questions benchmarks/data/docs/docker.jsonl --out /tmp/prior-docker.pkl
    python research/page_prior.py study /tmp/prior-*.pkl

``collect`` asks each in-scope question of a docs benchmark file as ``search`` does and
keeps its reranked candidates (``rerank_rule.record``: page, first-stage score,
cross-encoder logit) with the number of passages of every page. ``study`` blends them
as ``search`` does (``fusion.interpolate`` at the index's cross-encoder share) and subtracts
``λ · log(passages of the page) / log(most passages of a page)`` from each score, then
prints page hit@1 and hit@3 per file for each λ (0: ``search``'s order, before the
relevance floor trims weak passages from its results).
"""

from __future__ import annotations

import math
import pickle
import sqlite3

from mcp_rag.retrieve.fusion import interpolate
from research.rerank_rule import record
from research.study_args import docs_index, questions, run

LAMBDAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)


def collect(args) -> None:
    s, p, meta = docs_index(args, "page_prior.py")
    with sqlite3.connect(meta) as con:
        passages = dict(con.execute("SELECT doc_id, count(*) FROM chunks GROUP BY doc_id"))
    rows = [record(p, q["id"], q["text"], q["rel"])
            for q in questions(args) if q["kind"] == "in_scope"]
    args.out.write_bytes(pickle.dumps({"rows": rows, "passages": passages,
                                       "weight": s.rerank_weight}))


def order(rec: dict, r: dict, lam: float) -> list[str]:
    """The pages of one question's candidates (``rerank_rule.record``) in their final
    order with the prior at ``lam``."""
    n, top = rec["passages"], math.log(max(rec["passages"].values()))
    docs = [c[0] for c in r["cands"]]
    scored = [(i, s - lam * math.log(n.get(docs[i], 1)) / top) for i, s in
              interpolate([c[1] for c in r["cands"]], [c[2] for c in r["cands"]], rec["weight"])]
    scored.sort(key=lambda t: (-t[1], t[0]))
    return list(dict.fromkeys(docs[i] for i, _ in scored))


def hits(rec: dict, lam: float) -> tuple[int, int]:
    """Page hit@1 and hit@3 over ``rec``'s questions with the prior at ``lam``."""
    h1 = h3 = 0
    for r in rec["rows"]:
        pages = order(rec, r, lam)
        h1 += bool(pages) and pages[0] in r["rel"]
        h3 += any(d in r["rel"] for d in pages[:3])
    return h1, h3


def study(args) -> None:
    recs = {f.stem: pickle.loads(f.read_bytes()) for f in args.files}
    print("| λ | " + " | ".join(f"{k} hit@1 / hit@3" for k in recs) + " | all |")
    print("|---|" + "---|" * (len(recs) + 1))
    for lam in LAMBDAS:
        got = [hits(rec, lam) for rec in recs.values()]
        print(f"| {lam} | " + " | ".join(f"{a} / {b}" for a, b in got)
              + f" | {sum(a for a, _ in got)} / {sum(b for _, b in got)} |")


if __name__ == "__main__":
    run(__doc__, 0, collect, study)
