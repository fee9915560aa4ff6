"""First-stage fusion and reranker blend together, compared offline on cached lists and logits.

    python research/blend_study.py collect --index /tmp/evalidx/eval/<key> \\
        --dataset ../shared/datasets/scifact --split train --n 300 --out /tmp/sf_train.jsonl
    python research/blend_study.py study /tmp/sf_train.jsonl /tmp/nf_dev.jsonl

With ``collect --depth 30`` the logits cover each fusion's top 30, and ``study --depths
10,20,30`` adds a table of the default fusion and blend at each reranking depth.

``collect`` runs each query once through the eval index (built by ``mcp-rag eval``): BM25's
and dense's top 300 chunks with their scores, and the cross-encoder's logits (at the
default window) for every chunk any compared fusion puts in its reranked top
``rerank_candidates``. ``study`` then scores every (fusion, blend) pair in memory, nDCG@10
over documents as ``mcp-rag eval`` counts it (the reranked top, then the first stage's
order), per collection and their mean: a choice must hold on every collection, so tune on
train/dev splits and check the winner on test with ``mcp-rag eval``.

Fusions: RRF (k 60) and convex combinations of min-max normalised scores (dense share
0.6-0.7). Blends of the reranked candidates: ``rrf`` (RRF of the cross-encoder rank and
the first-stage rank, k 10) and ``scores`` (min-max normalised logits and first-stage
scores, interpolated), cross-encoder share 0.2-0.5.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

from mcp_rag.evaluate.beir import judged_queries, load_qrels, load_queries
from mcp_rag.evaluate.metrics import ndcg_at_k
from mcp_rag.retrieve.fusion import blend, convex, interpolate, rrf
from mcp_rag.retrieve.pipeline import MAX_QUERY_CHARS, Pipeline
from mcp_rag.settings import Settings
from mcp_rag.types import Hit

DEPTH = 50  # the first stage's candidates per retriever (Settings.candidates)
FUSIONS = {"rrf": None, "convex 0.6": 0.6, "convex 0.65": 0.65, "convex 0.7": 0.7}
BLENDS = [("none", 0.0)] + [(b, w) for b in ("rrf", "scores") for w in (0.2, 0.3, 0.4, 0.5)]


def doc_of(rec: dict) -> dict[str, str]:
    """Chunk id -> document id over both retrievers' cached lists."""
    return {c: d for m in ("bm25", "dense") for c, d, _ in rec[m]}


def fused(rec: dict, fusion: str) -> list[tuple[str, float]]:
    """The first stage's chunk order and scores under ``fusion``."""
    b = {c: s for c, _, s in rec["bm25"][:DEPTH]}
    d = {c: s for c, _, s in rec["dense"][:DEPTH]}
    w = FUSIONS[fusion]
    if w is None:
        return rrf({"bm25": list(b), "dense": list(d)}, k=60)
    return convex({"bm25": b, "dense": d}, {"bm25": 1 - w, "dense": w})


def capped(order: list[tuple[str, float]], doc: dict[str, str], n: int, cap: int = 3) -> list:
    per: dict[str, int] = {}
    out = []
    for c, s in order:
        if per.get(doc[c], 0) < cap:
            per[doc[c]] = per.get(doc[c], 0) + 1
            out.append((c, s))
            if len(out) == n:
                break
    return out


def collect(args: argparse.Namespace) -> None:
    s = Settings(index=args.index, max_chunks_per_doc=100, candidates=300)
    p = Pipeline.from_settings(s)
    assert p.reranker is not None, p.rerank_error
    n = args.depth or Settings().rerank_candidates
    queries, qrels = load_queries(args.dataset), load_qrels(args.dataset, args.split)
    items = judged_queries(queries, qrels)
    random.Random(7).shuffle(items)
    with args.out.open("w") as f:
        for i, (qid, text) in enumerate(items[: args.n]):
            text = text[:MAX_QUERY_CHARS]
            rec: dict = {"qid": qid, "rel": qrels[qid]}
            for mode in ("bm25", "dense"):
                hits = p.retrieve(text, 300, mode=mode).hits
                rec[mode] = [[h.chunk.chunk_id, h.chunk.doc_id,
                              h.bm25_score if mode == "bm25" else h.dense_score] for h in hits]
            doc = doc_of(rec)
            need = {c for fu in FUSIONS for c, _ in capped(fused(rec, fu), doc, n)}
            first = p.retrieve(text, 1)
            hits = [Hit(chunk=p.reader.chunk_by_id(c), score=0.0) for c in sorted(need)]
            logits = p.reranker.predict([(text, x) for x in p.passages(first, hits)])
            rec["ce"] = {h.chunk.chunk_id: float(v) for h, v in zip(hits, logits, strict=True)}
            f.write(json.dumps(rec) + "\n")
            if i % 50 == 0:
                print(f"{args.dataset.name}: {i} queries", file=sys.stderr, flush=True)


