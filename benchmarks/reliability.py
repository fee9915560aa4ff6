"""Reliability under load, switches and random input, through a real MCP client session.

    python benchmarks/reliability.py [--index DIR] [--queued 60] [--filters 10000]
        [--switches 50] [--fuzz 10000] [--json OUT]

With no --index, the bundled sample knowledge base is indexed into a temp folder with the
real model pack. Four measurements, each printed as it finishes:

1. queue: ``--queued`` reranked searches (no cache) are started at once; while they queue,
   ``index_status`` and ``list_tools`` are timed (p50/p95 over 20 calls each). The queue
   depth is raised to hold them all (``max_queued``), so none is refused.
2. filters: ``--filters`` first-stage searches, each with a distinct 500-character source
   glob; resident memory (RSS) after a warm-up and at the end.
3. switches: ``--switches`` new index generations switched in under a live server (a file
   added, re-indexed, searched); RSS and open handles to deleted files before and after.
4. fuzz: ``--fuzz`` tool calls with random JSON arguments; counts errors whose text is
   bare (nothing after "Error executing tool X"), tracebacks, and calls after which the
   server no longer answered.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

from mcp_rag.app.cache import QueryCache
from mcp_rag.evaluate.latency import cpu
from mcp_rag.index.update import index_paths
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server
from mcp_rag.settings import Settings

SAMPLE = Path(__file__).resolve().parents[1] / "mcp_rag" / "sample"
WORDS = ("refund annual plan monthly incident response error code quota storage token vpn "
         "mfa expense receipt policy enterprise p1 p2 upload api limit").split()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def deleted_handles() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            n += os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)")
    return n


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def text_of(r) -> str:
    return r.content[0].text if r.content else ""


async def queue(server, n: int, rng: random.Random) -> dict:
    status_ms: list[float] = []
    tools_ms: list[float] = []
    outcomes = {"ok": 0, "busy": 0, "error": 0}
    async with Client(server) as c:
        async def one(q: str) -> None:
            r = await c.call_tool("search", {"query": q, "no_cache": True})
            key = "ok" if not r.is_error else "busy" if "busy" in text_of(r) else "error"
            outcomes[key] += 1

        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(n):
                q = " ".join(rng.sample(WORDS, 4)) + f" {i}"
                tg.start_soon(one, q)
            await anyio.sleep(0.5)  # let them queue
            for _ in range(20):
                t = time.perf_counter()
                await c.call_tool("index_status", {})
                status_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await c.list_tools()
                tools_ms.append((time.perf_counter() - t) * 1000)
        total = time.perf_counter() - t0
    return {
        "queued_searches": n, "outcomes": outcomes, "drain_s": round(total, 1),
        "index_status_ms": {"p50": round(statistics.median(status_ms), 1),
                            "p95": round(pct(status_ms, 0.95), 1)},
        "list_tools_ms": {"p50": round(statistics.median(tools_ms), 1),
                          "p95": round(pct(tools_ms, 0.95), 1)},
    }


async def filters(server, n: int, rng: random.Random) -> dict:
    async with Client(server) as c:
        def glob(i: int) -> str:
            body = "".join(rng.choices(string.ascii_lowercase, k=480))
            return f"*{i}{body}*"[:500]

        for i in range(100):  # warm-up
            await c.call_tool("search", {"query": "refund", "rerank": False, "no_cache": True,
                                         "filters": {"source": glob(i)}})
        before = rss_mb()
        errors = 0
        for i in range(n):
            r = await c.call_tool("search", {"query": rng.choice(WORDS), "rerank": False,
                                             "no_cache": True, "filters": {"source": glob(i)}})
            errors += r.is_error
        after = rss_mb()
    return {"searches": n, "errors": errors, "rss_mb_before": round(before, 1),
            "rss_mb_after": round(after, 1), "rss_change": f"{(after / before - 1):+.1%}"}


async def switches(server, s: Settings, kb: Path, n: int) -> dict:
    emb = server_embedder[0]
    async with Client(server) as c:
        await c.call_tool("search", {"query": "refund", "no_cache": True})
        before, handles_before = rss_mb(), deleted_handles()
        gens = []
        for i in range(n):
            (kb / f"note-{i}.md").write_text(f"# Note {i}\n\nQuokka number {i} lives here.")
            index_paths(s.index, [kb], emb, quiet=True)
            r = await c.call_tool("search", {"query": f"quokka number {i}", "no_cache": True,
                                             "rerank": False})
            gens.append(r.structured_content["generation"])
        after, handles_after = rss_mb(), deleted_handles()
    return {"switches": n, "last_generation": gens[-1], "rss_mb_before": round(before, 1),
            "rss_mb_after": round(after, 1), "rss_change": f"{(after / before - 1):+.1%}",
            "deleted_handles_before": handles_before, "deleted_handles_after": handles_after}


def random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 2 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 5, 50, 51, 2**63, rng.randint(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e308, 3.0])
    if kind == 4:
        alphabet = string.printable + "\x00\ufdfa\u202e\n\u00e9"
        return "".join(rng.choices(alphabet, k=rng.choice([0, 1, 5, 50, 2001, 20_001])))
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["query", "source", "doc_id_prefix", "k", "x", ""]):
            random_json(rng, depth + 1) for _ in range(rng.randrange(3))}


SHAPES = {
    "search": ["query", "k", "filters", "rerank", "no_cache"],
    "answer": ["question", "k", "max_sentences", "no_cache"],
    "rerank": ["query", "passages", "top_k"],
    "index_status": [],
    "index_paths": ["paths"],
}


async def fuzz(server, n: int, rng: random.Random) -> dict:
    bare = tracebacks = dead = errors = 0
    async with Client(server) as c:
        for i in range(n):
            tool = rng.choice(sorted(SHAPES))
            args = {k: random_json(rng) for k in SHAPES[tool] if rng.random() < 0.8}
            if rng.random() < 0.1:
                args[rng.choice(["zzz", "filters", "k"])] = random_json(rng)
            r = await c.call_tool(tool, args)
            text = text_of(r)
            if r.is_error:
                errors += 1
                prefix = f"Error executing tool {tool}"
                bare += text.strip() in (prefix, prefix + ":")
                tracebacks += "Traceback" in text
            if i % 100 == 0 and (await c.call_tool("index_status", {})).is_error:
                dead += 1
    return {"calls": n, "errors": errors, "bare_errors": bare, "tracebacks": tracebacks,
            "server_stopped_answering": dead}


server_embedder: list = []


async def main_async(args: argparse.Namespace) -> dict:
    rng = random.Random(0)
    work = Path(tempfile.mkdtemp(prefix="mcp-rag-reliability-"))
    try:
        kb = work / "kb"
        shutil.copytree(SAMPLE, kb)
        index = args.index or work / "index"
        s = Settings(index=index, max_queued=max(32, args.queued))
        p = Pipeline.from_settings(s, require_index=False)
        server_embedder.append(p.embedder)
        if args.index is None:
            index_paths(index, [kb], p.embedder, quiet=True)
        server = build_server(p, allow_roots=[work / "empty-root"],
                              cache=QueryCache(work / "cache"))
        (work / "empty-root").mkdir()
        out: dict = {"cpu": cpu(), "model_workers": s.model_workers}
        for name, coro in (
            ("queue", lambda: queue(server, args.queued, rng)),
            ("filters", lambda: filters(server, args.filters, rng)),
            ("switches", lambda: switches(server, s, kb, args.switches)),
            ("fuzz", lambda: fuzz(server, args.fuzz, rng)),
        ):
            out[name] = await coro()
            print(name, json.dumps(out[name]), file=sys.stderr, flush=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--queued", type=int, default=60)
    ap.add_argument("--filters", type=int, default=10_000)
    ap.add_argument("--switches", type=int, default=50)
    ap.add_argument("--fuzz", type=int, default=10_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    out = anyio.run(main_async, args)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
