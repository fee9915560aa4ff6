"""Does the evidence mention what the question is about? A question's focal terms (the
products, tools, identifiers and other named things it names) against the passages an
answer would quote: the measurements behind the evidence-checked abstention.

    python research/evidence_terms.py collect --index /tmp/dx/sqlite \\
        --questions benchmarks/data/docs/sqlite.jsonl --out /tmp/et/sqlite.jsonl
    python research/evidence_terms.py collect --index /tmp/sf \\
        --dataset ../shared/datasets/scifact --n 300 --out /tmp/et/scifact.jsonl
    python research/evidence_terms.py collect --index /tmp/sf --lines research/data/ood \\
        --n 400 --out /tmp/et/scifact-ood.jsonl
    python research/evidence_terms.py study /tmp/et/*.jsonl

``collect`` asks each question as `answer` does (normalised; default settings) and keeps
the question as written, whether today's decision answers it, and each of its content
words (``key_terms``) with its document frequency and whether the top
``answer_passages`` passages (title, section and text) contain it. A docs question file
gives each question's kind (in scope, same field, other field); a BEIR dataset's judged
queries are in scope; ``--lines`` files are of the ``--kind`` given.

``study`` applies candidate rules offline. A term is *focal* when the question writes it
as a name or as code (a capital inside the question, unless the question is in title
case; or ``_ . : / @ #`` or a digit among letters) and it is rare (idf at least ``rel``
of the idf of a word the corpus never mentions); ``known`` also requires that the corpus
mentions it somewhere. A question the decision answers today is *refused* by a rule when
it has focal terms and the passages hold none of them, *partial* when they hold some.
Per file and kind: questions answered today, and how many each rule refuses or marks
partial.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from typing import Any

from mcp_rag.app.cache import normalize_query
from mcp_rag.retrieve.answerability import held_terms
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings
from research.study_args import parser, questions

WORD = re.compile(r"[^\W_][\w.+#:/@'-]*[\w+#]|[^\W_]")
CODE = re.compile(r"[_./:@#]|(?<=[A-Za-z])\d|\d(?=[A-Za-z])")
RULES = {  # name -> (rel, known)
    "named or code, idf >= 0.5 max": (0.5, False),
    "named or code, idf >= 0.7 max": (0.7, False),
    "... and mentioned elsewhere in the corpus": (0.5, True),
}


def collect(args: argparse.Namespace) -> None:
    s = Settings.load(index=str(args.index), cache_enabled=False)
    p = Pipeline.from_settings(s)
    k = s.answer_passages
    with args.out.open("w") as f:
        for q in questions(args):
            r = p.search(normalize_query(q["text"]), k=k, rerank=True)
            seen = held_terms(r.terms, (r.hits or r.closest)[:k])
            f.write(json.dumps({
                "id": q["id"], "kind": q["kind"], "question": q["text"],
                "answered": not r.no_answer,
                "n_chunks": r.n_chunks,
                "terms": [[t.word, t.df, t.idf(r.n_chunks), t.stem in seen] for t in r.terms],
            }, ensure_ascii=False) + "\n")


def focal(question: str, terms: list[list[Any]], n_chunks: int, rel: float,
          known: bool) -> list[list[Any]]:
    """The question's focal terms (see the module's doc)."""
    written = WORD.findall(question)
    words = [w for w in written if w[0].isalpha()]
    titled = len(words) >= 3 and sum(w[0].isupper() for w in words) >= 0.6 * len(words)
    named = set() if titled else {
        re.sub(r"'s$", "", w.lower()) for w in written[1:] if any(c.isupper() for c in w)}
    code = {w.lower() for w in written if CODE.search(w)}
    top = math.log(1.0 + (n_chunks + 0.5) / 0.5)
    return [t for t in terms
            if t[0].lower() in named | code and t[2] >= rel * top and (t[1] > 0 or not known)]


def verdict(rec: dict[str, Any], rel: float, known: bool) -> str:
    """What a rule does to a question the decision answers today."""
    f = focal(rec["question"], rec["terms"], rec["n_chunks"], rel, known)
    held = sum(1 for t in f if t[3])
    return "answered" if held == len(f) else "refused" if held == 0 else "partial"


def study(args: argparse.Namespace) -> None:
    rows = []
    for path in args.files:
        recs = [json.loads(ln) for ln in path.read_text().splitlines()]
        for kind in ("in_scope", "same_field", "other_field"):
            xs = [r for r in recs if r["kind"] == kind]
            if not xs:
                continue
            ans = [r for r in xs if r["answered"]]
            row = {"file": path.stem, "kind": kind, "questions": len(xs), "answered": len(ans)}
            for name, (rel, known) in RULES.items():
                v = [verdict(r, rel, known) for r in ans]
                row[name] = {"refused": v.count("refused"), "partial": v.count("partial")}
            rows.append(row)
    print("| file | kind | questions | answered today | " + " | ".join(RULES) + " |")
    print("|---|---|---|---|" + "---|" * len(RULES))
    for r in rows:
        print(f"| {r['file']} | {r['kind']} | {r['questions']} | {r['answered']} | " + " | ".join(
            f"{r[n]['refused']} refused, {r[n]['partial']} partial" for n in RULES) + " |")
    if args.out:
        args.out.write_text(json.dumps({"rules": RULES, "rows": rows}, indent=1))


def main() -> None:
    args = parser(__doc__, n=1000, lines=True).parse_args()
    if args.cmd == "collect":
        collect(args)
        print(f"{args.out} written", file=sys.stderr)
    else:
        study(args)


if __name__ == "__main__":
    main()
