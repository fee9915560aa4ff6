"""A second judge for the answer's sentences: the dense model's similarity, blended in.

    python research/dense_pick.py --index /tmp/dx/pg \\
        --collect benchmarks/data/docs/postgresql.jsonl /tmp/pick-pg.pkl
    python research/dense_pick.py --index /tmp/dx/pg /tmp/pick-*.pkl
    python research/dense_pick.py --served /tmp/dx/pg=benchmarks/data/docs/postgresql.jsonl ...

The cross-encoder prefers a sentence that says what a thing is to the one that names the
command (fourteenth to nineteenth sessions: every steer of its scores tried moved the key
within noise). The embedder (bge-small, trained on other pairs and with an instruction for
queries) is a second, differently biased judge that ``answer`` already loads. Each
candidate sentence is embedded, as written (``bare``) and under its passage's title and
section as the retrievers read a passage (``headed``), and the pick replayed
(``extractive.pick`` with ``leading``, as ``answer`` calls it, over the sentences and
logits ``--collect`` kept of each in-scope question) on:
the logits plus λ times the sentence's cosine to the question less the best cosine (λ
logits per unit of cosine); the cosines alone; and the two standardised over the
candidates and blended, ``share`` of the say to the cosine, back in the logits' mean and
spread (``extractive.blended``), over every candidate or only those within 4, 6 or 8
logits of the best (the pick takes none beyond twice its margin of 4). Prints, per
file, how many answers hold a key, and the median answer length; then, each file left
out in turn, the variant with the best worst gain over the logits alone on the others,
and its gain on the one left out.

That replay leaves out what ``answer`` adds to a pick (a term's heading looked up in the
index) and scores the question as written, not normalised, so it counts a few keys fewer
than the docs benchmark and its differences do not carry over exactly (0.7 within 8
logits: +8 replayed, +4 in the benchmark, with two manuals lower). ``--served`` replays
as ``answer`` runs (the question normalised, the index's headings and terms), on every
candidate or those within 8 logits, shares 0.4 to 0.8, each sentence embedded as written
or as the cross-encoder reads it (with the sentence it leans on): its counts are the
benchmark's, question for question. Embedded as written, no share is at or above the
logits alone on all eight manuals (0.6: 224 of 336 against 216, FFmpeg's one lower);
read as the cross-encoder reads it, 0.6 is (223, none lower), and ``with_dense`` reads
so. ``answer_dense_share`` stays 0 by default for its cost (about 30 % more
``answer`` time; docs, Answers and Evaluation). Cheaper rules, as read: within 8 or 6
logits (each lower than the logits alone on three to four manuals), and each sentence
embedded by its first ``CHARS`` characters (as good, but it saves nothing: few sentences
are longer, and the cost is the number of embedder calls).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.docs import load_questions
from mcp_rag.answer import extractive as E
from mcp_rag.app.cache import normalize_query
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

LAMBDAS = (0.0, 5.0, 10.0, 20.0, 40.0)  # 0: the logits alone
SHARES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
NEAR = (4.0, 6.0, 8.0)
CHARS = 300  # --served: a sentence embedded by its first this many characters (a cheaper rule)


def _blend(ce: np.ndarray, dense: np.ndarray, w: float, within: float = np.inf) -> np.ndarray:
    """``extractive.with_dense`` on cosines computed once: the sentences within ``within``
    logits of the best blended, ``w`` of the say to the cosine."""
    near = np.flatnonzero(ce >= ce.max() - within)
    if len(near) < 2:
        return ce
    out = ce.astype(np.float32)  # a copy: the others keep their logits
    out[near] = E.blended(ce[near], dense[near], w)
    return out


def _held(r: dict, scores: np.ndarray) -> tuple[bool, int]:
    runs = E.pick(r["cands"], scores, r["by_chunk"], budget=4, margin=r["margin"],
                  min_score=r["min_score"], lead=E.leading(r["cands"], scores, r["margin"]),
                  logits=r["scores"])
    text = " ".join(E.shown(x.quote) for x in runs)
    return any(k in text for k in r["keys"]), len(text)


def collect(p: Pipeline, questions: Path, out: Path) -> None:
    """Each in-scope question's candidate sentences and their logits, as ``answer`` has
    them, with the question's keys."""
    s, rows = p.settings, []
    for q in load_questions(questions):
        if q["kind"] != "in_scope":
            continue
        r = p.search(normalize_query(q["question"]), k=s.answer_passages, rerank=True,
                     question=q["question"], copies=False)
        if r.no_answer or not r.hits:
            rows.append({"id": q["id"], "refused": True})
            continue
        cands, by_chunk = E.sentences_of(r.hits)
        rows.append({"id": q["id"], "question": q["question"], "keys": q["keys"],
                     "cands": cands, "by_chunk": by_chunk,
                     "scores": E.score_sentences(q["question"], cands, p.reranker, by_chunk),
                     "margin": s.answer_margin, "min_score": s.answer_min_score})
    out.write_bytes(pickle.dumps(rows))


