"""Load test: many concurrent `search` calls over streamable HTTP from several MCP clients.

    python benchmarks/load.py --index index_store --calls 200 --clients 4 [--no-rerank]

Starts `mcp-rag serve --transport http` on a free loopback port (or uses --url), opens
``--clients`` MCP sessions, fires ``--calls`` search calls at once spread over them, and
reports failures, calls refused as busy (past the server's queue depth, by design),
throughput and p50/p95 latency. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mcp import Client

QUERIES = [
    "What does error KB-ERR-2847 mean?",
    "response time for a P1 incident on the Enterprise plan",
    "can I get a refund on an annual plan after two months?",
    "is MFA required before connecting to the VPN?",
    "how long do refunds take to reach my card?",
    "what happens when a P1 incident is not resolved within 4 hours?",
    "KB-ERR-2874 token expired",
    "expense claims without a receipt",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "MCP_RAG_INDEX": str(index)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_rag", "serve", "--transport", "http", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


async def run(url: str, calls: int, clients: int, rerank: bool, k: int) -> dict:
    latencies: list[float] = []
    failures: list[str] = []
    busy = 0
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(Client(url)) for _ in range(clients)]
        for s in sessions:  # warm-up: one call each, not counted
            await s.call_tool("search", {"query": QUERIES[0], "k": k, "rerank": rerank})

        async def one(i: int) -> None:
            t = time.perf_counter()
            try:
                r = await sessions[i % clients].call_tool(
                    "search", {"query": QUERIES[i % len(QUERIES)], "k": k, "rerank": rerank}
                )
                if r.is_error and "the server is busy" in r.content[0].text:
                    nonlocal busy
                    busy += 1  # refused at once by design: the model queue was full
                elif r.is_error or not r.structured_content["results"]:
                    failures.append(r.content[0].text[:200])
            except Exception as e:  # count every failure, keep going
                failures.append(f"{type(e).__name__}: {e}")
            latencies.append((time.perf_counter() - t) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {
        "calls": calls,
        "clients": clients,
        "rerank": rerank,
        "failures": len(failures),
        "busy": busy,
        "first_failure": failures[0] if failures else None,
        "wall_s": round(wall, 2),
        "throughput_per_s": round(calls / wall, 2),
        "p50_ms": round(statistics.median(lat), 1),
        "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, default=Path("index_store"))
    ap.add_argument("--url", default=None, help="An already running server's /mcp URL.")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--no-rerank", action="store_true")
    args = ap.parse_args()
    proc = None
    url = args.url
    if url is None:
        port = free_port()
        proc = start_server(args.index, port)
        url = f"http://127.0.0.1:{port}/mcp"
    try:
        out = asyncio.run(run(url, args.calls, args.clients, not args.no_rerank, args.k))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    for key, v in out.items():
        print(f"{key:18} {v}")
    if out["failures"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
