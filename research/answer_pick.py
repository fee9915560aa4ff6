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

Then three ways to steer today's pick (4 sentences, the best page going on) towards the
command that answers, each replayed on the same scores: for a how-to question
(``evidence.how_to``) whose quotes hold no instruction ("To enable ..., run ...", "you can
use ...") and no code, the best such sentence within twice the margin is quoted as if it
scored as the best; and every sentence's logit plus λ times the share of the question's
idf its words hold (λ 1, 2, 4); and the search's order as a prior, every sentence's logit
less λ times its passage's rank among those read (λ 0.5, 1, 2). Last, where the key is
lost: in no passage read (or only in a passage next to one read), in a passage but no
candidate sentence (a label, a heading), or in a sentence the pick passed over (within
the margin of the best, or under it).

Three more ways, with what ``collect`` also keeps (tenth session): each sentence scored in
the window of its paragraph's sentences before and after it (the better of that and
today's score, or a blend); the answer bounded by characters (500, 650, 800) rather than
by four sentences; and the passages just before and after the top one, or the best
sentence's, read too, their sentences scored as the others.

One more (fourteenth session): the instruction against the definition, each sentence of a
how-to question's answer scored less β times (its logit for "what is <the task's
object>" less its logit for the question), so that a sentence that only says what the
thing is scores lower than one that says how (β 0.1 to 1.0).
"""

from __future__ import annotations

import math
import pickle
import re
import statistics
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from benchmarks.docs import load_questions
from mcp_rag.answer import extractive as E
from mcp_rag.app.cache import normalize_query
from mcp_rag.index.lexical import tokenize
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve.evidence import how_to, how_to_form
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings
from mcp_rag.types import Chunk, Hit
from research.study_args import run

VARIANTS = [(b, page) for b in (3, 4, 5) for page in (False, True)]
# An answer bounded by its length rather than its sentence count: a command's line or an
# option's term is a short "sentence", a clause of a long one a long one.
CHAR_VARIANTS = [(4, None), *((n, c) for n in (5, 6, 8) for c in (500, 650, 800))]


def _next_to(around: dict, c: Chunk, d: int) -> Chunk | None:
    """The passage ``d`` after (before: -1) ``c`` in its document, if any."""
    return next((x for x in around.get(c.chunk_id, []) if x.chunk_no == c.chunk_no + d), None)


def read_near(r: dict, variant: str) -> list[E.Run]:
    """Today's pick over the passages read and those ``variant`` adds (``near``)."""
    add = set(r["near"][variant])
    extra = [(c, float(x)) for c, x in zip(r["near_cands"], r["near_scores"], strict=True)
             if c.chunk.chunk_id in add]
    cands = [*r["cands"], *(c for c, _ in extra)]
    scores = np.concatenate([r["scores"], np.array([x for _, x in extra], dtype=np.float32)])
    return E.pick(cands, scores, r["near_by_chunk"], budget=4, margin=r["margin"],
                  min_score=r["min_score"])


def _window(s: E.Sentence, by_chunk: dict) -> str:
    """``s`` with the sentences before and after it in its paragraph."""
    row = by_chunk[s.chunk.chunk_id]
    near = [row[j] for j in (s.index - 1, s.index, s.index + 1)
            if 0 <= j < len(row) and row[j].paragraph == s.paragraph]
    return " ".join(x.text for x in near)


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
        stems = list(dict.fromkeys(tokenize(q["question"])))
        with p.reader.in_use() as reader:
            dfs, n = reader.dfs(stems), reader.n_chunks
            # the passages just before and after each one read (the answer's context)
            around = {h.chunk.chunk_id: reader.doc_chunks(
                h.chunk.doc_id, h.chunk.chunk_no - 1, h.chunk.chunk_no + 1) for h in r.hits}
        # the passages next to the top one and to the best sentence's, read too
        best = cands[int(np.argmax(scores))].chunk if cands else None
        read = {h.chunk.chunk_id for h in r.hits}
        near = {v: [c for c in (_next_to(around, a, d) for a, d in how if a is not None)
                    if c is not None and c.chunk_id not in read]
                for v, how in (("next of top", [(r.hits[0].chunk, 1)]),
                               ("prev+next of top", [(r.hits[0].chunk, -1),
                                                     (r.hits[0].chunk, 1)]),
                               ("next of best", [(best, 1)]),
                               ("prev+next of best", [(best, -1), (best, 1)]))}
        extra = list({c.chunk_id: c for cs in near.values() for c in cs}.values())
        ncands, nby = E.sentences_of([*r.hits, *(Hit(c, 0.0) for c in extra)])
        known = {c.key for c in cands}
        new = [c for c in ncands if c.key not in known]
        nscores = E.score_sentences(q["question"], new, p.reranker, nby) if new \
            else np.zeros(0, dtype=np.float32)
        window = p.reranker.predict(
            [(q["question"], index_text(replace(c.chunk, text=_window(c, by_chunk))))
             for c in cands]) if cands else np.zeros(0, dtype=np.float32)
        idf = {st: math.log(1 + (n - dfs.get(st, 0) + 0.5) / (dfs.get(st, 0) + 0.5))
               for st in stems}
        # a how-to question's sentences scored for "what is <its object>" too (contrast)
        asked = how_to_form(q["question"])
        obj = _OBJECT.search(asked) if how_to(q["question"]) else None
        what = E.score_sentences("what is " + asked[obj.end():].rstrip("?"), cands,
                                 p.reranker, by_chunk) if obj and cands else None
        rows.append({"id": q["id"], "question": q["question"], "idf": idf,
                     "keys": q["keys"], "cands": cands, "by_chunk": by_chunk,
                     "around": around, "window": window,
                     "near": {v: [c.chunk_id for c in cs] for v, cs in near.items()},
                     "near_cands": new, "near_scores": nscores, "near_by_chunk": nby,
                     "scores": scores, "what": what, "margin": s.answer_margin,
                     "min_score": s.answer_min_score})
    return rows


# A sentence that tells what to run or use ("To enable ..., run PRAGMA ...", "you can use
# the manage.py dumpdata command", "is to use ..."): the study's how-to variant.
_INSTRUCTS = re.compile(
    r"^to \w[^,.;:]*,\s*(?:simply\s+)?(?:use|run|call|set|add|pass|specify|type|invoke|"
    r"execute|issue|enable|create|write)\b"
    r"|\b(?:you|one|we)\s+(?:can|could|should|must|may|need to)\s+(?:also\s+|simply\s+)?"
    r"(?:use|run|call|set|add|pass|specify|type|invoke|execute|issue|enable)\b"
    r"|\b(?:is|are)\s+to\s+(?:use|run|call|set|add|pass|specify|invoke|execute|issue)\b"
    r"|\b(?:use|using)\s+(?:the\s+)?\S+(?:\s+\S+)?\s+(?:command|statement|option|flag|"
    r"function|method|setting|pragma|clause)\b", re.I)


# "How to turn on" before "write-ahead logging" (a question in ``evidence.how_to_form``):
# the task's verb, and its particle
_OBJECT = re.compile(r"^\W*how\s+to\s+[a-z-]+\s+(?:(?:on|up|off|out|back|in|down|away)\s+)?",
                     re.I)


def instructs(s: E.Sentence) -> bool:
    return E.has_code(s.text) or _INSTRUCTS.search(" ".join(s.text.split())) is not None


def _pick(r: dict, scores: np.ndarray) -> list[E.Run]:
    return E.pick(r["cands"], scores, r["by_chunk"], budget=4, margin=r["margin"],
                  min_score=r["min_score"])


def steered(r: dict, variant: str) -> list[E.Run]:
    """Today's pick, or a variant of it (``study``'s second table)."""
    runs = _pick(r, r["scores"])
    if variant == "how-to":
        if not how_to(r["question"]) or any(instructs(s) for x in runs for s in x.sentences):
            return runs
        best = float(r["scores"].max())
        for i in np.argsort(-r["scores"]):
            if float(r["scores"][i]) < best - 2 * r["margin"]:
                break
            if instructs(r["cands"][i]):
                sc = r["scores"].copy()
                sc[i] = best - 1e-6
                return _pick(r, sc)
        return runs
    if variant.startswith("words"):
        lam, total = float(variant.split()[1]), sum(r["idf"].values()) or 1.0
        share = np.array([sum(r["idf"][st] for st in set(tokenize(c.text)) if st in r["idf"])
                          / total for c in r["cands"]], dtype=np.float32)
        return _pick(r, r["scores"] + lam * share)
    if variant in r.get("near", {}):  # the passages next to the top one or the best's
        return read_near(r, variant)
    if variant.startswith("window"):  # the sentence read in its paragraph's window too
        how = variant.split()[1]
        w = r["window"]
        if how == "max":
            return _pick(r, np.maximum(r["scores"], w))
        lam = float(how)
        return _pick(r, (1 - lam) * r["scores"] + lam * w)
    if variant.startswith("contrast"):  # the instruction against the definition
        if r.get("what") is None:
            return runs
        beta = float(variant.split()[1])
        return _pick(r, r["scores"] - beta * (r["what"] - r["scores"]))
    if variant.startswith("rank"):  # the search's order of the passages as a prior
        lam = float(variant.split()[1])
        return _pick(r, r["scores"] - lam * np.array([c.rank for c in r["cands"]],
                                                     dtype=np.float32))
    return runs


def lost(r: dict) -> str:
    """Where today's answer loses the key."""
    text = " ".join(E.shown(x.quote) for x in _pick(r, r["scores"]))
    if any(k in text for k in r["keys"]):
        return "held"
    if not any(k in c.text for c in {s.chunk for s in r["cands"]} for k in r["keys"]):
        near = [c for cs in r.get("around", {}).values() for c in cs]
        if any(k in c.text for c in near for k in r["keys"]):
            return "in no passage read, next to one"
        return "in no passage read"
    holding = [i for i, c in enumerate(r["cands"]) if any(k in c.text for k in r["keys"])]
    if not holding:
        return "in no candidate sentence"
    best = max(float(r["scores"][i]) for i in holding)
    return ("passed over, within the margin" if best >= r["scores"].max() - r["margin"]
            else "passed over, under the margin")


def _replayed(sets: Iterable[list[dict]], **kw: Any) -> tuple[list[int], list[int]]:
    """The pick replayed with ``kw`` on each set's answered rows: how many hold a key, per
    set, and every answer's length."""
    held, lengths = [], []
    for rows in sets:
        n = 0
        for r in rows:
            if r.get("refused"):
                continue
            runs = E.pick(r["cands"], r["scores"], r["by_chunk"], margin=r["margin"],
                          min_score=r["min_score"], **kw)
            text = " ".join(E.shown(x.quote) for x in runs)
            lengths.append(len(text))
            n += any(k in text for k in r["keys"])
        held.append(n)
    return held, lengths


def study(args) -> None:
    sets = {f.stem: pickle.loads(f.read_bytes()) for f in args.files}
    print("| sentences | best page goes on | " + " | ".join(sets) + " | all | median length |")
    print("|---|---|" + "---|" * (len(sets) + 2))
    for budget, page in VARIANTS:
        held, lengths = _replayed(sets.values(), budget=budget, same_page=page)
        print(f"| {budget} | {'yes' if page else 'no'} | "
              + " | ".join(f"{n}/{len(rows)}" for n, rows in zip(held, sets.values(),
                                                                 strict=True))
              + f" | {sum(held)} | {statistics.median(lengths):.0f} |")
    ceiling = [sum(any(k in c.text for c in {s.chunk for s in r["cands"]} for k in r["keys"])
                   for r in rows if not r.get("refused")) for rows in sets.values()]
    print(f"\nkey anywhere in the passages read: {', '.join(map(str, ceiling))}")
    answered = {name: [r for r in rows if not r.get("refused")] for name, rows in sets.items()}
    if not all("question" in r for rows in answered.values() for r in rows):
        return  # collected before the variants
    print("\n| pick (4 sentences, page goes on) | " + " | ".join(sets) + " | all |")
    print("|---|" + "---|" * (len(sets) + 1))
    variants = ["today", "how-to", "words 1", "words 2", "words 4", "rank 0.5", "rank 1",
                "rank 2"]
    if all("window" in r for rows in answered.values() for r in rows):
        variants += ["window max", "window 0.3", "window 0.5", "window 0.7"]
    if all("near" in r for rows in answered.values() for r in rows):
        variants += ["next of top", "prev+next of top", "next of best", "prev+next of best"]
    if all("what" in r for rows in answered.values() for r in rows):
        variants += [f"contrast {b}" for b in (0.1, 0.2, 0.3, 0.5, 1.0)]
    for variant in variants:
        held = [sum(any(k in " ".join(E.shown(x.quote) for x in steered(r, variant))
                        for k in r["keys"]) for r in rows) for rows in answered.values()]
        print(f"| {variant} | " + " | ".join(map(str, held)) + f" | {sum(held)} |")
    print("\n| sentences | characters | " + " | ".join(sets) + " | all | median length |")
    print("|---|---|" + "---|" * (len(sets) + 2))
    for budget, chars in CHAR_VARIANTS:
        held, lengths = _replayed(answered.values(), budget=budget, max_chars=chars)
        print(f"| {budget} | {chars or '-'} | " + " | ".join(map(str, held))
              + f" | {sum(held)} | {statistics.median(lengths):.0f} |")
    if all("near" in r for rows in answered.values() for r in rows):
        every = [r for rows in answered.values() for r in rows]
        base = sum(len(r["cands"]) for r in every)
        more = {v: sum(sum(c.chunk.chunk_id in r["near"][v] for c in r["near_cands"])
                       for r in every) / base
                for v in ("next of top", "prev+next of top", "next of best", "prev+next of best")}
        print("\nsentences scored besides those of the passages read: "
              + ", ".join(f"{v} +{x:.0%}" for v, x in more.items()))
    where = [lost(r) for rows in answered.values() for r in rows]
    print("\nthe key: " + ", ".join(f"{w} {where.count(w)}" for w in dict.fromkeys(where)))


if __name__ == "__main__":
    run(__doc__, 0, collect, study)
