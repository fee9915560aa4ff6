"""`mcp-rag bench`: every stage timed on a real index, quality when judged, the plot."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import KeywordEmbedder, KeywordReranker

from mcp_rag.app.cache import QueryCache
from mcp_rag.app.service import RagService
from mcp_rag.cli import cli
from mcp_rag.errors import QueryError
from mcp_rag.evaluate.latency import read_queries, render, run_bench, sample_queries
from mcp_rag.retrieve.pipeline import Pipeline


@pytest.fixture
def svc(indexed):
    s = indexed.model_copy(update={"rerank": True, "relevance_floor": -3.0})
    emb = KeywordEmbedder()
    return RagService(Pipeline(s, embedder=emb, reranker=KeywordReranker()),
                      cache=QueryCache(s.cache_dir))


def test_every_stage_is_timed_and_judged_queries_are_scored(svc):
    qs = ["KB-ERR-2847 storage quota", "refund annual plan prorated", "zebra stripes savanna"]
    judged = [{"support/error-codes.md": 1}, {"policies/refund-policy.md": 1}, None]
    done = []
    r = run_bench(svc, qs, judged, progress=lambda i, n: done.append((i, n)))
    assert done[-1] == (3, 3) and r["queries"] == 3
    lat = r["latency_ms"]
    for stage in ("embed_query", "bm25", "dense", "fusion", "fetch", "rerank", "cache_hit",
                  "search:bm25", "search:dense", "search:hybrid", "search", "answer"):
        assert lat[stage]["n"] >= 2 and 0 <= lat[stage]["p50"] <= lat[stage]["p95"], stage
    assert lat["search"]["n"] == 3 and lat["sentences"]["n"] == 2  # the zebra is refused
    assert r["queries_per_s"]["search"] > 0 and r["peak_rss_mb"] > 10
    nd = r["ndcg@10"]
    assert set(nd) == {"bm25", "dense", "hybrid", "reranked"}
    assert all(0.5 <= v <= 1.0 for v in nd.values()), nd  # both judged queries find their doc
    one = run_bench(svc, qs[:1], judged[:1], answer=False)
    assert one["ndcg@10"]["reranked"] == pytest.approx(1.0) and "answer" not in one["latency_ms"]
    assert "| rerank |" in render(r) and "nDCG@10: bm25 " in render(r)


def test_queries_come_from_a_file_or_from_the_index(svc, tmp_path):
    txt = tmp_path / "q.txt"
    txt.write_text("first question\n\n second one \n")
    assert read_queries(txt) == ["first question", "second one"]
    jl = tmp_path / "q.jsonl"
    jl.write_text('{"_id": "1", "text": "alpha"}\n{"query": "beta"}\n')
    assert read_queries(jl) == ["alpha", "beta"]
    jl.write_text('{"_id": "1"}\n')
    with pytest.raises(QueryError, match="q.jsonl:1"):
        read_queries(jl)
    drawn = sample_queries(svc, 4)
    assert len(drawn) == 4 and drawn == sample_queries(svc, 4)  # seeded
    assert all(5 <= len(q.split()) <= 40 for q in drawn)


def test_bench_command_writes_json_and_plot(svc, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import mcp_rag.cli as cli_mod

    monkeypatch.setattr(cli_mod, "_service", lambda s: svc)
    q = tmp_path / "q.txt"
    q.write_text("KB-ERR-2847 storage quota\nrefund annual plan\n")
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    res = CliRunner().invoke(cli, ["bench", "--queries", str(q), "--json", str(out),
                                   "--plot", str(png), "--no-answer"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["queries"] == 2 and "answer" not in data["latency_ms"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_refuses_a_dataset_the_index_does_not_hold(svc, tmp_path, monkeypatch):
    import mcp_rag.cli as cli_mod

    monkeypatch.setattr(cli_mod, "_service", lambda s: svc)
    ds = tmp_path / "ds"
    (ds / "qrels").mkdir(parents=True)
    (ds / "queries.jsonl").write_text('{"_id": "q1", "text": "what is x"}\n')
    (ds / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tdoc-404\t1\n")
    res = CliRunner().invoke(cli, ["bench", "--dataset", str(ds)])
    assert res.exit_code != 0 and "holds none of ds's judged documents" in res.output
