"""The MCP Bundle: its manifest agrees with the server and the package, `mcpb` validates and
packs it, and the packed bundle, unpacked and started the way a desktop client starts a
`uv` bundle, indexes the folder picked in its settings and answers a real MCP client."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path

import anyio
import pytest
from helpers import REPO, SAMPLE, KeywordEmbedder
from mcp import Client, StdioServerParameters

from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server
from mcp_rag.settings import Settings

sys.path.insert(0, str(REPO / "bundle"))
import build as bundle_build  # noqa: E402  (bundle/build.py: not a package)

MANIFEST = json.loads((REPO / "bundle" / "manifest.json").read_text())
CONFIG = MANIFEST["server"]["mcp_config"]


def test_the_manifest_validates_against_the_mcpb_schema():
    import jsonschema

    schema = json.loads((REPO / "tests" / "schemas" / "mcpb-manifest-v0.4.schema.json")
                        .read_text())
    assert MANIFEST["manifest_version"] == schema["properties"]["manifest_version"]["const"]
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(MANIFEST), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


async def test_the_manifest_lists_the_server_s_tools(indexed):
    async with Client(build_server(Pipeline(indexed, embedder=KeywordEmbedder()))) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
    assert {t["name"] for t in MANIFEST["tools"]} == tools
    assert MANIFEST["tools_generated"]  # add_document / remove_document with allow_add


def test_every_setting_the_manifest_asks_for_reaches_the_server():
    fields = set(Settings.model_fields)
    used = set(re.findall(r"\$\{user_config\.(\w+)\}", json.dumps(CONFIG)))
    assert used == set(MANIFEST["user_config"])  # each choice is passed on, none invented
    for var in CONFIG["env"]:
        assert var.removeprefix("MCP_RAG_").lower() in fields, var
    # the folders are separate arguments of `serve` (a multiple directory expands so)
    assert CONFIG["args"][-1] == "${user_config.folders}"
    assert MANIFEST["user_config"]["folders"] | {"type": "directory", "multiple": True} == \
        MANIFEST["user_config"]["folders"]
    assert MANIFEST["version"] == bundle_build.version()
    assert (REPO / "bundle" / MANIFEST["server"]["entry_point"]).exists()
    assert (REPO / "bundle" / MANIFEST["icon"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_bundle_pins_what_ci_passed_with():
    staged = bundle_build.staged_pyproject((REPO / "pyproject.toml").read_text(),
                                           REPO / "requirements" / "lock.txt")
    import tomllib

    meta = tomllib.loads(staged)
    deps = meta["project"]["dependencies"]
    for wanted in ("pypdf", "markitdown", "rapidocr-onnxruntime"):
        assert any(d.startswith(wanted) for d in deps), wanted
    assert not [d for d in deps if d.startswith("mcp-rag-server")]
    pins = meta["tool"]["uv"]["constraint-dependencies"]
    assert any(re.fullmatch(r"onnxruntime==[\w.]+", p) for p in pins)
    assert all("==" in p for p in pins)


def _node_tools() -> Path:
    tools = os.environ.get("MCP_RAG_CONFORMANCE")
    if not tools:
        pytest.skip("MCP_RAG_CONFORMANCE is not set (make test installs Node and mcpb there)")
    return Path(tools)


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    """`make bundle`'s work: stage, lock, `mcpb validate`, `mcpb pack`."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    return bundle_build.build(tmp_path_factory.mktemp("dist"),
                              bundle_build.mcpb_command(_node_tools()), uv)


@pytest.mark.slow
def test_make_bundle_validates_and_packs_a_small_bundle(packed):
    names = zipfile.ZipFile(packed).namelist()
    for must in ("manifest.json", "icon.png", "server/main.py", "pyproject.toml", "uv.lock",
                 "README.md", "LICENSE", "mcp_rag/cli.py", "mcp_rag/sample/support/error-codes.md"):
        assert must in names, must
    assert not [n for n in names if "__pycache__" in n or n.startswith((".venv", "server/lib"))]
    assert packed.stat().st_size < 2_000_000  # the client installs the dependencies


