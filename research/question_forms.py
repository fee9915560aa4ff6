"""Does the cross-encoder find the command when a how-to question is asked another way?

    python research/answer_pick.py collect --index /tmp/dx/sqlite \\
        --questions benchmarks/data/docs/sqlite.jsonl --out /tmp/pick-sqlite.pkl
    python research/question_forms.py --index /tmp/dx/sqlite /tmp/pick-*.pkl

An answer's sentences are scored by the cross-encoder for the question as a search engine
is asked ("how to create a named pipe"), and it prefers the sentence that says what a
thing is to the one that says which command does it. This replays ``extractive.pick`` on
the sentences ``answer_pick.py collect`` kept (every in-scope question of each docs
benchmark file, as ``answer`` scores them), with each sentence's score blended with its
score for the question in another form: "command to …", "example of how to …", "what
command do I run to …" (the better of the two, their mean, or today's plus half the
other). It prints, per file, how many answers hold a key, the median answer length and
each variant's worst change on a file. ``--index``: any index the pack's cross-encoder
loads with (the models are what it reads, not the index).
"""

from __future__ import annotations

import argparse
import pickle
import re
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from mcp_rag.answer import extractive as E
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

_HOW = re.compile(r"^\W*how\s+(?:(?:do|can|could|should|would|may|might)\s+(?:i|we|you|one)|to)"
                  r"\s+", re.I)
FORMS = {"command to": "command to {}", "example": "example of how to {}",
         "what command": "what command do I run to {}"}
BLENDS = ("max", "mean", "add0.5")


def forms(question: str) -> dict[str, str]:
    """The question in each of ``FORMS`` (none when it does not ask how to do something)."""
    m = _HOW.search(question)
    rest = question[m.end():].rstrip("?") if m else ""
    return {k: f.format(rest) for k, f in FORMS.items()} if m else {}


def holds(text: str, keys: list[str]) -> bool:
    return any(k in text for k in keys)


def answer_of(r: dict[str, Any], scores: np.ndarray) -> str:
    lead = E.leading(r["cands"], scores, r["margin"])
    runs = E.pick(r["cands"], scores, r["by_chunk"], budget=4, margin=r["margin"],
                  min_score=r["min_score"], lead=lead)
    return " ".join(x.quote for x in runs)


def blended(today: np.ndarray, other: np.ndarray, how: str) -> np.ndarray:
    if how == "max":
        return np.maximum(today, other)
    if how == "mean":
        return (today + other) / 2
    return today + 0.5 * other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", required=True)
    ap.add_argument("pickles", nargs="+", type=Path)
    args = ap.parse_args()
    ce = Pipeline.from_settings(Settings.load(index=args.index, cache_enabled=False)).reranker
    sets: dict[str, list[dict[str, Any]]] = {}
    for f in args.pickles:
        rows = [r for r in pickle.loads(f.read_bytes()) if not r.get("refused")]
        for r in rows:
            r["alt"] = {k: E.score_sentences(q, r["cands"], ce, r["by_chunk"])
                        for k, q in forms(r["question"]).items()} if r["cands"] else {}
        sets[f.stem] = rows
    base: list[int] = []
    print("variant", *sets, "total", "median chars", "worst change", sep="\t")
    for form, how in [(None, None)] + [(f, b) for f in FORMS for b in BLENDS]:
        counts, lengths = [], []
        for rows in sets.values():
            n = 0
            for r in rows:
                sc = r["scores"]
                if form is not None and form in r["alt"]:
                    sc = blended(sc, r["alt"][form], how)  # type: ignore[arg-type]
                said = answer_of(r, sc)
                n += holds(said, r["keys"])
                lengths.append(len(said))
            counts.append(n)
        base = base or counts
        print("today" if form is None else f"{form} {how}", *counts, sum(counts),
              int(statistics.median(lengths)), min(c - b for c, b in zip(counts, base,
                                                                          strict=True)), sep="\t")


if __name__ == "__main__":
    main()
