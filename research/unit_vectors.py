"""Would a vector per line or sentence find the row, the entry, the sentence that answers?

    python research/unit_vectors.py collect --index /tmp/dx/pg --out /tmp/units/pg.npz
    python research/unit_vectors.py study --index /tmp/dx/pg --units /tmp/units/pg.npz \\
        --questions benchmarks/data/docs/postgresql.jsonl [--json out.json]

A passage of a reference holds many items (a table of aggregate functions, a list of
options, a page of variables); its one vector is about all of them, and a question about
one item ("How do I concatenate values from many rows into one string?": `string_agg`'s
row) may not find it among 12,000 passages. "Small to big" retrieval embeds the small
units as well and scores a passage by its best unit. ``collect`` embeds each passage's
lines (a table row, a term with its description, a paragraph; a long line cut into
sentences; code and lines of under four words left out) under the passage's title and
heading, as the index embeds passages, for passages of two units or more. ``study``
replays the first stage as ``search`` runs it (BM25 and dense top ``candidates``, convex
fusion at the index's weight, the per-document cap) with the dense score of a passage
taken as its own similarity or, in turn, the best of it and its best unit's (max), or
their mean with the unit's (mix); and reports, for the docs benchmark's in-scope
questions, the page's first-stage hit@1, hit@3 and MRR@10, and how often a passage
holding a key string is among the ten candidates the cross-encoder reads (the most an
answer can quote). The decision to answer is not replayed: the question here is whether
the candidates get better.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.docs import page_rank
from mcp_rag.app.cache import normalize_query
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve.first_stage import _capped
from mcp_rag.retrieve.fusion import convex
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`\"'])")
_LONG = 60  # words: a longer line is cut into its sentences
_MIN_WORDS = 4


def units(text: str) -> list[str]:
    """The lines and sentences of a passage worth a vector of their own."""
    out = []
    for line in text.split("\n"):
        if line.startswith("    ") or not line.strip():
            continue  # code: the passage's vector covers it
        parts = _SENTENCE.split(line.strip()) if len(line.split()) > _LONG else [line.strip()]
        out += [p for p in parts if len(re.findall(r"\w+", p)) >= _MIN_WORDS]
    return out


def collect(index: str, out: str, batch: int = 2000) -> None:
    pipe = Pipeline.from_settings(Settings.load(index=index, cache_enabled=False))
    reader, emb = pipe.reader, pipe.embedder
    texts: list[str] = []
    rows: list[int] = []
    for a in range(0, reader.n_chunks, batch):
        got = list(range(a, min(a + batch, reader.n_chunks)))
        for row, c in zip(got, reader.chunks(got), strict=True):
            us = units(c.text)
            if len(us) < 2:
                continue
            texts += [index_text(replace(c, text=u)) for u in us]  # as the index reads it
            rows += [row] * len(us)
    t = time.perf_counter()
    print(f"{len(texts)} units of {len(set(rows))} passages ({reader.n_chunks} in all)",
          file=sys.stderr, flush=True)
    vecs = emb.embed_documents(texts)
    print(f"embedded in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    np.savez(out, vectors=vecs.astype(np.float16), rows=np.asarray(rows, dtype=np.int32))


VARIANTS = ("passage", "max", "mix")


def _dense(variant: str, qv: np.ndarray, reader, uvec: np.ndarray, urow: np.ndarray,
           n: int) -> dict[int, float]:
    rows, sc = reader.nearest(qv, n)
    own = dict(zip(rows.tolist(), sc.tolist(), strict=True))
    if variant == "passage":
        return own
    us = uvec @ qv
    top = np.argsort(-us)[: 4 * n]
    best: dict[int, float] = {}
    for i in top:
        r = int(urow[i])
        best.setdefault(r, float(us[i]))
    cand = set(own) | set(best)
    missing = [r for r in cand if r not in own]
    if missing:
        own |= dict(zip(missing, (reader.vectors(missing) @ qv).tolist(), strict=True))
    if variant == "max":
        score = {r: max(own[r], best.get(r, -1.0)) for r in cand}
    else:
        score = {r: (own[r] + best[r]) / 2 if r in best else own[r] for r in cand}
    return dict(sorted(score.items(), key=lambda kv: -kv[1])[:n])


def study(index: str, units_file: str, questions: str, out: str | None) -> None:
    s = Settings.load(index=index, cache_enabled=False)
    pipe = Pipeline.from_settings(s)
    reader, emb = pipe.reader, pipe.embedder
    z = np.load(units_file)
    uvec, urow = z["vectors"].astype(np.float32), z["rows"]
    qs = [json.loads(line) for line in Path(questions).read_text().splitlines()]
    qs = [q for q in qs if q["kind"] == "in_scope"]
    n = max(s.candidates, 10 * s.max_chunks_per_doc)
    w = s.fusion_dense_weight
    res: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for q in qs:
        query = normalize_query(q["question"])
        qv = emb.embed_query(query)
        rows, sc = reader.lexical(query, n)
        bm25 = dict(zip(rows.tolist(), sc.tolist(), strict=True))
        for v in VARIANTS:
            dense = _dense(v, qv, reader, uvec, urow, n)
            fused = convex({"bm25": bm25, "dense": dense}, {"bm25": 1.0 - w, "dense": w})
            picked = _capped(reader, fused, s.rerank_candidates, s.max_chunks_per_doc)
            chunks = reader.chunks([r for r, _ in picked])
            docs = list(dict.fromkeys(c.doc_id for c in chunks))  # page by page
            rank = page_rank(docs, q["pages"])
            key = any(k in c.text for c in chunks for k in q["keys"])
            res[v].append({"id": q["id"], "rank": rank, "key_in_candidates": key})
    summary = {}
    for v, rs in res.items():
        ranks = [r["rank"] for r in rs]
        summary[v] = {
            "hit@1": sum(r == 1 for r in ranks), "hit@3": sum(r is not None and r <= 3
                                                             for r in ranks),
            "mrr@10": round(sum(1 / r for r in ranks if r is not None and r <= 10)
                            / len(ranks), 3),
            "key_in_candidates": sum(r["key_in_candidates"] for r in rs),
            "questions": len(rs),
        }
        print(v.ljust(8), summary[v])
    if out:
        Path(out).write_text(json.dumps({"summary": summary, "questions": res}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--index", required=True)
    c.add_argument("--out", required=True)
    st = sub.add_parser("study")
    st.add_argument("--index", required=True)
    st.add_argument("--units", required=True)
    st.add_argument("--questions", required=True)
    st.add_argument("--json")
    a = ap.parse_args()
    if a.cmd == "collect":
        collect(a.index, a.out)
    else:
        study(a.index, a.units, a.questions, a.json)


if __name__ == "__main__":
    main()
