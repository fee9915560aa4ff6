"""Long requests: is a pasted abstract judged by what it asks? The cross-encoder on a long
request's first sentence as the decision's ``ce``, measured before it is built.

    python research/long_requests.py collect --index /tmp/sf \\
        --lines /tmp/long/cacm_abstracts.txt --kind other_field --out /tmp/lr/cacm-on-sf.jsonl
    python research/long_requests.py study /tmp/lr/*.jsonl

``collect`` asks each request as ``answer`` does (default settings, the evidence check
off) and keeps the decision's inputs as they were before the first sentence decided (the
request's own best logit as ``ce``), and the best cross-encoder logit of the request's
first sentence (``evidence.asked``) against the same candidates' windows.
``study`` re-decides each request with that logit as ``ce`` (the fitted model and the veto
unchanged) and prints, per file, how many are answered today and so.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from mcp_rag.app.cache import normalize_query
from mcp_rag.retrieve import answerability
from mcp_rag.retrieve.evidence import asked
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings
from research.study_args import questions, run


def collect(args: argparse.Namespace) -> None:
    s = Settings.load(index=str(args.index), cache_enabled=False, evidence_check=False)
    p = Pipeline.from_settings(s)
    assert p.reranker is not None
    n, k = s.rerank_candidates, s.answer_passages
    with args.out.open("w") as f:
        for q in questions(args):
            norm = normalize_query(q["text"])
            first = p.retrieve(norm, n)
            r = p.rerank_result(first, k, n)
            ask = normalize_query(asked(q["text"]))
            cands = first.hits[:n]
            wins = p.passages(replace(first, query=ask), cands) if cands else []
            logits = p.reranker.predict([(ask, w) for w in wins]) if wins else []
            f.write(json.dumps({
                "id": q["id"], "kind": q["kind"], "chars": len(q["text"]), "ask": ask,
                "answered": not r.no_answer,
                # today's inputs: the request's own best logit (the served decision now
                # weighs the first sentence's; the study compares the two)
                "features": r.decision.features | {
                    "ce": max(-12.0, min(12.0, r.best_score or -12.0))}
                if r.decision else None,
                "ask_ce": float(max(logits)) if len(logits) else None,
            }) + "\n")


def decided(rec: dict, ce: float | None) -> bool:
    """The decision on ``rec``'s inputs with ``ce`` as the best logit."""
    x = dict(rec["features"])
    if ce is not None:
        x["ce"] = max(-12.0, min(12.0, ce))
    return (answerability._logistic(answerability.IN_SCOPE, x) >= answerability.THRESHOLD
            and not answerability.vetoed(x))


def study(args: argparse.Namespace) -> None:
    print("| file | kind | requests | answered today | answered, judged by the first sentence |")
    print("|---|---|---|---|---|")
    for path in args.files:
        recs = [json.loads(ln) for ln in path.read_text().splitlines()]
        recs = [r for r in recs if r["features"] is not None]
        today = sum(decided(r, None) for r in recs)
        first = sum(decided(r, r["ask_ce"]) for r in recs)
        print(f"| {path.stem} | {recs[0]['kind'] if recs else ''} | {len(recs)} | {today} | "
              f"{first} |")


def main() -> None:
    run(__doc__, 40, collect, study, lines=True)


if __name__ == "__main__":
    main()
