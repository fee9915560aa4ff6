"""The golden sets of the CI regression gate: fixed SciFact and NFCorpus subsets, and the
sample knowledge base's own questions.

The subsets are committed in BEIR layout under ``tests/golden/<name>/`` (the texts of the
judged documents and distractors, exactly as in the source datasets; licences in
``tests/golden/README.md``), so the gate runs wherever the repository is cloned.
``benchmarks/gate.py --write-sets`` rewrites them from ``../shared/datasets`` and their
specs (``<name>.json``). ``run_golden`` evaluates every stage on each set and returns
``{set: {stage: ndcg@10}}``; ``compare_to_baseline`` (in ``quality``) decides.
"""

from __future__ import annotations

import json
from pathlib import Path

from mcp_rag.evaluate.beir import load_qrels, load_queries
from mcp_rag.evaluate.quality import STAGES, evaluate
from mcp_rag.settings import Settings
from mcp_rag.types import Embedder, Reranker


def write_subset(spec: dict, source: Path, out: Path) -> Path:
    """Materialise a golden subset of a BEIR dataset: its queries, their qrels, the judged
    documents and the distractors the spec names, with the source's exact lines."""
    docs = set(spec["doc_ids"])
    queries, qrels = load_queries(source), load_qrels(source, spec["split"])
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for line in (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            if json.loads(line)["_id"] in docs:
                f.write(line + "\n")
    (out / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": queries[q]}) + "\n" for q in spec["query_ids"]),
        encoding="utf-8",
    )
    (out / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\t{d}\t{r}\n" for q in spec["query_ids"] for d, r in qrels[q].items())
    )
    return out


def pick_subset(source: Path, split: str, n_queries: int, n_distractors: int, seed: int,
                max_judged: int | None = None) -> dict:
    """A reproducible subset spec: ``n_queries`` judged queries (with at most ``max_judged``
    judgments each) and ``n_distractors`` unjudged documents, drawn with ``seed``."""
    import random

    queries, qrels = load_queries(source), load_qrels(source, split)
    pool = sorted(q for q in qrels if q in queries
                  and (max_judged is None or len(qrels[q]) <= max_judged))
    rng = random.Random(seed)
    picked = sorted(rng.sample(pool, n_queries))
    judged = set().union(*(qrels[q] for q in picked))
    all_ids = [json.loads(x)["_id"] for x in
               (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    others = sorted(set(all_ids) - judged)
    distractors = rng.sample(others, n_distractors)
    return {"split": split, "seed": seed, "query_ids": picked,
            "doc_ids": sorted(judged | set(distractors))}


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


SUBSETS = ("scifact-100", "nfcorpus-40")


def run_golden(
    golden: Path,
    sample: Path,
    work: Path,
    settings: Settings,
    embedder: Embedder,
    reranker: Reranker | None = None,
) -> dict[str, dict[str, float]]:
    """nDCG@10 of every stage on every golden set."""
    sets: dict[str, tuple[Path, Path | None]] = {
        name: (golden / name, None) for name in SUBSETS
    }
    sets["sample"] = (sample_set(golden, work / "sample"), sample)
    out: dict[str, dict[str, float]] = {}
    for name, (dataset, corpus) in sets.items():
        res = evaluate(dataset, settings, embedder, stages=STAGES, corpus=corpus,
                       index_base=work / "indexes", reranker=reranker)
        out[name] = {stage: row["ndcg@10"] for stage, row in res["stages"].items()}
    return out
