"""The path-safety gate: nothing outside the allowed roots, no device reads, no hangs, no crashes.

Each case here was found by probing the server (symlinks, devices, FIFOs, overlapping
paths, deep trees, NUL bytes) and failed before the gate existed.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from helpers import KeywordEmbedder
from mcp import Client

from mcp_rag.errors import LoaderError
from mcp_rag.index.store import IndexReader
from mcp_rag.index.update import index_paths
from mcp_rag.ingest import safety
from mcp_rag.ingest.discover import MAX_DEPTH, discover
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "d").mkdir(parents=True)
    (r / "d" / "note.md").write_text("# Note\n\nQuokkas live on Rottnest Island.")
    return r


def _indexed_sources(index: Path) -> set[str]:
    reader = IndexReader(index)
    try:
        return {d["source"] for d in reader.documents()}
    finally:
        reader.close()


async def test_a_file_symlink_out_of_the_allowed_root_is_not_indexed(settings, root, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("the launch codes are 0000")
    (root / "d" / "p.txt").symlink_to("/etc/passwd")
    (root / "d" / "s.txt").symlink_to(outside)
    (root / "d" / "status.txt").symlink_to("/proc/self/status")
    emb = KeywordEmbedder()
    pipeline = Pipeline(settings, embedder=emb, require_index=False)
    async with Client(build_server(pipeline, allow_roots=[root])) as c:
        r = await c.call_tool("index_paths", {"paths": [str(root / "d")]})
    assert not r.is_error, r.content[0].text
    skipped = {Path(s["path"]).name: s["reason"] for s in r.structured_content["skipped"]}
    assert skipped == {n: "symbolic link to a file outside the allowed roots"
                       for n in ("p.txt", "s.txt", "status.txt")}
    assert _indexed_sources(settings.index) == {str(root / "d" / "note.md")}


def test_a_symlink_inside_the_root_is_indexed_once_as_its_target(settings, root):
    (root / "d" / "alias.md").symlink_to(root / "d" / "note.md")
    rep = index_paths(settings.index, [root], KeywordEmbedder(), quiet=True)
    assert rep.added == 1
    assert _indexed_sources(settings.index) == {str(root / "d" / "note.md")}


def test_a_symlinked_folder_is_not_followed(root, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.md").write_text("# X\n\nElsewhere.")
    (root / "linked").symlink_to(other, target_is_directory=True)
    found = discover([root])
    assert [f.path.name for f in found.files] == ["note.md"]
    assert (str(root / "linked"), "symbolic link to a folder (not followed)") in found.skipped


def test_device_reads_are_refused_and_never_trust_st_size(tmp_path):
    with pytest.raises(LoaderError, match="a character device, not a regular file"):
        safety.read_bytes(Path("/dev/zero"))
    f = tmp_path / "eleven.txt"
    f.write_bytes(b"x" * 11)
    assert safety.read_bytes(f, limit=11) == b"x" * 11
    with pytest.raises(LoaderError, match="over the 10 byte limit"):
        safety.read_bytes(f, limit=10)


def test_a_device_symlink_with_a_text_suffix_is_skipped(root):
    (root / "d" / "zero.txt").symlink_to("/dev/zero")
    found = discover([root], roots=[root, Path("/dev")])  # even where /dev is allowed
    assert (str(root / "d" / "zero.txt"), "symbolic link to a character device") in found.skipped
    assert [f.path.name for f in found.files] == ["note.md"]


def _run_with_guard(fn, seconds: float = 60.0):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it never returns."""
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("value", fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "indexing hung"
    return out["value"]


def test_a_fifo_in_a_folder_is_skipped_without_hanging(settings, root):
    os.mkfifo(root / "d" / "pipe.txt")
    rep = _run_with_guard(lambda: index_paths(settings.index, [root], KeywordEmbedder(),
                                              quiet=True))
    assert rep.added == 1
    assert (str(root / "d" / "pipe.txt"), "a FIFO, not a regular file") in rep.skipped


def test_a_fifo_given_directly_is_skipped_with_its_reason(root):
    os.mkfifo(root / "pipe.md")
    found = discover([root / "pipe.md"])
    assert found.files == [] and found.skipped == [(str(root / "pipe.md"),
                                                    "a FIFO, not a regular file")]


@pytest.mark.parametrize("extra", [["{root}/d/note.md"], ["{root}"], ["{root}/d"]])
def test_overlapping_paths_index_each_file_once(settings, root, extra):
    paths = [str(root)] + [p.format(root=root) for p in extra]
    rep = index_paths(settings.index, paths, KeywordEmbedder(), quiet=True)
    assert rep.added == 1 and rep.generation == 1
    assert not list(settings.index.glob(".gen-*"))


def test_a_tree_deeper_than_the_limit_is_walked_without_recursion(root):
    d = root / "deep"
    d.mkdir()
    for _ in range(1100):  # 1,100 levels: os.walk in Python 3.11 recurses and fails
        d = d / "a"
        d.mkdir()
    (d / "bottom.md").write_text("# Bottom\n\nToo deep.")
    try:
        found = discover([root])
    finally:  # shutil.rmtree (pytest's clean-up) recurses too: take the tree down here
        (d / "bottom.md").unlink()
        while d != root:
            d.rmdir()
            d = d.parent
    assert [f.path.name for f in found.files] == ["note.md"]
    assert any(why == f"nested deeper than {MAX_DEPTH} folders" for _, why in found.skipped)


@pytest.mark.parametrize(("raw", "message"), [
    ("", "an empty path was given"),
    ("   ", "an empty path was given"),
    ("a\x00b", "holds a NUL byte"),
    ("x" * 100_000, "a path of 100000 characters is over the limit of 4096"),
])
def test_unusable_path_arguments_are_refused_with_the_reason(raw, message):
    with pytest.raises(LoaderError, match=re.escape(message)):
        discover([raw])


@pytest.mark.parametrize(("raw", "message"), [
    ("", "paths.0: String should have at least 1 character"),
    ("   ", "an empty path was given"),
    ("a\x00b", "holds a NUL byte"),
    ("x" * 100_000, "paths.0: String should have at most 4096 characters"),
    ("/etc", "is outside the allowed roots"),
])
async def test_index_paths_tool_refuses_unusable_paths_with_a_readable_error(
    settings, root, raw, message
):
    pipeline = Pipeline(settings, embedder=KeywordEmbedder(), require_index=False)
    async with Client(build_server(pipeline, allow_roots=[root])) as c:
        r = await c.call_tool("index_paths", {"paths": [raw]})
    assert r.is_error and message in r.content[0].text
    assert not settings.index.exists() or not list(settings.index.glob("gen-*"))


def test_a_failed_write_leaves_no_temporary_generation(settings, root, monkeypatch):
    import mcp_rag.index.store as store

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store.BM25Index, "build", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        index_paths(settings.index, [root], KeywordEmbedder(), quiet=True)
    assert not list(settings.index.glob(".gen-*")) and not list(settings.index.glob("gen-*"))
