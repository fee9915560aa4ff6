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


def test_a_query_over_the_tool_limit_is_cut_with_a_warning_not_an_abort(dataset, settings,
                                                                          caplog):
    q = dataset / "queries.jsonl"
    long = {"_id": "q0", "text": "apples orchard " * 200}  # 3,000 characters
    q.write_text("\n".join([json.dumps(long)] + q.read_text().splitlines()[1:]))
    out = evaluate(dataset, settings, KeywordEmbedder(), stages=["bm25", "hybrid"])
    assert out["queries"] == 6 and out["truncated_queries"] == ["q0"]
    assert "query q0 has 3000 characters, over the tools' limit of 2000" in caplog.text
    assert out["stages"]["bm25"]["ndcg@10"] == 1.0
    assert "1 queries over 2000 characters were cut to the limit: q0" in render_table(out)


def test_each_stage_is_compared_with_the_best_other_one(dataset, settings):
    out = evaluate(dataset, settings, KeywordEmbedder(), stages=["bm25", "hybrid"])
    assert set(out["per_query"]["bm25"]) == {f"q{i}" for i in range(6)}
    c = out["comparison"]["hybrid"]
    assert c["vs"] == "bm25" and c["diff"] == 0.0 and c["ci95"] == [0.0, 0.0]
    assert (c["wins"], c["losses"], c["sign_p"]) == (0, 0, 1.0)
    assert "| +0.000 vs bm25 [+0.000, +0.000] | 1 (0/0) |" in render_table(out)


def test_eval_cli_writes_per_query_lines(runner, dataset, tmp_path):
    from mcp_rag.cli import cli

    per_query = tmp_path / "pq.jsonl"
    r = runner.invoke(cli, ["--index", str(tmp_path / "idx"), "eval", str(dataset), "--stages",
                            "bm25,dense", "--per-query", str(per_query)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in per_query.read_text().splitlines()]
    assert len(rows) == 12 and rows[0] == {"query_id": "q0", "stage": "bm25", "ndcg@10": 1.0,
                                           "recall@100": 1.0}


def test_paired_bootstrap_and_sign_test_by_hand():
    from mcp_rag.evaluate.metrics import paired_bootstrap_ci, sign_test

    a, b = [1.0] * 20 + [0.0] * 5, [0.0] * 20 + [0.0] * 5
    diff, lo, hi = paired_bootstrap_ci(a, b)
    assert diff == 0.8 and 0.6 <= lo < diff < hi <= 0.96
    assert paired_bootstrap_ci(a, b) == (diff, lo, hi)  # seeded
    wins, losses, p = sign_test(a, b)
    assert (wins, losses) == (20, 0) and p == pytest.approx(2 / 2**20, abs=1e-4)
    assert sign_test([0.5, 0.2], [0.2, 0.5]) == (1, 1, 1.0)
