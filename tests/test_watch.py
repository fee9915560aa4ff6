"""Always fresh: the watcher re-indexes edits, additions and deletions within seconds, the
server started with --watch serves and announces them, and the sync tool catches up on
demand, with progress."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
import watchfiles
from helpers import SAMPLE, KeywordEmbedder
from mcp import Client

from mcp_rag.app.schemas import document_uri
from mcp_rag.index.store import IndexReader, gen_name, read_current
from mcp_rag.index.update import index_paths
from mcp_rag.index.watch import WatchSpec, relevant, watch
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server


def docs_of(index: Path) -> dict[str, str]:
    try:
        r = IndexReader(index)
    except Exception:
        return {}
    try:
        return {d: r.document(d).text for d in r.doc_ids}
    finally:
        r.close()


def until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time allowed")
        time.sleep(0.05)


class Watching:
    """``watch`` in a thread, stopped at the end of the test."""

    def __init__(self, index: Path, spec: WatchSpec) -> None:
        self.stop = threading.Event()
        self.runs: list = []
        self.thread = threading.Thread(target=watch, args=(index, spec, KeywordEmbedder()),
                                       kwargs={"stop": self.stop, "on_run": self.runs.append})
        self.thread.start()
        until(lambda: self.runs)  # the first run indexed what is there

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture
def kb(tmp_path) -> Path:
    shutil.copytree(SAMPLE, tmp_path / "kb")
    return tmp_path / "kb"


def test_edits_additions_and_deletions_reach_the_index_within_seconds(kb, tmp_path):
    index = tmp_path / "index"
    w = Watching(index, WatchSpec([kb], debounce_ms=50))
    try:
        assert "support/error-codes.md" in docs_of(index)
        (kb / "new.md").write_text("# New\n\nQuokkas nest under saltbush.\n")
        until(lambda: "new.md" in docs_of(index))
        (kb / "new.md").write_text("# New\n\nQuokkas nest under tea-tree.\n")
        until(lambda: "tea-tree" in docs_of(index).get("new.md", ""))
        shutil.rmtree(kb / "policies")
        until(lambda: not any(d.startswith("policies/") for d in docs_of(index)))
        # the deletion's run is on disk before the watcher reports it: count after that
        until(lambda: w.runs and gen_name(w.runs[-1].generation) == read_current(index))
        (kb / "notes.xyz").write_text("not a format we read")
        (kb / ".hidden.md").write_text("# Hidden\n\nsecret")
        runs = len(w.runs)
        time.sleep(1.0)
        assert len(w.runs) == runs  # neither woke the watcher
    finally:
        w.close()
    assert ".hidden.md" not in docs_of(index)


def test_an_index_inside_the_watched_folder_does_not_wake_the_watcher(kb):
    index = kb / "index"  # its own writes are ignored, or every run would start another
    w = Watching(index, WatchSpec([kb], debounce_ms=50))
    try:
        (kb / "added.md").write_text("# Added\n\nWombats dig burrows.\n")
        until(lambda: "added.md" in docs_of(index))
        time.sleep(1.0)
        changed = [r for r in w.runs if r.changed]
        assert len(changed) == 2  # the first run and the addition, nothing after
    finally:
        w.close()


def test_which_events_matter(tmp_path):
    ignore = [tmp_path / "index"]
    watched = [tmp_path]
    assert relevant(watchfiles.Change.modified, str(tmp_path / "a.md"), watched, ignore)
    assert relevant(watchfiles.Change.added, str(tmp_path / "x" / "b.docx"), watched, ignore)
    assert relevant(watchfiles.Change.deleted, str(tmp_path / "folder"), watched, ignore)
    assert not relevant(watchfiles.Change.added, str(tmp_path / "a.xyz"), watched, ignore)
    assert not relevant(watchfiles.Change.added, str(tmp_path / ".git" / "a.md"), watched, ignore)
    assert not relevant(watchfiles.Change.added, str(tmp_path / "index" / "meta.md"), watched,
                        ignore)
    # a watched folder under a hidden one (~/.local/notes) still counts
    deep = tmp_path / ".local" / "notes"
    assert relevant(watchfiles.Change.added, str(deep / "a.md"), [deep], ignore)


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_a_server_started_with_watch_serves_and_announces_changes(kb, settings):
    index_paths(settings.index, [kb], KeywordEmbedder(), quiet=True)
    s = settings.model_copy(update={"watch_debounce_ms": 50, "change_poll": 60.0})
    pipeline = Pipeline(s, embedder=KeywordEmbedder())
    heard: list[str] = []

    async def on_message(m) -> None:
        root = getattr(m, "root", m)
        if getattr(root, "method", "") == "notifications/resources/updated":
            heard.append(root.params.uri)

    server = build_server(pipeline, watch=WatchSpec([kb], debounce_ms=50))
    async with Client(server, mode="legacy", message_handler=on_message) as c:
        await c.subscribe_resource(document_uri("support/error-codes.md"))
        await anyio.sleep(0.5)  # the watcher's first run: nothing changed
        path = kb / "support" / "error-codes.md"
        path.write_text(path.read_text() + "\n\n## KB-ERR-7777: koala overload\n\nRestart.\n")
        with anyio.fail_after(15):
            while True:
                r = await c.call_tool("search", {"query": "KB-ERR-7777 koala overload", "k": 1})
                hits = r.structured_content["results"]
                if hits and "KB-ERR-7777" in hits[0]["text"]:
                    break
                await anyio.sleep(0.1)
            while document_uri("support/error-codes.md") not in heard:
                await anyio.sleep(0.05)  # at once: change_poll is a minute


async def test_a_client_that_connects_during_the_first_index_is_told_it_is_being_built(
        kb, settings):
    # No index yet: the server starts at once and builds it from the folder it watches
    # (slowly here: 0.2 s a chunk); meanwhile the tools say so instead of "Build one with".
    pipeline = Pipeline(settings, embedder=KeywordEmbedder(delay=0.2), require_index=False)
    server = build_server(pipeline, watch=WatchSpec([kb], debounce_ms=50))
    async with Client(server) as c:
        assert {t.name for t in (await c.list_tools()).tools} >= {"search", "index_status"}
        early = await c.call_tool("search", {"query": "KB-ERR-2847", "k": 1})
        status = await c.call_tool("index_status", {})
        said = []
        with anyio.fail_after(30):
            while True:
                r = await c.call_tool("search", {"query": "KB-ERR-2847", "k": 1})
                if not r.is_error and r.structured_content["results"]:
                    break
                said.append(r.content[0].text)
                await anyio.sleep(0.2)
    for told in (early, status):
        text = told.content[0].text
        assert told.is_error and "Still indexing: the first index of " in text
        assert str(kb) in text and "Build one with" not in text
    # how far it got, in the meantime: the files read, the passages embedded
    assert any(re.search(r"\(read 6 files; embedding passage \d+ of \d+; started \d+ s ago\)",
                         t) for t in said), said
    assert r.structured_content["results"][0]["doc_id"] == "support/error-codes.md"


async def test_the_sync_tool_catches_up_with_the_files_and_reports_progress(kb, settings):
    index_paths(settings.index, [kb], KeywordEmbedder(), quiet=True)
    pipeline = Pipeline(settings, embedder=KeywordEmbedder())
    (kb / "support" / "onboarding.txt").unlink()
    (kb / "extra.md").write_text("# Extra\n\n" + "Numbats eat termites. " * 30 + "\n")
    progress: list[tuple[float, float | None]] = []

    async def on_progress(done, total, message):
        progress.append((done, total))

    async with Client(build_server(pipeline, allow_roots=[kb.parent])) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
        r = await c.call_tool("sync", {}, progress_callback=on_progress)
        again = await c.call_tool("sync", {})
        s = await c.call_tool("search", {"query": "numbats termites", "k": 1})
    assert "sync" in tools
    out = r.structured_content
    assert (out["added"], out["removed"]) == (1, 1) and out["embedded_chunks"] >= 1
    assert progress and progress[-1][0] == progress[-1][1]
    assert again.structured_content["added"] == again.structured_content["removed"] == 0
    assert s.structured_content["results"][0]["doc_id"] == "extra.md"


async def test_sync_is_not_offered_without_allowed_roots(indexed):
    async with Client(build_server(Pipeline(indexed, embedder=KeywordEmbedder()))) as c:
        assert "sync" not in {t.name for t in (await c.list_tools()).tools}


@pytest.mark.slow
def test_the_watch_command_runs_until_stopped(kb, tmp_path, models_dir):
    env = {**os.environ, "MCP_RAG_MODELS": str(models_dir),
           "MCP_RAG_INDEX": str(tmp_path / "index"), "MCP_RAG_WATCH_DEBOUNCE_MS": "100"}
    env.pop("PYTHONUNBUFFERED", None)  # as a user's shell has it: each line must be flushed
    proc = subprocess.Popen([sys.executable, "-m", "mcp_rag", "watch", str(kb)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=120)
        assert "added 6" in first, first
        (kb / "more.md").write_text("# More\n\nPlatypus facts.\n")
        second = lines.get(timeout=60)
        assert "added 1" in second and "generation 2" in second
    finally:
        # SIGTERM, as a service manager stops it (a test run in the background may have
        # SIGINT ignored, which its children inherit); Ctrl-C ends it the same way.
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        err = proc.stderr.read()
        proc.stderr.close()
        reader.join(timeout=10)  # it reads to the end of the output, then stops
        proc.stdout.close()
    assert rc == 0, err
    assert "stopped watching" in err
