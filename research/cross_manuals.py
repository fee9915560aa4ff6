"""Another manual's questions: does a manual refuse what it does not cover when the question
names no product? Each indexed manual is asked the in-scope questions of other manuals of
the docs benchmark ("How do I loop over the items of a list?", CMake's, of SQLite's manual).

    python research/cross_manuals.py collect --index /tmp/dx/sqlite --name sqlite \\
        --own benchmarks/data/docs/sqlite.jsonl \\
        --ask benchmarks/data/docs/ffmpeg.jsonl benchmarks/data/docs/cmake.jsonl \\
        benchmarks/data/docs/nodejs.jsonl --out /tmp/cm/sqlite.jsonl
    python research/cross_manuals.py study /tmp/cm/*.jsonl \\
        [--labels research/data/cross_manuals_labels.json]

``collect`` asks every question as `answer` does (default settings, cache off): the
manual's own in-scope questions and the other manuals' in-scope ones, and keeps the state
(answered, partial, refused), the decision's signals (``ce``, ``dense_pos``, ``cover``), the
answer's start, the page of its first citation, ``confidence``, and the cross-encoder's
logit of the best sentence it quotes (``best_sentence``: ``extractive``'s runs, read as
`answer` picks them). ``study`` reports per manual: own questions answered, other manuals'
questions answered or partial, and the spread of the signals on each side. Some of
another manual's questions are answered rightly (SHA-256 of a string, of PostgreSQL's
manual: ``sha256()``); ``--labels`` (manual -> question ids judged, by reading the answer,
to be answered from that manual's own pages) counts those apart, and then what three rules
would do: a confidence under 0.5 or 0.8 (said, not refused), the decision's threshold
raised to a score of 0.88, and a floor of -2 on the best quoted sentence (alone, and only
where ``dense_pos`` is under 0.9), each as wrong / right answers of the labelled manuals
it catches, and the manuals' own answers it would catch.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mcp_rag.answer.compose as compose
from benchmarks.docs import load_questions
from mcp_rag.app.service import RagService
from mcp_rag.retrieve.answerability import IN_SCOPE, LOW_CONFIDENCE, SUPPORTED, _logistic
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

SENTENCE_FLOOR = -2.0  # the floor on the best quoted sentence studied (not kept)
DENSE_GATE = 0.9  # ... and only under this dense_pos (answerability.EVIDENCE_DENSE_POS)
SCORE = 0.88  # the decision's threshold raised (z >= 2), as `search` decides


def _recording(seen: dict[str, Any]) -> Any:
    """``compose.extractive`` that notes the best logit of the runs it picks."""
    picked = compose.extractive

    def extractive(*args: Any, **kw: Any) -> Any:
        text, runs = picked(*args, **kw)
        scores = [r.score for r in runs if r.score is not None]
        seen["best_sentence"] = max(scores) if scores else None
        return text, runs
    return extractive


def ask(svc: RagService, name: str, side: str, q: dict[str, Any]) -> dict[str, Any]:
    """One question as `answer` asks it, and what the decision read."""
    seen: dict[str, Any] = {}
    picked, compose.extractive = compose.extractive, _recording(seen)
    try:
        a = svc.answer(q["question"], no_cache=True)
    finally:
        compose.extractive = picked
    d = a.answerability
    return {
        "manual": name, "side": side, "id": q["id"], "question": q["question"],
        "state": a.state, "signals": d.signals if d else None, "confidence": a.confidence,
        "best_sentence": seen.get("best_sentence"),
        "page": a.citations[0].doc_id if a.citations else None, "answer": a.answer[:300],
    }


def collect(args: argparse.Namespace) -> None:
    svc = RagService(Pipeline.from_settings(Settings.load(index=args.index,
                                                          cache_enabled=False)))
    sides = [("own", args.own)] + [("other", f) for f in args.ask]
    with args.out.open("w") as out:
        for side, path in sides:
            for q in load_questions(path):
                if q["kind"] == "in_scope":
                    out.write(json.dumps(ask(svc, args.name, side, q)) + "\n")


def spread(values: Sequence[float]) -> str:
    """10th, 50th and 90th percentiles."""
    v = sorted(values)
    return " / ".join(f"{v[int(p * (len(v) - 1))]:.2f}" for p in (0.1, 0.5, 0.9)) if v else "-"


def study(args: argparse.Namespace) -> None:
    read = json.loads(args.labels.read_text()) if args.labels else {}
    labels = {m: set(ids) for m, ids in read.items() if not m.startswith("_")}  # not "_note"
    rows = [json.loads(x) for f in args.files for x in Path(f).read_text().splitlines() if x]
    print("| manual | own answered | others' asked | answered | partial | of those answered "
          "rightly (labels) | ce own / others' answered (p10 / p50 / p90) | dense_pos own / "
          "others' answered |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sorted({r["manual"] for r in rows}):
        own = [r for r in rows if r["manual"] == name and r["side"] == "own"]
        other = [r for r in rows if r["manual"] == name and r["side"] == "other"]
        given = [r for r in other if r["state"] != "refused"]
        right = [r for r in given if r["id"] in labels.get(name, set())]
        kept = [r for r in own if r["state"] != "refused"]

        def sig(rs: list[dict[str, Any]], k: str) -> str:
            return spread([r["signals"][k] for r in rs if r["signals"]])
        print(f"| {name} | {len(kept)}/{len(own)} | {len(other)} | "
              f"{sum(r['state'] == 'answered' for r in other)} | "
              f"{sum(r['state'] == 'partial' for r in other)} | "
              f"{len(right) if name in labels else '-'} | {sig(kept, 'ce')} ; "
              f"{sig(given, 'ce')} | {sig(kept, 'dense_pos')} ; {sig(given, 'dense_pos')} |")
    if labels:
        rules(rows, labels)


def _confidence(r: dict[str, Any]) -> float:
    return r["confidence"] if r.get("confidence") is not None \
        else _logistic(SUPPORTED, r["signals"])


def rules(rows: list[dict[str, Any]], labels: dict[str, set[str]]) -> None:
    """What each rule catches of the labelled manuals' answers to other manuals' questions
    (wrong / right) and of every manual's answers to its own."""
    given = [r for r in rows if r["state"] != "refused" and r["signals"]]
    own = [r for r in given if r["side"] == "own"]
    other = [r for r in given if r["side"] == "other" and r["manual"] in labels]
    right = [r for r in other if r["id"] in labels[r["manual"]]]
    wrong = [r for r in other if r["id"] not in labels[r["manual"]]]

    def floor(r: dict[str, Any], gate: float) -> bool:
        b = r.get("best_sentence")
        return b is not None and b < SENTENCE_FLOOR and r["signals"]["dense_pos"] < gate
    caught = {
        f"confidence < {LOW_CONFIDENCE:g}": lambda r: _confidence(r) < LOW_CONFIDENCE,
        "confidence < 0.8": lambda r: _confidence(r) < 0.8,
        f"score < {SCORE}": lambda r: _logistic(IN_SCOPE, r["signals"]) < SCORE,
        f"best sentence < {SENTENCE_FLOOR:g}": lambda r: floor(r, float("inf")),
        f"... and dense_pos < {DENSE_GATE}": lambda r: floor(r, DENSE_GATE),
    }
    print(f"\n| rule | wrong ({len(wrong)}) | right ({len(right)}) | own ({len(own)}) |")
    print("|---|---|---|---|")
    for name, rule in caught.items():
        print(f"| {name} | {sum(map(rule, wrong))} | {sum(map(rule, right))} | "
              f"{sum(map(rule, own))} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--index", type=Path, required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--own", type=Path, required=True, help="the manual's own question file")
    c.add_argument("--ask", type=Path, nargs="+", required=True, help="other manuals' files")
    c.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("study")
    s.add_argument("files", nargs="+", type=Path)
    s.add_argument("--labels", type=Path)
    args = ap.parse_args()
    {"collect": collect, "study": study}[args.cmd](args)


if __name__ == "__main__":
    main()
