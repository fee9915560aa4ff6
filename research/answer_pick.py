"""How many sentences should an answer quote, and which? The pick replayed on documentation.

    python research/answer_pick.py collect --index /tmp/dx/pg \\
        --questions benchmarks/data/docs/postgresql.jsonl --out /tmp/pick-pg.pkl
    python research/answer_pick.py study /tmp/pick-*.pkl

``collect`` asks each in-scope question of a docs benchmark file as ``answer`` does (its
passages, then every sentence scored by the cross-encoder, once) and keeps the scored
sentences with the question's keys. ``study`` replays the pick (``extractive.pick``) on
them under each variant: at most 3, 4 or 5 sentences, with or without the best sentence's
page going on (``same_page``: a sentence of the best sentence's document joins within
twice the margin, as a neighbour in its paragraph does). It prints, per file, how many
answers hold a key, and over all files the median answer length: the key only grows with
length, so the question is how much length each variant buys. It also prints the ceiling:
the questions whose key is anywhere in the passages an answer reads.
"""

from __future__ import annotations

import pickle
import statistics

from benchmarks.docs import load_questions
from mcp_rag.answer import extractive as E
from mcp_rag.app.cache import normalize_query
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings
from research.study_args import run

VARIANTS = [(b, page) for b in (3, 4, 5) for page in (False, True)]


def collect(args) -> None:
    if not args.questions:
        raise SystemExit("answer_pick.py needs --questions: a docs benchmark file (its keys)")
    s = Settings.load(index=args.index, cache_enabled=False)
    rows = scored(Pipeline.from_settings(s), load_questions(args.questions))
    args.out.write_bytes(pickle.dumps(rows))


def scored(p: Pipeline, questions: list[dict]) -> list[dict]:
    """Each in-scope question's sentences as ``answer`` scores them, with its keys."""
    s = p.settings
    rows = []
    for q in questions:
        if q["kind"] != "in_scope":
            continue
        r = p.search(normalize_query(q["question"]), k=s.answer_passages, rerank=True,
                     question=q["question"], copies=False)  # as ``answer`` asks it
        if r.no_answer or not r.hits:
            rows.append({"id": q["id"], "keys": q["keys"], "refused": True})
            continue
        cands, by_chunk = E.sentences_of(r.hits)
        scores = E.score_sentences(q["question"], cands, p.reranker, by_chunk)
        rows.append({"id": q["id"], "keys": q["keys"], "cands": cands, "by_chunk": by_chunk,
                     "scores": scores, "margin": s.answer_margin,
                     "min_score": s.answer_min_score})
    return rows


def study(args) -> None:
    sets = {f.stem: pickle.loads(f.read_bytes()) for f in args.files}
    print("| sentences | best page goes on | " + " | ".join(sets) + " | all | median length |")
    print("|---|---|" + "---|" * (len(sets) + 2))
    for budget, page in VARIANTS:
        held, lengths = [], []
        for rows in sets.values():
            n = 0
            for r in rows:
                if r.get("refused"):
                    continue
                runs = E.pick(r["cands"], r["scores"], r["by_chunk"], budget=budget,
                              margin=r["margin"], min_score=r["min_score"], same_page=page)
                text = " ".join(E.shown(x.quote) for x in runs)
                lengths.append(len(text))
                n += any(k in text for k in r["keys"])
            held.append(n)
        print(f"| {budget} | {'yes' if page else 'no'} | "
              + " | ".join(f"{n}/{len(rows)}" for n, rows in zip(held, sets.values(),
                                                                 strict=True))
              + f" | {sum(held)} | {statistics.median(lengths):.0f} |")
    ceiling = [sum(any(k in c.text for c in {s.chunk for s in r["cands"]} for k in r["keys"])
                   for r in rows if not r.get("refused")) for rows in sets.values()]
    print(f"\nkey anywhere in the passages read: {', '.join(map(str, ceiling))}")


if __name__ == "__main__":
    run(__doc__, 0, collect, study)
