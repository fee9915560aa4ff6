"""Should a how-to answer's product be named where its best quote is, not in any quote?

    python research/best_quote.py --index /tmp/dx/sqlite benchmarks/data/docs/sqlite.jsonl \\
        research/data/docs_named/sqlite.jsonl research/data/docs_steps/sqlite.txt

The shipped check (``answer.compose._unnamed``) reads the passages of every quote an
answer would give: "How do I create an index in MySQL?" of SQLite's manual is answered
because its third quote lists MySQL among the databases that interpret a clause alike.
This replays the check on the passage of the best-scoring quote alone, for every how-to
question the server answers today with focal terms, and prints each question whose state
would change (docs benchmark files, or ``.txt`` files of in-scope questions, one a line).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.docs import load_questions
from mcp_rag.app.cache import normalize_query
from mcp_rag.app.service import RagService
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve.evidence import check, how_to, steps_elsewhere, targets
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("files", type=Path, nargs="+")
    args = ap.parse_args()
    s = Settings.load(index=args.index, cache_enabled=False)
    p = Pipeline.from_settings(s)
    svc = RagService(p)
    qs = []
    for f in args.files:
        qs += ([{"kind": "in_scope", "question": ln.strip()}
                for ln in f.read_text().splitlines() if ln.strip()]
               if f.suffix == ".txt" else load_questions(f))
    for q in qs:
        a = svc.answer(q["question"], no_cache=True)
        if not a.answered or not how_to(q["question"]):
            continue
        r = p.search(normalize_query(q["question"]), k=s.answer_passages,
                     question=q["question"], copies=False)  # as ``answer`` asks it
        d = r.decision
        if d is None or d.evidence is None or not d.evidence.focal:
            continue
        best = max(a.citations, key=lambda c: c.relevance or 0.0)
        chunk = next(h.chunk for h in r.hits if h.chunk.chunk_id == best.chunk_id)
        e = check(r.terms, r.names, r.n_chunks, [index_text(chunk)],
                  targets(q["question"], r.names))
        c = d.checked(e, steps_elsewhere=steps_elsewhere(q["question"], e))
        now = "refused" if not c.answerable else e.state
        if now != a.state:
            print(f"{q['kind']}: {a.state} -> {now}: {q['question']} (missing {e.missing})")


if __name__ == "__main__":
    main()
