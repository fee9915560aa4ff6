"""Cache hit vs miss through the MCP `search` tool, side by side in one run.

    python benchmarks/cache_bench.py --index /tmp/sf --queries 30

For each query: one call that misses (full pipeline: hybrid + cross-encoder) and one
identical call that hits, both through a real in-memory MCP client session, so protocol
overhead is in both. Prints the medians and their ratio (latency). The throughput gain is
a separate matter: it depends on the hit rate of real traffic, which `mcp-rag cache stats`
reports.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from mcp import Client

from mcp_rag.app.cache import QueryCache
from mcp_rag.evaluate.beir import load_queries
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server
from mcp_rag.settings import Settings


async def run(index: Path, queries: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cache = QueryCache(Path(tmp) / "cache")
        server = build_server(Pipeline.from_settings(Settings(index=index)), cache=cache)
        miss_ms, hit_ms = [], []
        async with Client(server) as c:
            await c.call_tool("search", {"query": "warm-up", "no_cache": True})
            for q in queries:
                t = time.perf_counter()
                a = await c.call_tool("search", {"query": q})
                miss_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                b = await c.call_tool("search", {"query": q})
                hit_ms.append((time.perf_counter() - t) * 1000)
                assert not a.structured_content["cached"] and b.structured_content["cached"]
        miss, hit = statistics.median(miss_ms), statistics.median(hit_ms)
        return {"queries": len(queries), "miss_p50_ms": round(miss, 2),
                "hit_p50_ms": round(hit, 3), "speedup": round(miss / hit, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True)
    scifact = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"
    ap.add_argument("--dataset", type=Path, default=scifact)
    ap.add_argument("--queries", type=int, default=30)
    args = ap.parse_args()
    queries = list(load_queries(args.dataset).values())[: args.queries]
    for k, v in asyncio.run(run(args.index, queries)).items():
        print(f"{k:12} {v}")


if __name__ == "__main__":
    main()
