"""How long an incremental run takes in a long-lived process (`watch`, `serve --watch`).

    python benchmarks/incremental.py [--rounds 16]

Indexes a copy of the sample knowledge base, then, round after round, writes one new file
and runs the incremental update, as the watcher does after its debounce. Alternate rounds
clear the per-process cache of the out-of-scope bank's query vectors first
(``index.scope._BANK``), so the two arms, "bank embedded for every generation" (before)
and "bank embedded once per process" (now), are measured A/B on the same machine and
index. Prints each arm's median and their ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from mcp_rag.evaluate.latency import cpu
from mcp_rag.index import scope
from mcp_rag.index.update import index_paths
from mcp_rag.models.embedding import load_embedder
from mcp_rag.models.pack import resolve
from mcp_rag.settings import Settings

SAMPLE = Path(__file__).resolve().parents[1] / "mcp_rag" / "sample"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=16)
    args = ap.parse_args()
    s = Settings()
    emb = load_embedder(resolve(s.embedder, s.models, "embedder"), threads=s.threads)
    times: dict[str, list[float]] = {"bank embedded per generation": [], "bank cached": []}
    with tempfile.TemporaryDirectory() as tmp:
        kb, index = Path(tmp) / "kb", Path(tmp) / "index"
        shutil.copytree(SAMPLE, kb)
        index_paths(index, [kb], emb, quiet=True)
        for i in range(args.rounds):
            arm = list(times)[i % 2]
            if i % 2 == 0:
                scope._BANK.clear()
            (kb / f"new-{i}.md").write_text(
                f"# Note {i}\n\nVisitors park on level {i} of the garage.\n")
            t = time.perf_counter()
            index_paths(index, [kb], emb, quiet=True)
            times[arm].append((time.perf_counter() - t) * 1000)
    print(f"one new file, incremental run in the same process ({cpu()}):")
    for arm, v in times.items():
        print(f"  {arm}: median {statistics.median(v):.0f} ms ({min(v):.0f}-{max(v):.0f}, "
              f"n {len(v)})")
    a, b = (statistics.median(v) for v in times.values())
    print(f"  ratio {a / b:.2f}x")


if __name__ == "__main__":
    main()
