"""Deleted evidence: is a question still answered once the documents that answer it are gone?

    python research/deleted_evidence.py --index /tmp/sf --dataset ../shared/datasets/scifact \\
        --work /tmp/deleted [--split test] [--json out.json]

Copies a BEIR index (built by ``mcp-rag eval``), removes the judged-relevant documents of a
random half of the split's queries (seed 0) with ``remove_docs`` (no model loaded), then
asks every query through ``RagService.answer`` at the default settings. The queries whose
evidence is gone are out of scope in the hardest way: same field, same register, often the
same words. Prints how often each half is answered, and, for the answered ones without
their evidence, what they were answered from.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
from pathlib import Path

from mcp_rag.app.service import RagService
from mcp_rag.evaluate.beir import load_qrels, load_queries
from mcp_rag.index.store import IndexReader
from mcp_rag.index.update import remove_docs
from mcp_rag.retrieve.pipeline import MAX_QUERY_CHARS, Pipeline
from mcp_rag.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True, help="a BEIR index of the dataset")
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--work", type=Path, required=True, help="where the copy is made")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    texts, qrels = load_queries(args.dataset), load_qrels(args.dataset, args.split)
    qids = sorted(q for q in qrels if q in texts)
    random.Random(0).shuffle(qids)
    gone_q = set(qids[: len(qids) // 2])
    judged = {q: {d for d, g in qrels[q].items() if g > 0} for q in qids}
    removed = set().union(*(judged[q] for q in gone_q))
    index = args.work / "index"
    if not index.exists():
        shutil.copytree(args.index, index)
        present = set(IndexReader(index).doc_ids)
        remove_docs(index, sorted(removed & present))
    left = set(IndexReader(index).doc_ids)
    svc = RagService(Pipeline.from_settings(Settings(index=index)))

    rows = []
    for q in qids:
        out = svc.answer(texts[q][:MAX_QUERY_CHARS], no_cache=True)
        cited = [c.doc_id for c in out.citations]
        rows.append({
            "qid": q, "question": texts[q], "evidence": "removed" if q in gone_q else (
                "kept" if judged[q] <= left else "partly removed"),
            "answered": out.answered, "confidence": out.confidence,
            "score": out.answerability.score if out.answerability else None,
            "cited": cited, "cites_judged": bool(set(cited) & judged[q]),
            "quote": out.citations[0].quote[:160] if out.citations else None,
        })

    print(f"{len(removed)} judged documents removed for {len(gone_q)} of {len(qids)} "
          f"{args.split} queries\n")
    print("| evidence | queries | answered | median confidence when answered |")
    print("|---|---|---|---|")
    for kind in ("kept", "partly removed", "removed"):
        rs = [r for r in rows if r["evidence"] == kind]
        if not rs:
            continue
        ans = [r for r in rs if r["answered"]]
        conf = statistics.median(r["confidence"] for r in ans) if ans else float("nan")
        print(f"| {kind} | {len(rs)} | {len(ans) / len(rs):.3f} | {conf:.2f} |")
    still = [r for r in rows if r["evidence"] == "removed" and r["answered"]]
    print(f"\nAnswered without their evidence ({len(still)}), highest confidence first:")
    for r in sorted(still, key=lambda r: -(r["confidence"] or 0))[:10]:
        print(f"- {r['question'][:90]!r} -> {r['cited'][:1]} (confidence "
              f"{r['confidence']:.2f}): {r['quote']!r}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
