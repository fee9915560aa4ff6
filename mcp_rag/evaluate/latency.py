"""Latency of every stage, end to end, on your own index (``mcp-rag bench``).

For each query, in one process with the models loaded once, it runs: each first stage on
its own (``bm25``, ``dense``, ``hybrid``), the ``search`` tool's logic with the cache off
(per-stage timings: query embedding, BM25, FAISS, fusion, fetch, rerank), the same call
again as a cache hit, and the ``answer`` tool's logic with the cache off. It reports
p50/p95 per stage, queries per second (one client, back to back) and the process's peak
memory. With relevance judgements (a BEIR dataset whose corpus is the index) it adds
nDCG@10 per stage, so quality and latency can be read side by side.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from mcp_rag.app.service import RagService
from mcp_rag.errors import QueryError
from mcp_rag.evaluate.metrics import docs_from_chunks, ndcg_at_k, percentile
from mcp_rag.ingest.chunking import split_sentences
from mcp_rag.models.onnx_runner import cpu_flags
from mcp_rag.types import Mode

FIRST_STAGES = (Mode.BM25, Mode.DENSE, Mode.HYBRID)
# Stages in the order a query meets them; "search"/"answer" are end to end.
STAGE_ORDER = (
    "embed_query", "bm25", "dense", "fusion", "fetch", "focus", "rerank", "sentences", "cache_hit",
    "search:bm25", "search:dense", "search:hybrid", "search", "answer",
)


def cpu() -> str:
    """This machine's CPU as timings should name it: model, cores and the vector
    instructions that decide int8 speed (``AMD EPYC, 2 cores, avx2 avx512f avx512_vnni``)."""
    name, flags = cpu_flags()
    feats = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return f"{name}, {os.cpu_count()} cores" + (f", {' '.join(feats)}" if feats else "")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB.

    Linux: ``VmHWM`` from /proc (``ru_maxrss`` survives exec, so a process started by a
    big parent would report the parent's peak); elsewhere ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def read_queries(path: Path) -> list[str]:
    """Queries from a text file (one a line) or a JSONL file (``text`` or ``query`` field)."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                row = json.loads(line)
                out.append(str(row.get("text") or row["query"]))
            except (ValueError, KeyError, AttributeError) as e:
                raise QueryError(f"{path}:{n}: expected JSON with a 'text' field ({e})") from e
        else:
            out.append(line.strip())
    if not out:
        raise QueryError(f"{path} has no queries")
    return out


def sample_queries(svc: RagService, n: int, seed: int = 0) -> list[str]:
    """``n`` sentences drawn from the indexed chunks (seeded): queries any index can answer."""
    rng = random.Random(seed)
    out = []
    for c in svc.catalog.sample_chunks(n * 3, rng):
        sents = [c.text[s.start : s.end] for s in split_sentences(c.text)]
        sents = [s for s in sents if 5 <= len(s.split()) <= 40]
        if sents:
            out.append(rng.choice(sents))
        if len(out) == n:
            break
    if not out:
        raise QueryError("no sentence in the index is usable as a query: pass --queries FILE")
    return out


