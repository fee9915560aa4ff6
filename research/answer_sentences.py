"""Could `answer` score fewer sentences? How often cheaper choices keep the same answer.

    python research/answer_sentences.py --index /tmp/sf \\
        --dataset ../shared/datasets/scifact --split train [--n 80]

For each answered query (default settings), the extractive answer's sentences are scored
as served (each sentence bare and under its heading, the better counts) and then by
cheaper rules that score fewer pairs; the sentences not scored cannot be picked. Prints,
per rule, the share of answers identical to the served one, the share that keep its best
run, and the pairs scored as a share of the served number. Then it times the same sentence
pairs scored 1, 2, 4, 8 and 16 to a model call, with the largest change of a logit
against one at a time (the pack's models quantise activations per batch).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mcp_rag.answer import extractive as E
from mcp_rag.evaluate.beir import judged_queries, load_qrels, load_queries
from mcp_rag.index.lexical import tokenize
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--n", type=int, default=80)
    args = ap.parse_args()

    s = Settings(index=args.index, cache_enabled=False)
    p = Pipeline.from_settings(s)
    texts, qrels = load_queries(args.dataset), load_qrels(args.dataset, args.split)
    items = [t for _, t in judged_queries(texts, qrels)][: args.n]
    kw = {"budget": s.answer_sentences, "margin": s.answer_margin,
          "min_score": s.answer_min_score}
    all_pairs: list[list[tuple[str, str]]] = []
    same: dict[str, list[bool]] = {}
    best_kept: dict[str, list[bool]] = {}
    pairs: dict[str, list[float]] = {}
    for q in items:
        r = p.search(q, k=s.answer_passages, rerank=True)
        if not r.hits:
            continue
        cands, by_chunk = E.sentences_of(r.hits)
        if not cands:
            continue
        bare = p.reranker.predict([(q, c.text) for c in cands])
        framed = p.reranker.predict(
            [(q, index_text(replace(c.chunk, text=c.text))) for c in cands])
        served = np.maximum(bare, framed)
        all_pairs.append([(q, c.text) for c in cands]
                         + [(q, index_text(replace(c.chunk, text=c.text))) for c in cands])

        def key(scores: np.ndarray, cands=cands, by_chunk=by_chunk) -> list:
            return [(x.chunk.doc_id, x.start, x.end)
                    for x in E.pick(cands, scores, by_chunk, **kw)]

        ref = key(served)
        windows = p.passages(r, r.hits)
        in_window = np.array([c.text in windows[c.rank] for c in cands])
        stems = set(tokenize(q))
        weights = {t.stem: t.idf(r.n_chunks) for t in r.terms}
        mass = np.array([sum(weights.get(t, 1.0) for t in stems.intersection(tokenize(c.text)))
                         for c in cands])
        top6 = np.zeros(len(cands), bool)
        top6[sorted(range(len(cands)), key=lambda i: (-mass[i], cands[i].rank, i))[:6]] = True
        rules = {
            "only sentences inside the windows search read": (
                np.where(in_window, served, -np.inf), 2 * in_window.sum()),
            "only the 6 sentences with most question words (idf)": (
                np.where(top6, served, -np.inf), 2 * top6.sum()),
            "one pair a sentence: under its heading": (framed, len(cands)),
            "one pair a sentence: bare": (bare, len(cands)),
        }
        for name, (scores, n_pairs) in rules.items():
            got = key(scores)
            same.setdefault(name, []).append(got == ref)
            best_kept.setdefault(name, []).append(bool(set(got) & set(ref[:1])))
            pairs.setdefault(name, []).append(n_pairs / (2 * len(cands)))
    n = len(next(iter(same.values()), []))
    print(f"{args.dataset.name} {args.split}: {n} answered queries")
    print("| rule | identical answer | best run kept | pairs scored |\n|---|---|---|---|")
    for name in same:
        print(f"| {name} | {np.mean(same[name]):.2f} | {np.mean(best_kept[name]):.2f} | "
              f"{np.mean(pairs[name]):.2f} |")
    ce = p.reranker
    ref = [ce.predict(x) for x in all_pairs[:20]]
    print("\n| pairs a call | ms a pair | largest logit change |\n|---|---|---|")
    for size in (1, 2, 4, 8, 16):
        ce.batch_size = size
        t = time.perf_counter()
        out = [ce.predict(x) for x in all_pairs[:20]]
        ms = (time.perf_counter() - t) * 1000 / sum(map(len, all_pairs[:20]))
        diff = max(float(np.abs(a - b).max()) for a, b in zip(out, ref, strict=True))
        print(f"| {size} | {ms:.2f} | {diff:.2f} |")
    ce.batch_size = 1


if __name__ == "__main__":
    main()
