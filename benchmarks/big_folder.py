"""A big new folder under `serve --watch`: time to the first search that finds a file, time
to a complete index, and what copies cost; this code against another commit, on one machine.

    python benchmarks/big_folder.py --dataset ../shared/datasets/scifact --files 3000 \\
        --work /tmp/bigf [--copies 0.3] [--base COMMIT] [--runs 3] [--json out.json]

The folder holds one file per document of a BEIR corpus (``# title`` and the abstract, in
corpus order); with ``--copies 0.3``, 30 % of the files are copies of others under new
names. Each side (``--base``'s tree, extracted with ``git archive``, then this checkout)
starts ``mcp-rag serve --watch FOLDER`` on an empty index over stdio with a real MCP
client, the clock starting just before the process does, and asks ``search`` every half
second for a phrase (eight words from the middle of the abstract) of each of five probe
files spread through the folder (the first, the last, three between): the seconds until
each is found in the top 10 (or among the closest passages, when the phrase is judged
unanswerable), and until ``index_status`` says every passage has a vector (``coverage``
1; an older version: the first generation); a probe the complete index does not find
within 30 s is reported as not found. The sides run one after the
other, the base first, ``--runs`` times in turn (medians reported); the model pack and
the CPU are the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab import checkout  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
POLL = 0.5
K = 10  # a probe is found when its file is among the first K passages
GRACE = 30.0  # seconds a complete index is still asked for probes not found yet


def make_folder(dataset: Path, n: int, copies: float, dest: Path) -> list[tuple[str, str]]:
    """Write the folder; its probe files as (doc id, phrase)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    originals = round(n * (1 - copies))
    docs = []
    with open(dataset / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if len(d["text"].split()) >= 40:
                docs.append(d)
            if len(docs) == originals:
                break
    for d in docs:
        (dest / f"{d['_id']}.md").write_text(f"# {d['title']}\n\n{d['text']}\n", encoding="utf-8")
    for i in range(n - originals):  # copies of spread-out originals, under new names
        src = docs[(i * 7919) % len(docs)]
        shutil.copyfile(dest / f"{src['_id']}.md", dest / f"copy-{i:05d}.md")
    probes = []
    for j in (0, len(docs) // 4, len(docs) // 2, 3 * len(docs) // 4, len(docs) - 1):
        words = docs[j]["text"].split()
        mid = len(words) // 2
        probes.append((f"{docs[j]['_id']}.md", " ".join(words[mid:mid + 8])))
    return probes


async def serve_side(code: Path, folder: Path, index: Path, probes: list[tuple[str, str]],
                     timeout: float) -> dict:
    from mcp import Client, StdioServerParameters

    env = {**os.environ, "PYTHONPATH": str(code), "MCP_RAG_INDEX": str(index)}
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "mcp_rag", "serve", "--watch", str(folder)],
                                   env=env, cwd=str(code))
    started = time.perf_counter()
    found: dict[str, float] = {}
    out: dict = {"probes": {}}
    async with Client(params) as c:
        out["connected_s"] = round(time.perf_counter() - started, 2)
        while time.perf_counter() - started < timeout:
            for doc_id, phrase in probes:
                if doc_id in found:
                    continue
                r = await c.call_tool("search", {"query": phrase, "k": K})
                got = r.structured_content or {} if not r.is_error else {}
                # listed, or shown as the closest passage of a phrase judged unanswerable
                if doc_id in [h["doc_id"] for h in got.get("results", []) + got.get(
                        "closest", [])]:
                    found[doc_id] = round(time.perf_counter() - started, 2)
            st = await c.call_tool("index_status", {})
            s = st.structured_content or {} if not st.is_error else {}
            complete = bool(s) and s.get("coverage", 1.0) >= 1.0 and s.get("last_run", {}).get(
                "finished_at") and s.get("chunks")
            now = time.perf_counter() - started
            if complete and "complete_s" not in out:
                out["complete_s"] = round(now, 2)
                out["chunks"] = s["chunks"]
                out["last_run"] = {k: s["last_run"].get(k) for k in
                                   ("added", "embedded_chunks", "reused_chunks", "seconds")}
            if "complete_s" in out and (len(found) == len(probes)
                                        or now > out["complete_s"] + GRACE):
                break
            await asyncio.sleep(POLL)
    out["probes"] = found
    out["first_found_s"] = min(found.values()) if found else None
    out["all_found_s"] = max(found.values()) if len(found) == len(probes) else None
    return out


def _median(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cpu() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--copies", type=float, default=0.0, help="Share of files that are copies.")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--base", default=None, help="A commit to measure first, the same way.")
    ap.add_argument("--runs", type=int, default=1,
                    help="Rounds; each runs every side once, in turn. Medians are reported.")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    folder = a.work / "files"
    probes = make_folder(a.dataset, a.files, a.copies, folder)
    sides = []
    if a.base:
        sides.append(("base " + a.base, checkout(a.base, Path(tempfile.mkdtemp()))))
    sides.append(("head", REPO))
    report = {"cpu": cpu(), "cores": os.cpu_count(), "files": a.files, "copies": a.copies,
              "dataset": a.dataset.name, "sides": {}}
    runs: dict[str, list[dict]] = {name: [] for name, _ in sides}
    for _ in range(a.runs):
        for name, code in sides:
            index = a.work / ("index-" + name.split()[0])
            if index.exists():
                shutil.rmtree(index)
            got = asyncio.run(serve_side(code, folder, index, probes, a.timeout))
            runs[name].append(got)
            print(f"{name}: first probe found {got['first_found_s']} s, all five "
                  f"{got['all_found_s']} s, complete {got.get('complete_s')} s "
                  f"({got.get('last_run')})", file=sys.stderr, flush=True)
    report["runs"] = a.runs
    report["sides"] = {name: got[0] if a.runs == 1 else got for name, got in runs.items()}
    report["median_probe_s"] = {
        n: statistics.median(v for got in r for v in got["probes"].values())
        if any(got["probes"] for got in r) else None for n, r in runs.items()}
    report["median_s"] = {n: {key: _median([got.get(key) for got in r]) for key in
                              ("first_found_s", "all_found_s", "complete_s")}
                          for n, r in runs.items()}
    text = json.dumps(report, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