def _as_a_host_would(config: dict, dirname: Path, values: dict) -> tuple[str, list, dict]:
    """``mcp_config`` with ``${__dirname}`` and ``${user_config.*}`` substituted; a list
    value (several folders) expands into separate arguments."""
    def sub(text: str) -> str:
        text = text.replace("${__dirname}", str(dirname))
        return re.sub(r"\$\{user_config\.(\w+)\}", lambda m: str(values[m.group(1)]).lower()
                      if isinstance(values[m.group(1)], bool) else str(values[m.group(1)]),
                      text)

    args: list[str] = []
    for a in config["args"]:
        m = re.fullmatch(r"\$\{user_config\.(\w+)\}", a)
        if m and isinstance(values[m.group(1)], list):
            args += [str(v) for v in values[m.group(1)]]
        else:
            args.append(sub(a))
    return sub(config["command"]), args, {k: sub(v) for k, v in config["env"].items()}


@pytest.mark.slow
async def test_the_unpacked_bundle_indexes_the_chosen_folder_and_answers(packed, tmp_path,
                                                                         models_dir):
    app = tmp_path / "Claude Extensions" / "mcp-rag"
    zipfile.ZipFile(packed).extractall(app)
    kb, notes = tmp_path / "My Documents", tmp_path / "notes"
    shutil.copytree(SAMPLE, kb)
    notes.mkdir()
    (notes / "wombat.md").write_text("# Wombats\n\nWombats produce cube-shaped droppings.\n")
    values = {**{k: v.get("default", "") for k, v in MANIFEST["user_config"].items()},
              "folders": [kb, notes], "index_name": str(tmp_path / "index")}
    command, args, env = _as_a_host_would(CONFIG, app, values)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert command == "uv" and uv is not None
    home = tmp_path / "home"
    home.mkdir()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("MCP_RAG_", "XDG_", "VIRTUAL_ENV", "PYTHON", "UV_"))}
    # The host's install: uv makes the bundle's environment from its uv.lock (the first
    # `uv run` would do the same, inside the client's start-up timeout).
    env = base | env | {"HOME": str(home), "MCP_RAG_MODELS": str(models_dir),
                        "UV_CACHE_DIR": str(Path.home() / ".cache" / "uv")}
    sync = await anyio.run_process([uv, "sync", "--directory", str(app), "--quiet"], env=env,
                                   check=False)
    assert sync.returncode == 0, sync.stderr.decode()[-2000:]
    started = time.monotonic()
    params = StdioServerParameters(command=uv, args=args, env=env, cwd=str(home))
    async with Client(params) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
        listed = time.monotonic() - started
        with anyio.fail_after(120):
            while True:
                r = await c.call_tool("search", {"query": "What does error KB-ERR-2847 mean?",
                                                 "k": 1})
                if not r.is_error and r.structured_content["results"]:
                    break
                assert "Still indexing" in r.content[0].text, r.content[0].text
                await anyio.sleep(0.25)
        first = time.monotonic() - started
        w = await c.call_tool("search", {"query": "cube-shaped droppings", "k": 1})
        status_before = (await c.call_tool("index_status", {})).structured_content[
            "last_run"].get("finished_at")
    # The client re-opened: the same index, nothing read or embedded again.
    async with Client(params) as c:
        again = await c.call_tool("search", {"query": "cube-shaped droppings", "k": 1})
        with anyio.fail_after(30):
            while (st := await c.call_tool("index_status", {})).structured_content[
                    "last_run"].get("finished_at") == status_before:
                await anyio.sleep(0.2)
    print(f"bundle: tools listed {listed:.1f} s, first search answered {first:.1f} s after "
          f"start", file=sys.stderr)
    assert not again.is_error and again.structured_content["results"]
    run = st.structured_content["last_run"]
    assert run["added"] == run["updated"] == run["embedded_chunks"] == 0, run
    assert run["unchanged"] == 7
    assert tools == {t["name"] for t in MANIFEST["tools"]}
    assert r.structured_content["results"][0]["doc_id"] == "support/error-codes.md"
    assert w.structured_content["results"][0]["source"] == str(notes / "wombat.md")
    assert (tmp_path / "index" / "CURRENT").exists()  # where the index name put it
    assert not (app / "index").exists() and not list(home.rglob("CURRENT"))
