"""Which rare words of a how-to question must the answer's passages hold? The weighed-word
rule (``evidence.weighed``) and its two constants on the docs benchmark.

    python research/word_weight.py collect --index /tmp/dx/sqlite --out /tmp/ww-sqlite.pkl \\
        benchmarks/data/docs/sqlite.jsonl research/data/docs_named/sqlite.jsonl \\
        research/data/docs_steps/sqlite.txt
    python research/word_weight.py study /tmp/ww-*.pkl

``collect`` asks each how-to question (docs benchmark files, or ``.txt`` files of in-scope
questions, one a line) as ``answer`` does, with the weighed-word rule off, and keeps, for
each of its content words that is not a name: its idf as a share of the largest, whether
the quoted passages hold it (``Passages.hold``), and its weight, the cross-encoder's logit
of the best quote for the question without the word less that for the question whole.
``study`` counts, per question kind, the answers a word would make partial at each idf
share and weight (the shipped rule: ``FOCAL_IDF`` and ``WEIGHED_LOGITS``), lists those at
the shipped constants, and chooses the weight leave-one-manual-out: on the other manuals,
the smallest weight that makes no in-scope answer partial.
"""

from __future__ import annotations

import argparse
import math
import pickle
from pathlib import Path

from benchmarks.docs import load_questions
from mcp_rag.app.cache import normalize_query
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve import evidence as ev
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

SHARES = (0.3, 0.4, 0.5, 0.6)
WEIGHTS = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0)


def collect(args: argparse.Namespace) -> None:
    from mcp_rag.answer import compose
    from mcp_rag.app.service import RagService

    s = Settings.load(index=args.index, cache_enabled=False)
    p = Pipeline.from_settings(s)
    svc = RagService(p)
    qs = []
    for f in args.files:
        qs += ([{"id": f"{f.stem}-steps-{i}", "kind": "in_scope", "question": ln.strip()}
                for i, ln in enumerate(f.read_text().splitlines()) if ln.strip()]
               if f.suffix == ".txt" else load_questions(f))
    rows = []
    real = compose._weighed
    compose._weighed = lambda *a: None  # the answers as they were without the rule
    try:
        for q in qs:
            if q["kind"] == "other_field" or not ev.how_to(q["question"]):
                continue
            a = svc.answer(q["question"], no_cache=True)
            row = {"set": args.index.name, "id": q["id"], "kind": q["kind"],
                   "question": q["question"], "state": a.state, "words": []}
            rows.append(row)
            if not a.answered or not a.citations:
                continue
            r = p.search(normalize_query(q["question"]), k=s.answer_passages,
                         question=q["question"], copies=False)  # as ``answer`` asks it
            chunks = {h.chunk.chunk_id: h.chunk for h in r.hits}
            quoted = [index_text(chunks[c.chunk_id]) for c in a.citations
                      if c.chunk_id in chunks]
            best = max(a.citations, key=lambda c: c.relevance or 0.0).quote
            focal = {f.casefold() for f in (r.decision.evidence.focal
                                            if r.decision and r.decision.evidence else ())}
            terms = [t for t in r.terms if t.word.casefold() not in r.names
                     and t.word.isalpha() and t.word.casefold() not in focal]
            if not terms:
                continue
            top = math.log(1.0 + (r.n_chunks + 0.5) / 0.5)
            unheld = {t.stem for t in ev.unheld(terms, r.names, r.n_chunks, quoted, share=0.0)}
            scores = p.reranker.predict([(q["question"], best)] + [
                (ev.without(q["question"], t.stem), best) for t in terms])
            row["words"] = [{"word": t.word, "share": t.idf(r.n_chunks) / top,
                             "held": t.stem not in unheld,
                             "weight": float(x - scores[0])}
                            for t, x in zip(terms, scores[1:], strict=True)]
    finally:
        compose._weighed = real
    args.out.write_bytes(pickle.dumps(rows))


def partial(row: dict, share: float, weight: float) -> list[str]:
    """The words that would make ``row``'s answer partial."""
    return [w["word"] for w in row["words"]
            if not w["held"] and w["share"] >= share and w["weight"] >= weight]


def study(args: argparse.Namespace) -> None:
    rows = [r for f in args.files for r in pickle.loads(f.read_bytes())]
    answered = [r for r in rows if r["state"] != "refused"]
    kinds = sorted({r["kind"] for r in answered})
    sets = sorted({r["set"] for r in answered})
    print("answered how-to questions: " + ", ".join(
        f"{k} {sum(r['kind'] == k for r in answered)}" for k in kinds))
    print("\n| idf share | weight | " + " | ".join(f"{k} made partial" for k in kinds) + " |")
    print("|---|---|" + "---|" * len(kinds))
    for share in SHARES:
        for weight in WEIGHTS:
            n = [sum(bool(partial(r, share, weight)) for r in answered if r["kind"] == k)
                 for k in kinds]
            print(f"| {share} | {weight} | " + " | ".join(map(str, n)) + " |")
    print(f"\nat the shipped constants ({ev.FOCAL_IDF}, {ev.WEIGHED_LOGITS}):")
    for r in answered:
        got = partial(r, ev.FOCAL_IDF, ev.WEIGHED_LOGITS)
        if got:
            print(f"- {r['set']} {r['kind']} ({r['state']}): {r['question']} -> {got}")
    print("\nleave one manual out (the smallest weight with no in-scope answer made partial "
          "on the others):")
    for held in sets:
        rest = [r for r in answered if r["set"] != held and r["kind"] == "in_scope"]
        w = next((w for w in WEIGHTS if not any(partial(r, ev.FOCAL_IDF, w) for r in rest)),
                 None)
        if w is None:
            print(f"- {held}: none of {WEIGHTS}")
            continue
        out = [r for r in answered if r["set"] == held]
        print(f"- {held}: weight {w}: " + ", ".join(
            f"{k} {sum(bool(partial(r, ev.FOCAL_IDF, w)) for r in out if r['kind'] == k)}"
            f"/{sum(r['kind'] == k for r in out)}" for k in kinds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--index", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("files", type=Path, nargs="+")
    st = sub.add_parser("study")
    st.add_argument("files", type=Path, nargs="+")
    args = ap.parse_args()
    collect(args) if args.cmd == "collect" else study(args)


if __name__ == "__main__":
    main()
