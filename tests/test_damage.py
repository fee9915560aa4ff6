"""A damaged index: every damage gives a one-line message naming a command, and that command
repairs it. The server starts anyway and answers each tool with the same message."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from helpers import KeywordEmbedder
from mcp import Client

from mcp_rag.cli import cli
from mcp_rag.index.store import read_current
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server

GEN_FILES = ["manifest.json", "meta.sqlite", "dense.faiss", "bm25.npz", "bm25.json"]


def _damage(index: Path, how: str, name: str) -> None:
    gen = read_current(index)
    assert gen is not None
    target = index / (name if name == "CURRENT" else f"{gen}/{name}")
    if how == "deleted":
        target.unlink()
    elif how == "empty":
        target.write_bytes(b"")
    elif how == "truncated":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        target.write_bytes(b"\x00\xff\xfe not what was written \x80\x81" * 3)
    elif how == "points elsewhere":
        target.write_text("gen-000099\n")
    elif how == "escapes the folder":
        target.write_text("../../etc\n")
    elif how == "no models":
        m = json.loads(target.read_text())
        del m["models"]
        target.write_text(json.dumps(m))
    elif how == "a list":
        target.write_text("[1, 2, 3]")
    elif how == "future format":
        m = json.loads(target.read_text())
        m["format_version"] = 99
        target.write_text(json.dumps(m))
    else:  # pragma: no cover
        raise AssertionError(how)


DAMAGES = (
    [(how, name) for name in GEN_FILES for how in ("deleted", "empty", "truncated", "garbage")]
    + [(how, "CURRENT") for how in ("garbage", "points elsewhere", "escapes the folder")]
    + [(how, "manifest.json") for how in ("no models", "a list", "future format")]
)


@pytest.fixture
def built(runner, tmp_path, sample_dir):
    idx = tmp_path / "idx"
    r = runner.invoke(cli, ["--index", str(idx), "index", str(sample_dir), "-q"])
    assert r.exit_code == 0, r.output
    return idx


def _suggested_command(output: str, sample_dir: Path) -> list[str]:
    """The command an error message names, with PATH... filled in."""
    line = output.strip().splitlines()[-1]
    assert line.startswith("Error: ") and "mcp-rag " in line, output
    cmd = line[line.index("mcp-rag ") :].rstrip(".")
    args = shlex.split(cmd)[1:]
    return [str(sample_dir) if a == "PATH..." else a for a in args]


@pytest.mark.parametrize(("how", "name"), DAMAGES, ids=[f"{n}-{h}" for h, n in DAMAGES])
def test_a_damage_names_a_command_that_repairs_it(runner, built, sample_dir, how, name):
    _damage(built, how, name)
    r = runner.invoke(cli, ["--index", str(built), "status"])
    assert r.exit_code == 1 and "Traceback" not in r.output and "Aborted" not in r.output
    fix = _suggested_command(r.output, sample_dir)
    repaired = runner.invoke(cli, fix)
    assert repaired.exit_code == 0, repaired.output
    r = runner.invoke(cli, ["--index", str(built), "search", "KB-ERR-2847", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"][0]["doc_id"] == "support/error-codes.md"


@pytest.mark.parametrize(("how", "name"), [("empty", "bm25.npz"), ("garbage", "CURRENT"),
                                           ("no models", "manifest.json")])
async def test_the_server_starts_on_a_damaged_index_and_says_what_to_run(
    built, settings, how, name
):
    _damage(built, how, name)
    s = settings.model_copy(update={"index": built})
    p = Pipeline.from_settings(s, embedder=KeywordEmbedder(), require_index=False)
    async with Client(build_server(p)) as c:
        for tool, args in (("search", {"query": "refund"}), ("index_status", {})):
            r = await c.call_tool(tool, args)
            assert r.is_error and "--rebuild" in r.content[0].text, r.content[0].text
