"""The CI regression gate: the golden sets must not lose more than 0.02 nDCG@10."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import SAMPLE

from mcp_rag.evaluate.gate import run_golden
from mcp_rag.evaluate.quality import compare_to_baseline
from mcp_rag.models.embedding import load_embedder
from mcp_rag.models.pack import resolve
from mcp_rag.settings import Settings

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.slow
def test_golden_sets_do_not_regress(tmp_path, models_dir):
    s = Settings(index=tmp_path / "unused", models=models_dir)
    emb = load_embedder(resolve(s.embedder, models_dir, "embedder"))
    results = run_golden(GOLDEN, SAMPLE, tmp_path, s, emb)
    baseline = json.loads((GOLDEN / "baseline.json").read_text())
    failures = compare_to_baseline(results, baseline)
    assert not failures, "\n".join(failures) + f"\nmeasured: {json.dumps(results)}"


def test_the_golden_sets_are_committed_in_beir_layout():
    from mcp_rag.evaluate.beir import load_qrels, load_queries
    from mcp_rag.evaluate.gate import SUBSETS

    for name in SUBSETS:
        d = GOLDEN / name
        spec = json.loads((GOLDEN / f"{name}.json").read_text())
        queries, qrels = load_queries(d), load_qrels(d, "test")
        assert sorted(queries) == sorted(spec["query_ids"]) == sorted(qrels)
        ids = {json.loads(x)["_id"] for x in (d / "corpus.jsonl").read_text().splitlines()}
        assert ids == set(spec["doc_ids"]) and all(doc in ids for q in qrels for doc in qrels[q])
