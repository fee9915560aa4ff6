"""`mcp-rag eval` end to end on a small generated BEIR dataset."""

from __future__ import annotations

import json

import pytest
from helpers import KeywordEmbedder, KeywordReranker

from mcp_rag.evaluate.beir import DatasetError
from mcp_rag.evaluate.quality import evaluate, render_table

TOPICS = ["apples orchard harvest", "volcano lava eruption", "violin string music",
          "python snake venom", "glacier ice melting", "bitcoin ledger mining"]


@pytest.fixture
def dataset(tmp_path):
    d = tmp_path / "tiny"
    (d / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": t.split()[0], "text": f"All about {t}. " * 3}
            for i, t in enumerate(TOPICS)]
    (d / "corpus.jsonl").write_text("\n".join(json.dumps(x) for x in docs))
    queries = [{"_id": f"q{i}", "text": t.split()[1] + " " + t.split()[2]}
               for i, t in enumerate(TOPICS)]
    (d / "queries.jsonl").write_text("\n".join(json.dumps(x) for x in queries))
    (d / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(TOPICS)))
    )
    return d


def test_eval_scores_every_stage_and_reuses_the_index(dataset, settings):
    emb = KeywordEmbedder()
    out = evaluate(dataset, settings, emb, reranker=KeywordReranker())
    assert out["queries"] == 6 and not out["index"]["reused"]
    assert set(out["stages"]) == {"bm25", "dense", "hybrid", "reranked"}
    for stage, row in out["stages"].items():
        assert row["ndcg@10"] == 1.0 and row["mrr@10"] == 1.0 and row["recall@10"] == 1.0, stage
    assert "recall@100" in out["stages"]["hybrid"] and "recall@100" not in out["stages"]["reranked"]
    assert out["precision_gap"] == 0.0
    assert set(out["latency_ms"]["hybrid"]) == {"p50", "p95"}
    calls = emb.calls
    again = evaluate(dataset, settings, emb, stages=["bm25"])
    assert again["index"]["reused"] and emb.calls == calls  # nothing re-embedded
    table = render_table(out)
    assert "| hybrid | 1.000 | 1.000 | 1.000 | 1.000 |" in table
    assert "precision gap" in table


def test_eval_errors(dataset, settings, tmp_path):
    with pytest.raises(DatasetError, match="unknown stage"):
        evaluate(dataset, settings, KeywordEmbedder(), stages=["magic"])
    with pytest.raises(DatasetError, match="no such qrels file"):
        evaluate(dataset, settings, KeywordEmbedder(), split="dev")
    with pytest.raises(DatasetError, match="no corpus.jsonl"):
        evaluate(tmp_path, settings, KeywordEmbedder())


def test_gate_flags_only_drops_beyond_the_tolerance():
    from mcp_rag.evaluate.quality import compare_to_baseline

    base = {"set": {"hybrid": 0.70, "reranked": 0.74}}
    assert compare_to_baseline({"set": {"hybrid": 0.69, "reranked": 0.80}}, base) == []
    fails = compare_to_baseline({"set": {"hybrid": 0.67, "reranked": 0.74}}, base)
    assert len(fails) == 1 and fails[0].startswith("set/hybrid: nDCG@10 0.6700 is 0.0300 under")
    missing = compare_to_baseline({"set": {"hybrid": 0.70}}, base)
    assert missing == ["set/reranked: not measured (baseline 0.7400)"]
    assert compare_to_baseline({}, base, tolerance=1.0)[0].startswith("set/hybrid: not measured")
