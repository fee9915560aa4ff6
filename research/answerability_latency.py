"""What the answerability decision costs `answer`: A/B in one process, one machine.

    python research/answerability_latency.py --index /tmp/sf \\
        --dataset ../shared/datasets/scifact [--n 60]

Two services share one embedder and one cross-encoder; one decides with the answerability
model (default), the other with the relevance floor alone. Each query is asked of both,
in alternating order, cache off, after one warm-up query. Prints each side's median,
the median of the paired differences with a bootstrap 95 % interval, and the CPU.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from mcp_rag.app.service import RagService
from mcp_rag.evaluate.beir import judged_queries, load_qrels, load_queries
from mcp_rag.evaluate.latency import cpu
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--n", type=int, default=60)
    args = ap.parse_args()

    texts, qrels = load_queries(args.dataset), load_qrels(args.dataset, args.split)
    qs = [t for _, t in judged_queries(texts, qrels)]
    qs = random.Random(0).sample(qs, min(args.n, len(qs)))
    on = Pipeline.from_settings(Settings(index=args.index, cache_enabled=False))
    off = Pipeline(
        on.settings.model_copy(update={"answerability": False}),
        embedder=on.embedder, reranker=on.reranker,
    )
    services = {"answerability": RagService(on), "floor only": RagService(off)}
    for svc in services.values():
        svc.answer(qs[0], no_cache=True)  # warm-up: sessions, caches, threads
    ms: dict[str, list[float]] = {k: [] for k in services}
    for i, q in enumerate(qs):
        order = list(services) if i % 2 == 0 else list(services)[::-1]
        for name in order:
            t = time.perf_counter()
            services[name].answer(q, no_cache=True)
            ms[name].append((time.perf_counter() - t) * 1000)
    diff = [a - b for a, b in zip(ms["answerability"], ms["floor only"], strict=True)]
    rnd = random.Random(1)
    boot = sorted(
        statistics.median(rnd.choices(diff, k=len(diff))) for _ in range(2000)
    )
    print(f"{len(qs)} queries, {cpu()}")
    for name, v in ms.items():
        print(f"  {name:14s} answer p50 {statistics.median(v):.0f} ms")
    print(f"  paired difference p50 {statistics.median(diff):+.1f} ms "
          f"(95 % interval {boot[50]:+.1f} to {boot[1949]:+.1f})")


if __name__ == "__main__":
    main()
