"""The index on Milvus, against a real `milvus-lite server`: the same chunks, rankings,
citations and tools as the embedded index; generations switched atomically; a dead or
wrong server is a clear error, never a dead MCP server."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from helpers import SAMPLE, KeywordEmbedder, KeywordReranker
from mcp import Client

from mcp_rag.errors import QueryError
from mcp_rag.index import milvus as milvus_mod
from mcp_rag.index.backend import backend_for
from mcp_rag.index.store import IndexReader
from mcp_rag.index.update import index_paths, remove_docs
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server
from mcp_rag.settings import Settings

# (Queries the keyword embedder separates: it ties every chunk sharing no word with one.)
QUERIES = ["KB-ERR-2847 storage quota", "P1 incident more than 500 users",
           "refund within 30 days"]


@pytest.fixture
def kb(tmp_path) -> Path:
    shutil.copytree(SAMPLE, tmp_path / "kb")
    return tmp_path / "kb"


def settings_for(tmp_path: Path, uri: str | None, **kw) -> Settings:
    name = f"idx_{uuid.uuid4().hex[:10]}"  # one server for the run: an index name per test
    backend = {"backend": "milvus", "milvus_uri": uri} if uri else {}
    return Settings(index=tmp_path / name, models=tmp_path / "models", rerank=False,
                    **backend, **kw)


@pytest.fixture
def both(tmp_path, kb, milvus_uri):
    """The sample indexed into each backend: {name: settings}."""
    out = {}
    for name, uri in (("embedded", None), ("milvus", milvus_uri)):
        s = settings_for(tmp_path, uri)
        index_paths(s.index, [kb], KeywordEmbedder(), quiet=True, backend=backend_for(s))
        out[name] = s
    return out


def test_both_backends_hold_the_same_chunks_and_vectors(both):
    e = IndexReader(both["embedded"].index)
    m = backend_for(both["milvus"]).open()
    try:
        rows = list(range(e.n_chunks))
        assert m.n_chunks == e.n_chunks and m.generation == 1
        assert [c.chunk_id for c in m.chunks(rows)] == [c.chunk_id for c in e.chunks(rows)]
        assert m.chunks(rows) == e.chunks(rows)
        np.testing.assert_allclose(m.vectors(rows), e.vectors(range(e.n_embedded)), atol=1e-6)
        assert m.document("support/error-codes.md") == e.document("support/error-codes.md")
        assert m.collections() == e.collections()
        assert m.df("kb-err-2847") == e.df("kb-err-2847") > 0 and m.df("zebra") == 0
        # whether a phrase is written anywhere: known here, not on Milvus (then partial)
        words = re.compile(r"error(?![^\W_])")
        assert e.writes(["error"], words) is True and m.writes(["error"], words) is None
    finally:
        e.close()


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_both_backends_rank_alike(both, mode):
    emb = KeywordEmbedder()
    # in the order of the scores (page by page, ties near the cut would move pages)
    pe, pm = (Pipeline(both[b].model_copy(update={"page_first": False}), embedder=emb)
              for b in ("embedded", "milvus"))
    for q in QUERIES:
        a = pe.search(q, k=5, mode=mode).hits
        b = pm.search(q, k=5, mode=mode).hits
        if mode == "dense":  # (BM25's idf differs a little: Lucene's, not Okapi's)
            assert [h.score for h in b] == pytest.approx([h.score for h in a], abs=1e-5)
        # The same order; the keyword embedder ties many chunks near the cut, and two
        # engines may keep either of a tie, so the top 3 (and dense's untied) must match.
        last = a[-1].dense_score if mode == "dense" else None
        sure = [h.chunk.chunk_id for h in a if last is None or h.dense_score > last + 1e-5]
        sure = sure if mode == "dense" else sure[:3]
        assert [h.chunk.chunk_id for h in b][:len(sure)] == sure, q


def test_non_ascii_and_quotes_survive_the_expressions(tmp_path, milvus_uri):
    s = settings_for(tmp_path, milvus_uri)
    docs = tmp_path / "docs"
    (docs / "été").mkdir(parents=True)
    (docs / "été" / 'café "noir".md').write_text("# Café\n\nNaïve αβ8 résumé of crème brûlée.\n")
    index_paths(s.index, [docs], KeywordEmbedder(), quiet=True, backend=backend_for(s))
    p = Pipeline(s, embedder=KeywordEmbedder())
    hits = p.search("naïve crème brûlée αβ8", k=3, filters={"doc_id_prefix": "été/"}).hits
    assert [h.chunk.doc_id for h in hits] == ['été/café "noir".md']
    r = backend_for(s).open()
    assert r.document('été/café "noir".md').text.startswith("Café")
    assert r.df("αβ8") == 1 or r.dfs(["naïv", "αβ8"])["naïv"] == 1


def test_filters_are_milvus_expressions(both):
    pm = Pipeline(both["milvus"], embedder=KeywordEmbedder())
    hits = pm.search("refund policy quota", k=10, filters={"doc_id_prefix": "support/"}).hits
    assert hits and all(h.chunk.doc_id.startswith("support/") for h in hits)
    hits = pm.search("refund policy quota", k=10, filters={"source": "*/policies/*.md"}).hits
    assert hits and all("/policies/" in h.chunk.source for h in hits)
    with pytest.raises(QueryError, match="no collection 'x'"):
        pm.search("quota", filters={"collection": "x"})


@pytest.mark.parametrize("backend", ["embedded", "milvus"])
async def test_every_tool_and_resource_works_on_either_backend(both, backend, kb):
    s = both[backend]
    server = build_server(Pipeline(s, embedder=KeywordEmbedder()), allow_roots=[kb.parent])
    async with Client(server) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        doc = await c.call_tool("get_document", {"doc_id": "support/error-codes.md",
                                                 "start": 0, "end": 40})
        listed = await c.call_tool("list_collections", {})
        resources = [str(r.uri) for r in (await c.list_resources()).resources]
        filtered = await c.call_tool("search", {"query": "refund quota", "k": 5,
                                                "rerank": False,
                                                "filters": {"doc_id_prefix": "policies/"}})
        (kb / "new.md").write_text("# New\n\nNumbats eat termites.\n")
        added = await c.call_tool("index_paths", {"paths": [str(kb)], "collection": "kb"})
        found = await c.call_tool("search", {"query": "numbats termites", "k": 1,
                                             "rerank": False, "filters": {"collection": "kb"}})
        (kb / "new.md").unlink()
        synced = await c.call_tool("sync", {})
    assert {"search", "answer", "get_document", "get_chunk", "sync"} <= names
    assert len(doc.structured_content["text"]) == 40
    assert listed.structured_content["collections"][0]["documents"] == 6
    assert "rag://documents/support/error-codes.md" in resources
    assert all(h["doc_id"].startswith("policies/") for h in
               filtered.structured_content["results"])
    assert added.structured_content["added"] == 1 and added.structured_content["moved"] == 6
    assert found.structured_content["results"][0]["doc_id"] == "new.md"
    assert synced.structured_content["removed"] == 1


@pytest.mark.parametrize("backend", ["embedded", "milvus"])
async def test_the_tools_cite_the_same_spans_on_either_backend(both, backend):
    s = both[backend].model_copy(update={"rerank": True, "relevance_floor": 0.0})
    server = build_server(Pipeline(s, embedder=KeywordEmbedder(), reranker=KeywordReranker()))
    async with Client(server) as c:
        r = await c.call_tool("search", {"query": "KB-ERR-2847 storage quota", "k": 2})
        a = await c.call_tool("answer", {"question": "KB-ERR-2847 storage quota exceeded"})
        hit = r.structured_content["results"][0]
        doc = (await c.read_resource(hit["document_uri"])).contents[0].text
        near = await c.call_tool("get_chunk", {"chunk_id": hit["chunk_id"], "neighbors": 1})
        status = await c.call_tool("index_status", {})
    assert hit["doc_id"] == "support/error-codes.md"
    assert doc[hit["span"][0]:hit["span"][1]] == hit["text"]
    cite = a.structured_content["citations"][0]
    assert doc[cite["span"][0]:cite["span"][1]] == cite["quote"]
    assert near.structured_content["chunk"]["text"] == hit["text"]
    assert status.structured_content["docs"] == 6


def test_an_update_embeds_only_what_changed_and_switches_atomically(tmp_path, kb, milvus_uri):
    s = settings_for(tmp_path, milvus_uri)
    b = backend_for(s)
    emb = KeywordEmbedder()
    index_paths(s.index, [kb], emb, quiet=True, backend=b)
    before = b.open()
    (kb / "new.md").write_text("# New\n\nQuokkas nest under saltbush.\n")
    calls = emb.calls
    rep = index_paths(s.index, [kb], emb, quiet=True, backend=b)
    assert (rep.added, rep.generation, rep.embedded_chunks) == (1, 2, 1)
    assert emb.calls - calls == 1
    # the reader opened before still reads generation 1; a new one sees generation 2
    assert before.generation == 1 and not before.is_current()
    assert before.document("new.md") is None and before.chunks([0])
    after = b.open()
    assert after.generation == 2 and after.document("new.md") is not None
    remove_docs(s.index, ["new.md"], backend=b)
    index_paths(s.index, [kb], emb, quiet=True, backend=b)  # generation 4
    names = b.client.list_collections()
    assert not any(f"{b.ns}_g000001_" in n for n in names)  # older than the previous: gone
    index_paths(s.index, [kb], emb, quiet=True, backend=b, rebuild=True)  # generation 5
    gens = {n.split("_g")[-1][:6] for n in b.client.list_collections() if b.ns in n}
    assert gens == {"000004", "000005"}


def test_a_writer_that_dies_leaves_the_live_generation_serving(tmp_path, kb, milvus_uri,
                                                               monkeypatch):
    s = settings_for(tmp_path, milvus_uri)
    b = backend_for(s)
    index_paths(s.index, [kb], KeywordEmbedder(), quiet=True, backend=b)
    real = milvus_mod._insert

    def dies_on_docs(client, name, rows):
        if name.endswith("_docs"):
            raise ConnectionError("killed mid-write")
        real(client, name, rows)

    monkeypatch.setattr(milvus_mod, "_insert", dies_on_docs)
    (kb / "new.md").write_text("# New\n\nWombats.\n")
    with pytest.raises(ConnectionError):
        index_paths(s.index, [kb], KeywordEmbedder(), quiet=True, backend=b)
    monkeypatch.setattr(milvus_mod, "_insert", real)
    live = b.open()
    assert live.generation == 1 and live.document("new.md") is None
    assert not any("_g000002_" in n for n in b.client.list_collections() if b.ns in n)
    rep = index_paths(s.index, [kb], KeywordEmbedder(), quiet=True, backend=b)
    assert rep.generation == 2 and b.open().document("new.md") is not None


async def test_a_server_that_goes_away_is_a_tool_error_not_a_dead_server(tmp_path, kb):
    from conftest import milvus_lite

    server = milvus_lite(tmp_path / "own")
    s = settings_for(tmp_path, server.uri)
    index_paths(s.index, [kb], KeywordEmbedder(), quiet=True, backend=backend_for(s))
    mcp = build_server(Pipeline(s, embedder=KeywordEmbedder()))
    try:
        async with Client(mcp) as c:
            ok = await c.call_tool("search", {"query": "quota", "k": 1, "rerank": False})
            assert not ok.is_error
            server.stop()
            gone = await c.call_tool("search", {"query": "refund", "k": 1, "rerank": False})
            assert gone.is_error and "MCP_RAG_MILVUS_URI" in gone.content[0].text
            alive = await c.call_tool("rerank", {"query": "q", "passages": ["a"]})
            assert alive is not None  # the MCP server still answers
    finally:
        server.stop()


def test_an_index_survives_a_restart_of_the_server(tmp_path, kb):
    from conftest import milvus_lite

    first = milvus_lite(tmp_path / "data")
    s = settings_for(tmp_path, first.uri)
    try:
        index_paths(s.index, [kb], KeywordEmbedder(), quiet=True, backend=backend_for(s))
    finally:
        first.stop()
    again = milvus_lite(tmp_path / "data")  # the same data, a new process (and port)
    try:
        s = s.model_copy(update={"milvus_uri": again.uri})
        hits = Pipeline(s, embedder=KeywordEmbedder()).search("KB-ERR-2847 storage", k=1).hits
        assert hits[0].chunk.doc_id == "support/error-codes.md"
    finally:
        again.stop()


def test_a_wrong_address_names_the_setting(tmp_path, milvus_uri):
    s = settings_for(tmp_path, "http://127.0.0.1:9")
    with pytest.raises(QueryError, match="MCP_RAG_MILVUS_URI"):
        backend_for(s).open()
    with pytest.raises(QueryError, match="MCP_RAG_MILVUS_URI"):
        backend_for(Settings(index=tmp_path / "x", models=tmp_path, backend="milvus"))


def test_without_the_extra_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_pymilvus(name, *a, **k):
        if name.startswith("pymilvus"):
            raise ImportError("No module named 'pymilvus'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pymilvus)
    with pytest.raises(QueryError, match=r"pip install 'mcp-rag-server\[milvus\]'"):
        milvus_mod.connect("http://127.0.0.1:1")


@pytest.mark.slow
async def test_index_then_serve_on_milvus_as_a_user_would(tmp_path, milvus_uri, models_dir):
    """`MCP_RAG_BACKEND=milvus mcp-rag index`, then `mcp-rag serve` over stdio, real models."""
    import os
    import subprocess
    import sys

    from mcp import StdioServerParameters

    env = {**os.environ, "MCP_RAG_BACKEND": "milvus", "MCP_RAG_MILVUS_URI": milvus_uri,
           "MCP_RAG_MODELS": str(models_dir),
           "MCP_RAG_INDEX": str(tmp_path / f"served_{uuid.uuid4().hex[:8]}")}
    subprocess.run([sys.executable, "-m", "mcp_rag", "index", str(SAMPLE), "-q"], env=env,
                   check=True, capture_output=True)
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_rag", "serve"],
                                   env=env)
    async with Client(params) as c:
        a = await c.call_tool("answer", {"question": "What does error KB-ERR-2847 mean?"})
        out = a.structured_content
        doc = (await c.read_resource(out["citations"][0]["document_uri"])).contents[0].text
        no = await c.call_tool("answer", {"question": "Who won the 2014 FIFA World Cup?"})
    assert out["answered"] and out["citations"][0]["doc_id"] == "support/error-codes.md"
    for cite in out["citations"]:
        assert doc[cite["span"][0]:cite["span"][1]] == cite["quote"]
    assert no.structured_content["answered"] is False