def ranking(rec: dict, fusion: str, how: str, weight: float, n: int) -> list[str]:
    """Documents in the order ``mcp-rag eval`` scores: the blended top ``n``, then the rest."""
    doc = doc_of(rec)
    order = fused(rec, fusion)
    top = capped(order, doc, n)
    logits = [rec["ce"][c] for c, _ in top]
    if how == "rrf":
        new = [top[i][0] for i, _ in blend(list(range(1, len(top) + 1)), logits, weight, 10)]
    elif how == "scores":
        new = [top[i][0] for i, _ in interpolate([s for _, s in top], logits, weight)]
    else:
        new = [c for c, _ in top]
    chunks = new + [c for c, _ in order if c not in set(new)]
    return list(dict.fromkeys(doc[c] for c in chunks))


def study(args: argparse.Namespace) -> None:
    sets = {p.stem: [json.loads(ln) for ln in p.read_text().splitlines()] for p in args.files}
    n = Settings().rerank_candidates
    if args.depths:
        depth_table(sets, [int(d) for d in args.depths.split(",")])
    print(f"nDCG@10 (documents), top {n} reranked\n")
    print("| fusion | blend | " + " | ".join(sets) + " | mean |")
    print("|---|---|" + "---|" * (len(sets) + 1))
    for fusion in FUSIONS:
        for how, w in BLENDS:
            print_row(fusion, sets, fusion, how, w, n)


def print_row(first: str, sets: dict[str, list[dict]], fusion: str, how: str, w: float,
              n: int) -> None:
    """One table row: mean nDCG@10 of each set under (fusion, blend, depth), and their mean."""
    row = [float(np.mean([ndcg_at_k(ranking(r, fusion, how, w, n), r["rel"], 10)
                          for r in recs])) for recs in sets.values()]
    label = "first stage" if how == "none" else f"{how}, {w}"
    print(f"| {first} | {label} | " + " | ".join(f"{x:.4f}" for x in row)
          + f" | {np.mean(row):.4f} |")


def depth_table(sets: dict[str, list[dict]], depths: list[int]) -> None:
    """The default fusion with the score blend, reranking ``depths`` candidates."""
    print("convex 0.65, score blend: nDCG@10 by reranking depth\n")
    print("| depth | blend | " + " | ".join(sets) + " | mean |")
    print("|---|---|" + "---|" * (len(sets) + 1))
    for n in depths:
        missing = sum(1 for recs in sets.values() for r in recs
                      if any(c not in r["ce"]
                             for c, _ in capped(fused(r, "convex 0.65"), doc_of(r), n)))
        if missing:
            print(f"| {n} | {missing} queries lack logits at this depth: collect --depth {n} |")
            continue
        for how, w in BLENDS:
            if how != "rrf":
                print_row(str(n), sets, "convex 0.65", how, w, n)
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--index", type=Path, required=True)
    c.add_argument("--dataset", type=Path, required=True)
    c.add_argument("--split", default="test")
    c.add_argument("--n", type=int, default=300)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--depth", type=int, default=0,
                   help="logits for each fusion's top N (default: rerank_candidates)")
    st = sub.add_parser("study")
    st.add_argument("files", type=Path, nargs="+")
    st.add_argument("--depths", default="", help="e.g. 10,20,30: the default at each depth")
    args = ap.parse_args()
    collect(args) if args.cmd == "collect" else study(args)


if __name__ == "__main__":
    main()
