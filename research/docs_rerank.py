"""Does the cross-encoder earn its cost on documentation? `search` hit@1 / hit@3 / MRR@10
over the in-scope questions of the docs benchmark, first stage against reranked at several
blends and depths, with the reranking time each costs.

    python research/docs_rerank.py --index /tmp/dx/sqlite --index /tmp/dx/postgresql \\
        benchmarks/data/docs/{sqlite,postgresql}.jsonl --out research/data/docs_rerank.json

One pipeline per index (models loaded once); every configuration reads the same index,
the query normalised as the tools normalise it (casefolded, no end punctuation),
cache off; rerank milliseconds are the pipeline's own timing (median over the questions).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.docs import load_questions, page_rank
from mcp_rag.app.cache import normalize_query
from mcp_rag.evaluate.latency import cpu
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.retrieve.rerank import retrievers_agree
from mcp_rag.settings import Settings

# name -> settings overrides (None: first stage only)
CONFIGS: dict[str, dict[str, Any] | None] = {
    "first stage": None,
    "scores 0.3 @10 (default)": {},
    "scores 0.5 @10": {"rerank_weight": 0.5},
    "scores 1.0 @10": {"rerank_weight": 1.0},
    "rrf @10": {"rerank_blend": "rrf"},
    "scores 0.3 @20": {"rerank_candidates": 20},
    "scores 0.5 @20": {"rerank_candidates": 20, "rerank_weight": 0.5},
}


def sweep(index: Path, questions: list[dict[str, Any]]) -> dict[str, Any]:
    base = Settings.load(index=str(index), cache_enabled=False)
    p0 = Pipeline.from_settings(base)
    ins = [q for q in questions if q["kind"] == "in_scope"]
    out: dict[str, Any] = {}
    for name, over in CONFIGS.items():
        s = base.model_copy(update=over or {})
        p = Pipeline.from_settings(s, embedder=p0.embedder, reranker=p0.reranker)
        ranks, ms, agree = [], [], []
        for q in ins:
            r = p.search(normalize_query(q["question"]), k=10, rerank=over is not None)
            ranks.append(page_rank([h.chunk.doc_id for h in r.hits], q["pages"]))
            ms.append(r.timings_ms.get("rerank", 0.0))
            if over is None:  # both retrievers put the same chunk first
                agree.append(retrievers_agree(r.hits))
        if agree:
            out["agree"] = agree
        out[name] = {
            "hit@1": sum(r == 1 for r in ranks), "hit@3": sum(r is not None and r <= 3
                                                          for r in ranks),
            "mrr@10": round(statistics.mean(1 / r if r else 0 for r in ranks), 3),
            "rerank_ms_p50": round(statistics.median(ms), 1), "ranks": ranks,
        }
        print(index.name, name, {k: v for k, v in out[name].items() if k != "ranks"},
              file=sys.stderr, flush=True)
    return {"questions": len(ins), "configs": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, action="append", required=True)
    ap.add_argument("questions", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    if len(a.index) != len(a.questions):
        ap.error("one --index per question file")
    report = {"cpu": cpu(), "sets": {q.stem: sweep(i, load_questions(q))
                                     for i, q in zip(a.index, a.questions, strict=True)}}
    if a.out:
        a.out.write_text(json.dumps(report, indent=1))
    for name in CONFIGS:
        row = [report["sets"][s]["configs"][name] for s in report["sets"]]
        print(f"{name:28s}", " | ".join(f"{r['hit@1']:2d} {r['hit@3']:2d} {r['mrr@10']:.3f} "
                                        f"{r['rerank_ms_p50']:6.1f}ms" for r in row))
    # Where BM25 and dense agree on the first chunk, does reranking change hit@1?
    for name in CONFIGS:
        cells = []
        for st in report["sets"].values():
            ranks, agree = st["configs"][name]["ranks"], st["configs"]["agree"]
            for flag in (True, False):
                xs = [r for r, a in zip(ranks, agree, strict=True) if a is flag]
                cells.append(f"{sum(r == 1 for r in xs)}/{len(xs)}")
        print(f"{name:28s} hit@1 agree / disagree:", " | ".join(cells))


if __name__ == "__main__":
    main()
