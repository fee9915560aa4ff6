"""Lexical pseudo-relevance feedback (RM3) for the first stage: does expanding BM25's
query with the words of its own best passages find the page a question describes in other
words ("a header search path for one target" for ``target_include_directories``)?

    python research/prf_study.py collect --index /tmp/dx/cmake \\
        --questions benchmarks/data/docs/cmake.jsonl --out /tmp/prf/cmake.jsonl
    python research/prf_study.py collect --index /tmp/sf \\
        --dataset ../shared/datasets/scifact --split train --n 300 --out /tmp/prf/scifact.jsonl
    python research/prf_study.py study /tmp/prf/*.jsonl --out research/data/prf_study.json

``collect`` asks each question as ``research/rerank_rule.py`` does (normalised, the default
first stage, its top ``rerank_candidates``), once as today and once per RM3 variant: BM25's
top ``docs`` passages (read as the retrievers read them) give a relevance model, each
word's probability in a passage weighted by the passage's share of their BM25 scores; its
``terms`` most probable words (not in the query) join the query, the query's own words
keeping ``keep`` of the weight. BM25 scores the weighted query; fusion with dense and the
cap per document are today's. The cross-encoder's logit of every candidate any variant
reads is kept (once a passage), so ``study`` can order each variant's candidates both
ways: first stage alone and blended at the default share. nDCG@10 and hit@1 over the
documents of the top 10, per collection, as gains over today's; the rule chosen
leave-one-collection-out, judged by the worst collection.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from typing import Any

import numpy as np

from mcp_rag.app.cache import normalize_query
from mcp_rag.evaluate.latency import cpu
from mcp_rag.evaluate.metrics import ndcg_at_k
from mcp_rag.index.lexical import BM25Index, tokenize, tokenize_query
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings
from research.rerank_rule import _hit
from research.rerank_rule import collect as rerank_collect
from research.rerank_rule import order as rerank_order
from research.study_args import run

# (feedback passages, expansion words, the query's own share)
VARIANTS = [(3, 10, 0.7), (5, 10, 0.7), (5, 10, 0.5), (5, 20, 0.5), (10, 20, 0.5),
            (3, 5, 0.8)]


def name(v: tuple[int, int, float]) -> str:
    return f"rm3 docs={v[0]} terms={v[1]} keep={v[2]}"


def expanded(bm25: BM25Index, reader: Any, query: str, n: int, allowed: Any,
             docs: int, terms: int, keep: float) -> tuple[np.ndarray, np.ndarray]:
    """BM25's top ``n`` rows for ``query`` with RM3 expansion (see the module's doc)."""
    q = tokenize_query(query, bm25.languages)
    rows, sc = bm25.search(query, max(n, docs), allowed)
    weights: Counter[str] = Counter({t: keep / max(1, len(q)) for t in q})
    if len(rows) and sc[: docs].sum() > 0:
        fb = reader.chunks(rows[:docs].tolist())
        share = sc[:docs] / sc[:docs].sum()
        rel: Counter[str] = Counter()
        for c, w in zip(fb, share, strict=False):
            toks = tokenize(index_text(c))
            for t, tf in Counter(toks).items():
                rel[t] += float(w) * tf / max(1, len(toks))
        qs = set(q)
        top = [(t, p) for t, p in rel.most_common() if t not in qs and bm25.df(t) > 1][:terms]
        total = sum(p for _, p in top) or 1.0
        for t, p in top:
            weights[t] += (1 - keep) * p / total
    out = np.zeros(bm25.n_rows, dtype=np.float32)
    for t, w in weights.items():
        i = bm25.vocab.get(t)
        if i is not None:
            a, z = bm25.term_ptr[i], bm25.term_ptr[i + 1]
            out[bm25.rows[a:z]] += w * bm25.weights[a:z]
    if allowed is not None:
        out = np.where(allowed, out, 0.0)
    hits = np.flatnonzero(out > 0)
    if len(hits) > n:
        hits = hits[np.argpartition(-out[hits], n - 1)[:n]]
    order = np.lexsort((hits, -out[hits]))
    return hits[order], out[hits][order]


def record(p: Pipeline, qid: str, text: str, rel: dict[str, int]) -> dict[str, Any]:
    assert p.reranker is not None, p.rerank_error
    n = p.settings.rerank_candidates
    query = normalize_query(text)
    logit: dict[str, float] = {}
    out: dict[str, Any] = {"qid": qid, "rel": rel, "variants": {}}
    with p.reader.in_use() as reader:
        plain = reader.lexical
        for v in [None, *VARIANTS]:
            if v is not None:
                reader.lexical = (lambda qq, nn, al, v=v, r=reader: expanded(
                    r.bm25, r, qq, nn, al, *v))
            try:
                first = p.retrieve(query, n)
            finally:
                reader.lexical = plain
            cands = first.hits[:n]
            new = [h for h in cands if h.chunk.chunk_id not in logit]
            if new:
                scores = p.reranker.predict([(first.query, x) for x in p.passages(first, new)])
                logit.update({h.chunk.chunk_id: float(s) for h, s in zip(new, scores,
                                                                          strict=True)})
            out["variants"]["today" if v is None else name(v)] = [
                [h.chunk.doc_id, h.score, logit[h.chunk.chunk_id]] for h in cands]
    return out


def collect(args: argparse.Namespace) -> None:
    rerank_collect(args, record)


def order(cands: list, share: float) -> list[str]:
    """Documents of a variant's candidates under the score blend at ``share``, as
    ``rerank_rule.order`` orders a record's."""
    return rerank_order({"cands": cands, "agree": False}, share, False)


def gains(recs: list[dict], variant: str, share: float) -> dict[str, float]:
    """Mean nDCG@10 and hit@1 gain of ``variant`` at ``share`` over today's first stage
    at the same share."""
    d_ndcg, d_hit, d_rec = [], [], []
    for r in recs:
        base, new = order(r["variants"]["today"], share), order(r["variants"][variant], share)
        d_ndcg.append(ndcg_at_k(new, r["rel"], 10) - ndcg_at_k(base, r["rel"], 10))
        d_hit.append(_hit(new, r["rel"]) - _hit(base, r["rel"]))
        d_rec.append(int(any(r["rel"].get(d, 0) > 0 for d in new))
                     - int(any(r["rel"].get(d, 0) > 0 for d in base)))
    return {"ndcg": statistics.mean(d_ndcg), "hit@1": sum(d_hit), "found": sum(d_rec)}


def study(args: argparse.Namespace) -> None:
    sets = {p.stem: [json.loads(ln) for ln in p.read_text().splitlines()] for p in args.files}
    share = Settings().rerank_weight
    names = list(sets)
    table: dict[str, dict] = {}
    for sh in (0.0, share):
        for v in VARIANTS:
            table[f"{name(v)} @ {sh}"] = {k: gains(recs, name(v), sh) for k, recs in sets.items()}
    print("| rule | " + " | ".join(names) + " | worst |")
    print("|---|" + "---|" * (len(names) + 1))
    for rule, row in table.items():
        worst = min(row[k]["ndcg"] for k in names)
        print(f"| {rule} | " + " | ".join(
            f"{row[k]['ndcg']:+.4f} ({row[k]['hit@1']:+d}, {row[k]['found']:+d})"
            for k in names) + f" | {worst:+.4f} |")
    if args.out:
        args.out.write_text(json.dumps({"cpu": cpu(), "questions": {k: len(v) for k, v in
                                        sets.items()}, "rules": table}, indent=1))


def main() -> None:
    run(__doc__, 300, collect, study)


if __name__ == "__main__":
    main()
