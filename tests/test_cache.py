"""The exact-match query cache: a real diskcache, real pipeline, real MCP client."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner
from helpers import KeywordEmbedder, KeywordReranker
from mcp import Client

from mcp_rag.app.cache import QueryCache, cache_key, normalize_query
from mcp_rag.app.service import RagService
from mcp_rag.cli import cli
from mcp_rag.errors import QueryError
from mcp_rag.index.update import index_paths
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server


@pytest.fixture
def setup(indexed, sample_dir):
    s = indexed.model_copy(update={"rerank": True, "relevance_floor": 0.0})
    emb = KeywordEmbedder()
    rr = KeywordReranker()
    cache = QueryCache(s.cache_dir)
    svc = RagService(Pipeline(s, embedder=emb, reranker=rr), cache=cache)
    return svc, rr, cache, s, emb, sample_dir


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("What does KB-ERR-2847 mean?", "  what does   kb-err-2847 MEAN ", True),
        ("What does KB-ERR-2847 mean?", "what does KB-ERR-2847 mean!!!", True),
        ("ＫＢ－ＥＲＲ－２８４７", "kb-err-2847", True),  # NFKC folds full-width forms
        ("refund\tpolicy\n", "refund policy", True),
        ("KB-ERR-2847", "KB-ERR-2874", False),  # one digit apart: different questions
        ("refund policy", "refund-policy", False),  # inner punctuation is kept
        ("is it refundable", "is it not refundable", False),
    ],
)
def test_normalisation(a, b, same):
    assert (normalize_query(a) == normalize_query(b)) is same


def test_key_covers_tool_params_and_fingerprint():
    fp = {"generation": 1, "reranker": "r"}
    base = cache_key("search", "q", {"k": 5}, fp)
    assert base == cache_key("search", "q", {"k": 5}, dict(fp))
    assert len(base) == 64
    assert base != cache_key("answer", "q", {"k": 5}, fp)
    assert base != cache_key("search", "q", {"k": 6}, fp)
    assert base != cache_key("search", "q", {"k": 5}, {**fp, "generation": 2})
    assert base != cache_key("search", "q", {"k": 5}, {**fp, "reranker": "other"})


def test_hit_after_miss_skips_both_stages(setup):
    svc, rr, cache, *_ = setup
    first = svc.search("What does KB-ERR-2847 mean?")
    assert not first.cached and rr.pairs_seen > 0
    seen = rr.pairs_seen
    again = svc.search("  what does kb-err-2847 mean ")
    assert again.cached and rr.pairs_seen == seen
    assert again.query == "  what does kb-err-2847 mean "
    assert [p.chunk_id for p in again.results] == [p.chunk_id for p in first.results]
    assert set(again.timings_ms) == {"cache"}
    st = cache.stats()
    assert (st["hits"], st["misses"], st["entries"]) == (1, 1, 1)
    assert st["hit_rate"] == 0.5


def test_what_must_not_hit(setup):
    svc, rr, *_ = setup
    svc.search("KB-ERR-2847", k=3)
    for call in (
        lambda: svc.search("KB-ERR-2874", k=3),
        lambda: svc.search("KB-ERR-2847", k=4),
        lambda: svc.search("KB-ERR-2847", k=3, rerank=False),
        lambda: svc.search("KB-ERR-2847", k=3, filters={"doc_id_prefix": "support/"}),
        lambda: svc.answer("KB-ERR-2847", k=3),
    ):
        assert not call().cached
    assert svc.search("KB-ERR-2847", k=3).cached
    # a word written as a name the corpus never mentions is looked for: another entry
    svc.search("how do i reset kubernetes", k=3)
    assert not svc.search("How do I reset Kubernetes", k=3).cached
    assert svc.search("How do I reset Kubernetes?", k=3).cached


def test_no_cache_recomputes(setup):
    svc, rr, *_ = setup
    svc.search("refund annual plan")
    seen = rr.pairs_seen
    out = svc.search("refund annual plan", no_cache=True)
    assert not out.cached and rr.pairs_seen > seen


def test_new_generation_and_new_model_make_old_entries_unreachable(settings, sample_dir):
    s = settings.model_copy(update={"rerank": True, "relevance_floor": 0.0})
    emb = KeywordEmbedder()
    index_paths(s.index, [sample_dir], emb, quiet=True)
    cache = QueryCache(s.cache_dir)
    svc = RagService(Pipeline(s, embedder=emb, reranker=KeywordReranker()), cache=cache)
    svc.search("parking rules")
    assert svc.search("parking rules").cached
    (sample_dir / "parking.md").write_text("# Parking\n\nParking rules: free after 6pm.")
    index_paths(s.index, [sample_dir], emb, quiet=True)
    fresh = svc.search("parking rules")
    assert not fresh.cached and fresh.generation == 2
    assert fresh.results[0].doc_id == "parking.md"
    other = RagService(Pipeline(s, embedder=emb, reranker=KeywordReranker("other")), cache=cache)
    assert not other.search("parking rules").cached


def test_answer_is_cached_too(setup):
    svc, *_ = setup
    a = svc.answer("KB-ERR-2847 storage quota")
    b = svc.answer("kb-err-2847 storage quota?")
    assert not a.cached and b.cached and b.answer == a.answer
    with pytest.raises(QueryError, match="only punctuation"):
        svc.search("?!...")


def test_corrupt_or_unwritable_cache_never_fails_a_query(setup, tmp_path, caplog):
    svc, rr, cache, s, emb, _ = setup
    svc.search("refund")
    cache.close()
    for f in s.cache_dir.glob("cache.db*"):
        f.write_bytes(b"this is not a sqlite database" * 100)
    broken = QueryCache(s.cache_dir)
    p = Pipeline(s, embedder=emb, reranker=rr)
    out = RagService(p, cache=broken).search("refund")
    assert out.results and not out.cached
    assert not broken.enabled and "cache" in broken.error
    assert "queries run uncached" in caplog.text
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    unwritable = QueryCache(blocker)
    assert not unwritable.enabled
    assert RagService(p, cache=unwritable).search("refund").results


WRITER = textwrap.dedent(
    """
    import sys
    from mcp_rag.app.cache import QueryCache
    c = QueryCache(sys.argv[1])
    me, other = sys.argv[2], sys.argv[3]
    for i in range(200):
        c.set(f"{me}-{i}", {"i": i, "by": me})
        got = c.get(f"{other}-{i}")
        assert got is None or got == {"i": i, "by": other}, got
    assert all(c.get(f"{me}-{i}") == {"i": i, "by": me} for i in range(200))
    print("ok")
    """
)


def test_two_processes_write_and_read_at_once(tmp_path):
    d = str(tmp_path / "shared-cache")
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, d, a, b], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for a, b in (("A", "B"), ("B", "A"))
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == "ok", err
    c = QueryCache(tmp_path / "shared-cache")
    assert c.stats()["entries"] == 400
    assert c.get("A-199") == {"i": 199, "by": "A"} and c.get("B-0") == {"i": 0, "by": "B"}


async def test_search_tool_says_cached(setup):
    svc, _, cache, *_ = setup
    async with Client(build_server(svc.pipeline, cache=cache)) as c:
        a = await c.call_tool("search", {"query": "sla response time P1"})
        b = await c.call_tool("search", {"query": "sla response time p1?"})
        n = await c.call_tool("search", {"query": "sla response time p1", "no_cache": True})
    assert a.structured_content["cached"] is False
    assert b.structured_content["cached"] is True
    assert n.structured_content["cached"] is False
    assert b.structured_content["results"] == a.structured_content["results"]


def test_cache_cli_stats_and_clear(setup):
    svc, _, cache, s, *_ = setup
    svc.search("refund")
    svc.search("refund")
    runner = CliRunner()
    r = runner.invoke(cli, ["--index", str(s.index), "cache", "stats", "--json"])
    st = json.loads(r.output)
    assert (st["entries"], st["hits"], st["misses"]) == (1, 1, 1)
    r = runner.invoke(cli, ["--index", str(s.index), "cache", "clear"])
    assert "removed 1 entries" in r.output
    r = runner.invoke(cli, ["--index", str(s.index), "cache", "stats", "--json"])
    st = json.loads(r.output)
    assert (st["entries"], st["hits"], st["misses"]) == (0, 0, 0)


def test_results_of_a_failed_reranker_are_not_cached(indexed):
    from helpers import BrokenReranker

    s = indexed.model_copy(update={"rerank": True})
    emb = KeywordEmbedder()
    cache = QueryCache(s.cache_dir)
    broken = RagService(Pipeline(s, embedder=emb, reranker=BrokenReranker()), cache=cache)
    first = broken.search("refund policy")
    assert not first.reranked and "reranker failed" in first.rerank_reason
    assert not broken.search("refund policy").cached
    assert cache.stats()["entries"] == 0


def test_a_setting_added_to_a_result_group_changes_the_cache_key(indexed):
    """The key holds the ranking groups whole: a new field needs no list to be kept."""
    from typing import ClassVar

    from mcp_rag.settings import Reranking, Retrieval, Settings

    class NewRetrieval(Retrieval):
        shiny_knob: int = 1

    class NewSettings(NewRetrieval, Settings):
        RESULT_GROUPS: ClassVar = (NewRetrieval, Reranking)

    def fingerprint(value: int) -> dict:
        s = NewSettings(index=indexed.index, models=indexed.models, rerank=False,
                        shiny_knob=value)
        return Pipeline(s, embedder=KeywordEmbedder()).fingerprint()

    one, two = fingerprint(1), fingerprint(2)
    assert one["settings"]["NewRetrieval"]["shiny_knob"] == 1
    assert cache_key("search", "q", {}, one) != cache_key("search", "q", {}, two)
    # a result another release computed is not served by this one
    older = {**one, "version": "0.1.0"}
    assert cache_key("search", "q", {}, one) != cache_key("search", "q", {}, older)


def test_a_lookup_runs_no_model_and_finds_what_run_stored(setup, monkeypatch):
    from mcp_rag.app.requests import AnswerRequest, SearchRequest

    svc, rr, *_ = setup
    calls = []
    predict = rr.predict
    monkeypatch.setattr(rr, "predict", lambda pairs: calls.append(1) or predict(pairs))
    for req in (SearchRequest("What does KB-ERR-2847 mean?", k=3),
                AnswerRequest("What does KB-ERR-2847 mean?")):
        before = len(calls)
        assert svc.lookup(req) is None and len(calls) == before  # a miss; no model ran
        fresh = svc.run(req)
        hit = svc.lookup(req)
        assert len(calls) > before and hit is not None and hit.cached and not fresh.cached
        assert hit.timings_ms.keys() == {"cache"}