def run_bench(
    svc: RagService,
    queries: Sequence[str],
    qrels: Sequence[Mapping[str, int] | None] | None = None,
    *,
    k: int = 10,
    answer: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Time every stage on ``queries`` (and score them when ``qrels[i]`` judges query i).

    Returns ``{"queries", "latency_ms": {stage: {"p50", "p95", "n"}}, "queries_per_s":
    {"search", "search:hybrid"}, "peak_rss_mb", "ndcg@10": {stage: value}}`` (the last
    only with qrels; ``reranked`` is the search as served, relevance floor included).
    """
    if not queries:
        raise QueryError("no queries to run")
    p = svc.pipeline
    ms: dict[str, list[float]] = defaultdict(list)
    ndcg: dict[str, list[float]] = defaultdict(list)
    judged = qrels is not None
    for i, q in enumerate(queries):
        rel = qrels[i] if qrels is not None else None
        for mode in FIRST_STAGES:
            t = time.perf_counter()
            res = p.retrieve(q, k, mode=mode)
            ms[f"search:{mode}"].append((time.perf_counter() - t) * 1000)
            if rel is not None:
                ndcg[mode].append(ndcg_at_k(docs_from_chunks([h.chunk.doc_id for h in res.hits]),
                                            rel, k))
        t = time.perf_counter()
        out = svc.search(q, k=k, no_cache=True)  # still stores the result: the next call hits
        ms["search"].append((time.perf_counter() - t) * 1000)
        for stage, v in out.timings_ms.items():
            if stage != "total":
                ms[stage].append(v)
        if rel is not None:
            ndcg["reranked"].append(ndcg_at_k(docs_from_chunks([r.doc_id for r in out.results]),
                                              rel, k))
        if svc.cache is not None:
            t = time.perf_counter()
            if svc.search(q, k=k).cached:  # not when the search was degraded (uncacheable)
                ms["cache_hit"].append((time.perf_counter() - t) * 1000)
        if answer:
            t = time.perf_counter()
            a = svc.answer(q, no_cache=True)
            ms["answer"].append((time.perf_counter() - t) * 1000)
            if "sentences" in a.timings_ms:
                ms["sentences"].append(a.timings_ms["sentences"])
        if progress is not None:
            progress(i + 1, len(queries))
    latency = {
        s: {"p50": percentile(ms[s], 50), "p95": percentile(ms[s], 95), "n": len(ms[s])}
        for s in STAGE_ORDER if ms.get(s)
    }
    result = {
        "index": str(p.settings.index),
        "queries": len(queries),
        "models": {"embedder": p.embedder.name,
                   "reranker": p.reranker.name if p.reranker else None},
        "latency_ms": latency,
        "queries_per_s": {
            s: round(1000 * len(ms[s]) / sum(ms[s]), 2) for s in ("search", "search:hybrid")
        },
        "peak_rss_mb": peak_rss_mb(),
        "cpu": cpu(),
    }
    if judged and ndcg:
        result[f"ndcg@{k}"] = {s: round(statistics.mean(v), 4) for s, v in ndcg.items()}
    return result


def render(result: dict) -> str:
    lines = [
        f"{result['queries']} queries on {result['index']} "
        f"(embedder {result['models']['embedder']}, reranker {result['models']['reranker']}; "
        f"CPU {result['cpu']})",
        "| stage | p50 ms | p95 ms |",
        "|---|---|---|",
    ]
    for stage, v in result["latency_ms"].items():
        lines.append(f"| {stage} | {v['p50']:.2f} | {v['p95']:.2f} |")
    qps = result["queries_per_s"]
    lines.append(
        f"\nqueries/s (one client): search {qps['search']}, first stage (hybrid) "
        f"{qps['search:hybrid']}; peak memory {result['peak_rss_mb']} MB"
    )
    if "ndcg@10" in result:
        lines.append("nDCG@10: " + ", ".join(f"{s} {v:.3f}" for s, v in result["ndcg@10"].items()))
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Latency per stage (p50 bar, p95 tick) and, with nDCG, quality against latency."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(
            "--plot needs matplotlib: pip install 'mcp-rag-server[plot]' "
                "(or pip install matplotlib)"
        ) from e
    lat = result["latency_ms"]
    stages = list(lat)
    quality = result.get("ndcg@10")
    fig, axes = plt.subplots(1, 2 if quality else 1, figsize=(12 if quality else 7, 5),
                             squeeze=False)
    ax = axes[0][0]
    y = np.arange(len(stages))
    ax.barh(y, [lat[s]["p50"] for s in stages], color="#4c72b0", label="p50")
    ax.scatter([lat[s]["p95"] for s in stages], y, marker="|", s=200, color="black",
               label="p95")
    ax.set_yticks(y, stages)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log scale)")
    ax.set_title(f"Latency per stage, {result['queries']} queries")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    if quality:
        ax = axes[0][1]
        key = {"bm25": "search:bm25", "dense": "search:dense", "hybrid": "search:hybrid",
               "reranked": "search"}
        for stage, nd in quality.items():
            x = lat[key[stage]]["p50"]
            ax.scatter([x], [nd], s=60)
            ax.annotate(stage, (x, nd), textcoords="offset points", xytext=(6, 4))
        ax.set_xscale("log")
        ax.set_xlabel("p50 latency, ms (log scale)")
        ax.set_ylabel("nDCG@10")
        ax.set_title("Quality against latency")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