def _rule(share: float, near: float, read: bool, chars: int | None = None) -> str:
    return (f"{share:g}, " + ("all" if near == np.inf else f"within {near:g}")
            + (", read with the sentence leant on" if read else "")
            + (f", first {chars} characters" if chars else ""))


def served(pairs: list[str]) -> None:
    """The replay as ``answer`` runs it: each in-scope question normalised, its sentences
    scored, the headings and terms looked up in the index (``corpus``), the quotes joined
    as the answer shows them; the cosines of every candidate computed once, then each rule
    (every candidate or those within 8 logits; shares 0.4 to 0.8; each sentence embedded
    as written, or as the cross-encoder reads it: ``with_dense``) replayed. Prints how
    many answers hold a key per file, and, each file left out in turn, the rule with the
    best worst gain on the others. ``pairs``: INDEX=QUESTIONS, one a manual."""
    rules: list[tuple[float, float, bool, int | None]] = [
        (w, near, False, None) for near in (np.inf, 8.0) for w in (0.4, 0.5, 0.6, 0.7, 0.8)]
    rules += [(w, np.inf, True, None) for w in (0.5, 0.6, 0.7)]
    # cheaper, as read: only the sentences within reach embedded, or each cut short
    rules += [(w, near, True, chars) for w in (0.5, 0.6, 0.7)
              for near, chars in ((8.0, None), (6.0, None), (np.inf, CHARS), (8.0, CHARS))]
    table: dict[str, list[int]] = {"today": []}
    files = []
    for pair in pairs:
        index, _, name = pair.partition("=")
        f = Path(name)
        files.append(f)
        p = Pipeline.from_settings(Settings.load(index=Path(index), cache_enabled=False))
        s, emb = p.settings, p.embedder
        counts = dict.fromkeys(["today", *(_rule(*rule) for rule in rules)], 0)
        for q in load_questions(f):
            if q["kind"] != "in_scope":
                continue
            norm = normalize_query(q["question"])
            r = p.search(norm, k=s.answer_passages, rerank=True, question=q["question"],
                         copies=False)
            if r.no_answer or not r.hits:
                continue
            cands, by_chunk = E.sentences_of(r.hits)
            logits = E.score_sentences(norm, cands, p.reranker, by_chunk)
            qv = emb.embed_query(norm)
            cos = (emb.embed_documents([c.text for c in cands]) @ qv
                   if len(cands) > 1 else np.zeros(len(cands), dtype=np.float32))
            texts = [E._read_with(c, by_chunk) for c in cands]
            read = emb.embed_documents(texts) @ qv if len(cands) > 1 else cos
            short = (emb.embed_documents([t[:CHARS] for t in texts]) @ qv
                     if len(cands) > 1 and any(len(t) > CHARS for t in texts) else read)
            for name, order in [("today", logits), *(
                    (_rule(w, n, rd, ch),
                     _blend(logits, (short if ch else read) if rd else cos, w, n))
                    for w, n, rd, ch in rules)]:
                runs = E.pick(cands, order, by_chunk, budget=s.answer_sentences,
                              margin=s.answer_margin, min_score=s.answer_min_score,
                              corpus=r.corpus, lead=E.leading(cands, order, s.answer_margin),
                              logits=logits)
                text = " ".join(E.shown(x.quote) for x in runs)
                counts[name] += any(k in text for k in q["keys"])
        for name, n in counts.items():
            table.setdefault(name, []).append(n)
    names = [f.stem for f in files]
    print("| rule | " + " | ".join(names) + " | all |\n|---|" + "---|" * (len(names) + 1))
    for name, held in table.items():
        print(f"| {name} | " + " | ".join(map(str, held)) + f" | {sum(held)} |")
    held_out(table, names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, help="any index: its embedder (not with --served)")
    ap.add_argument("--collect", type=Path, metavar="QUESTIONS",
                    help="a docs benchmark file: ask it, and write the pickle FILES names")
    ap.add_argument("--served", action="store_true",
                    help="FILES are INDEX=QUESTIONS pairs: replay as answer runs")
    ap.add_argument("files", nargs="+", help="pickles of --collect")
    args = ap.parse_args()
    if args.served:
        served(args.files)
        return
    if args.index is None:
        ap.error("--index is needed")
    args.files = [Path(f) for f in args.files]
    p = Pipeline.from_settings(Settings.load(index=args.index, cache_enabled=False))
    if args.collect:
        collect(p, args.collect, args.files[0])
        return
    emb = p.embedder
    sets = {f.stem: [r for r in pickle.loads(f.read_bytes()) if not r.get("refused")]
            for f in args.files}
    for rows in sets.values():
        for r in rows:
            q = emb.embed_query(r["question"])
            for name, texts in (
                    ("headed", [index_text(replace(s.chunk, text=s.text)) for s in r["cands"]]),
                    ("bare", [s.text for s in r["cands"]])):
                d = emb.embed_documents(texts) @ q
                r[name] = (d - d.max()).astype(np.float32)
    print("| λ (logits per unit of cosine) | " + " | ".join(sets) + " | all | median length |")
    print("|---|" + "---|" * (len(sets) + 2))
    table: dict[str, list[int]] = {}

    def row(name: str, order: Callable[[dict], np.ndarray]) -> None:
        """The keys held per set when the pick follows ``order`` (one table row)."""
        held, lengths = [], []
        for rows in sets.values():
            n = 0
            for r in rows:
                ok, ln = _held(r, order(r).astype(np.float32))
                n += ok
                lengths.append(ln)
            held.append(n)
        table[name] = held
        print(f"| {name} | " + " | ".join(map(str, held))
              + f" | {sum(held)} | {statistics.median(lengths):.0f} |")

    row("today", lambda r: r["scores"])
    for how in ("headed", "bare"):
        for lam in LAMBDAS[1:]:
            row(f"{how}, {lam:g}", lambda r, lam=lam, how=how: r["scores"] + lam * r[how])
        row(f"{how}, dense alone",  # the best at the best logit
            lambda r, how=how: r[how] * 100 + r["scores"].max())
        for near in (np.inf, *NEAR):  # every sentence, or those within ``near`` logits
            for w in SHARES:
                row(f"{how}, share {w:g}, " + ("all" if near == np.inf else f"within {near:g}"),
                    lambda r, w=w, near=near, how=how: _blend(r["scores"], r[how], w, near))
    held_out(table, list(sets))
    held_out(table, list(sets), "within 8")


def held_out(table: dict[str, list[int]], names: list[str], family: str = "") -> None:
    """Each set left out in turn: the rule (of those whose name holds ``family``) with the
    best worst gain over today on the others (then the best total), and its gain on the
    one left out."""
    today = table["today"]
    table = {k: v for k, v in table.items() if family in k}
    print(f"\n{family or 'every rule'}:\n\n| left out | chosen on the others | its gain there "
          f"(keys) |\n|---|---|---|")
    for j, name in enumerate(names):
        def worth(rule: str, j: int = j) -> tuple[int, int]:
            gain = [a - b for i, (a, b) in enumerate(zip(table[rule], today, strict=True))
                    if i != j]
            return min(gain), sum(gain)
        rule = max(table, key=worth)
        print(f"| {name} | {rule} | {table[rule][j] - today[j]:+d} |")


if __name__ == "__main__":
    main()
