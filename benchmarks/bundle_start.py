"""The bundle's first start, as a desktop client sees it.

    python benchmarks/bundle_start.py dist/mcp-rag-0.2.0.mcpb [--folder DIR] [--runs 5]

Unpacks the bundle, installs it with uv (the client's install step, timed apart), then
--runs times, each with a new index: starts it as its manifest says (``uv run`` with the
folder as the picked folder), times ``tools/list`` and the first ``search`` that returns
results, with a real MCP client over stdio. Beside it, in the same runs, ``mcp-rag index``
of the same folder with the same models: the first index by itself. Prints medians and
ranges, and the CPU. The model pack must be in the cache (``MCP_RAG_MODELS``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from mcp_rag.evaluate.latency import cpu  # noqa: E402


def host_command(app: Path, folder: Path) -> list[str]:
    """The manifest's command and arguments, ``${__dirname}`` and the folder filled in."""
    config = json.loads((app / "manifest.json").read_text())["server"]["mcp_config"]
    args = [str(folder) if a == "${user_config.folders}" else a.replace("${__dirname}", str(app))
            for a in config["args"]]
    return [config["command"], *args]


async def one_start(command: list[str], env: dict[str, str], query: str) -> tuple[float, float]:
    started = time.monotonic()
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    async with Client(params) as c:
        await c.list_tools()
        listed = time.monotonic() - started
        while True:
            r = await c.call_tool("search", {"query": query, "k": 1})
            if not r.is_error and r.structured_content["results"]:
                return listed, time.monotonic() - started
            await anyio.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--folder", type=Path, default=REPO / "mcp_rag" / "sample")
    ap.add_argument("--query", default="What does error KB-ERR-2847 mean?")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    work = Path(tempfile.mkdtemp(prefix="bundle-start-"))
    app = work / "app"
    zipfile.ZipFile(a.bundle).extractall(app)
    t = time.monotonic()
    subprocess.run([uv, "sync", "--directory", str(app), "--quiet"], check=True)
    install = time.monotonic() - t
    command = host_command(app, a.folder.resolve())
    command[0] = uv
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_RAG_", "VIRTUAL_ENV"))}
    base["MCP_RAG_MODELS"] = os.environ.get("MCP_RAG_MODELS") or str(
        Path.home() / ".cache" / "mcp-rag" / "models")
    listed, first, alone = [], [], []
    for i in range(a.runs):
        env = base | {"MCP_RAG_INDEX": str(work / f"index-{i}")}
        lst, fst = anyio.run(one_start, command, env, a.query)
        listed.append(lst)
        first.append(fst)
        t = time.monotonic()
        subprocess.run([sys.executable, "-m", "mcp_rag", "--index", str(work / f"cli-{i}"),
                        "index", str(a.folder), "-q"], check=True, env=base,
                       stdout=subprocess.DEVNULL)
        alone.append(time.monotonic() - t)

    def show(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f} s ({min(xs):.2f}-{max(xs):.2f})"

    print(f"CPU: {cpu()}; {a.runs} runs; folder {a.folder}")
    print(f"install (uv sync, once): {install:.1f} s")
    print(f"tools/list after start:   {show(listed)}")
    print(f"first search answered:    {show(first)}")
    print(f"`mcp-rag index` alone:    {show(alone)}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
