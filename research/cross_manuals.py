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
answer's start and the page of its first citation. ``study`` reports per manual: own
questions answered, other manuals' questions answered or partial, and the spread of the
signals on each side. Some of another manual's questions are answered rightly (SHA-256 of a
string, of PostgreSQL's manual: ``sha256()``); ``--labels`` (manual -> question ids judged,
by reading the answer, to be answered from that manual's own pages) counts those apart.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.docs import load_questions
from mcp_rag.app.service import RagService
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

SIGNALS = ("ce", "dense_pos", "cover")


def ask(svc: RagService, name: str, side: str, q: dict[str, Any]) -> dict[str, Any]:
    """One question as `answer` asks it, and what the decision read."""
    a = svc.answer(q["question"], no_cache=True)
    d = a.answerability
    return {
        "manual": name, "side": side, "id": q["id"], "question": q["question"],
        "state": a.state, "signals": d.signals if d else None,
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
    labels: dict[str, list[str]] = json.loads(args.labels.read_text()) if args.labels else {}
    rows = [json.loads(x) for f in args.files for x in Path(f).read_text().splitlines() if x]
    print("| manual | own answered | others' asked | answered | partial | of those answered "
          "rightly (labels) | ce own / others' answered (p10 / p50 / p90) | dense_pos own / "
          "others' answered |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sorted({r["manual"] for r in rows}):
        own = [r for r in rows if r["manual"] == name and r["side"] == "own"]
        other = [r for r in rows if r["manual"] == name and r["side"] == "other"]
        given = [r for r in other if r["state"] != "refused"]
        right = [r for r in given if r["id"] in set(labels.get(name, []))]
        kept = [r for r in own if r["state"] != "refused"]

        def sig(rs: list[dict[str, Any]], k: str) -> str:
            return spread([r["signals"][k] for r in rs if r["signals"]])
        print(f"| {name} | {len(kept)}/{len(own)} | {len(other)} | "
              f"{sum(r['state'] == 'answered' for r in other)} | "
              f"{sum(r['state'] == 'partial' for r in other)} | "
              f"{len(right) if name in labels else '-'} | {sig(kept, 'ce')} ; "
              f"{sig(given, 'ce')} | {sig(kept, 'dense_pos')} ; {sig(given, 'dense_pos')} |")


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
