"""The golden sets of the CI regression gate: a fixed SciFact subset and the sample KB.

``run_golden`` materialises each set as a BEIR-layout folder, evaluates every stage and
returns ``{set: {stage: ndcg@10}}``; ``compare_to_baseline`` (in ``evaluation``) decides.
The files live in ``tests/golden/``; the baseline is ``tests/golden/baseline.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from mcp_rag.evaluate.beir import load_qrels, load_queries
from mcp_rag.evaluate.quality import STAGES, evaluate
from mcp_rag.settings import Settings
from mcp_rag.types import Embedder, Reranker


def scifact_subset(golden: Path, scifact: Path, out: Path) -> Path:
    """Write the fixed SciFact subset (queries, their qrels, judged docs + distractors)."""
    spec = json.loads((golden / "scifact_subset.json").read_text())
    docs = set(spec["doc_ids"])
    queries, qrels = load_queries(scifact), load_qrels(scifact, spec["split"])
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w") as f:
        for line in (scifact / "corpus.jsonl").read_text().splitlines():
            if json.loads(line)["_id"] in docs:
                f.write(line + "\n")
    (out / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": queries[q]}) + "\n" for q in spec["query_ids"])
    )
    (out / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\t{d}\t{r}\n" for q in spec["query_ids"] for d, r in qrels[q].items())
    )
    return out


def sample_set(golden: Path, out: Path) -> Path:
    """The sample KB's own questions, each with the document that answers it."""
    rows = [json.loads(x) for x in (golden / "sample_questions.jsonl").read_text().splitlines()]
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    (out / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"s{i}", "text": r["question"]}) + "\n"
                for i, r in enumerate(rows))
    )
    (out / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"s{i}\t{r['expected']}\t1\n" for i, r in enumerate(rows))
    )
    return out


def run_golden(
    golden: Path,
    scifact: Path,
    sample: Path,
    work: Path,
    settings: Settings,
    embedder: Embedder,
    reranker: Reranker | None = None,
) -> dict[str, dict[str, float]]:
    """nDCG@10 of every stage on both golden sets."""
    sets = {
        "scifact-100": (scifact_subset(golden, scifact, work / "scifact-100"), None),
        "sample": (sample_set(golden, work / "sample"), sample),
    }
    out: dict[str, dict[str, float]] = {}
    for name, (dataset, corpus) in sets.items():
        res = evaluate(dataset, settings, embedder, stages=STAGES, corpus=corpus,
                       index_base=work / "indexes", reranker=reranker)
        out[name] = {stage: row["ndcg@10"] for stage, row in res["stages"].items()}
    return out
