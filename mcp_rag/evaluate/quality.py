"""Per-stage retrieval quality and latency on a BEIR-layout dataset (``mcp-rag eval``).

Stages: ``bm25``, ``dense``, ``hybrid`` (first stages, ranked to 100 distinct documents)
and ``reranked`` (the default pipeline: hybrid -> cross-encoder blend of the top
``rerank_candidates``, no relevance floor, so it measures ranking; the first stage's order
follows, so its recall is counted over as many documents). Chunk results map to
documents by their best chunk. Metrics are trec_eval's (``mcp_rag.evaluate.metrics``).
Each stage is compared with the best other stage query by query: the mean difference
with a paired-bootstrap 95 % interval and an exact sign test, so a "win" is a measured
one. A query longer than the tools accept is cut to the limit with a warning, never
failing the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from mcp_rag.evaluate.beir import DatasetError, judged_queries, load_qrels, load_queries
from mcp_rag.evaluate.metrics import (
    docs_from_chunks,
    mrr_at_k,
    ndcg_at_k,
    paired_bootstrap_ci,
    percentile,
    recall_at_k,
    sign_test,
)
from mcp_rag.index.indexer import Indexer
from mcp_rag.models.pack import sha256_file
from mcp_rag.retrieve.pipeline import MAX_QUERY_CHARS, Pipeline
from mcp_rag.settings import Settings
from mcp_rag.types import Embedder, Hit, Reranker, Stage

STAGES: tuple[Stage, ...] = tuple(Stage)
FIRST_STAGE_DEPTH = 100

log = logging.getLogger(__name__)


def corpus_sha256(path: Path) -> str:
    """Hash of a corpus file, or of every file (path and content) under a corpus folder."""
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path).as_posix()}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def eval_index_dir(base: Path, corpus: Path, embedder_name: str, s: Settings) -> Path:
    """Where the index of this corpus with these settings lives (reused when it exists)."""
    key = json.dumps(
        [corpus_sha256(corpus), embedder_name, s.chunk_tokens, s.chunk_overlap, s.dense_index]
    )
    return base / hashlib.sha256(key.encode()).hexdigest()[:16]


def evaluate(
    dataset: Path,
    settings: Settings,
    embedder: Embedder,
    *,
    stages: Sequence[Stage | str] = STAGES,
    k: int = 10,
    candidates: int | None = None,
    split: str = "test",
    index_base: Path | None = None,
    index_dir: Path | None = None,
    corpus: Path | None = None,
    reranker: Reranker | None = None,
    max_queries: int = 0,
    quiet: bool = True,
) -> dict:
    """Index the corpus (or reuse its index), run every query through each stage.

    The index goes to ``index_dir`` if given, else to ``index_base`` (default INDEX/eval)
    under a key of the corpus hash and the settings that shape an index. ``corpus`` (a
    file or folder to index instead of ``dataset/corpus.jsonl``) lets qrels name documents
    by their path-based ids.
    """
    dataset = Path(dataset)
    unknown = [st for st in stages if st not in set(STAGES)]
    if unknown:
        raise DatasetError(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    chosen = [Stage(st) for st in stages]
    corpus = Path(corpus) if corpus is not None else dataset / "corpus.jsonl"
    if not corpus.exists():
        raise DatasetError(f"{dataset}: no corpus.jsonl")
    candidates = candidates or settings.rerank_candidates
    items, truncated, qrels = _judged(dataset, split, max_queries)
    if index_dir is None:
        base = index_base or settings.index / "eval"
        index_dir = eval_index_dir(base, corpus, embedder.name, settings)
    t = time.perf_counter()
    report = Indexer(settings.model_copy(update={"index": index_dir}), embedder).index(
        [corpus], quiet=quiet)
    build_s = time.perf_counter() - t
    first = settings.model_copy(update={
        "index": index_dir, "candidates": max(settings.candidates, FIRST_STAGE_DEPTH),
        "max_chunks_per_doc": 1, "rerank": False,
    })
    out: dict = {
        "dataset": str(dataset),
        "split": split,
        "queries": len(items),
        "truncated_queries": truncated,
        "settings": {"k": k, "candidates": candidates, "embedder": embedder.name,
                     "chunk_tokens": settings.chunk_tokens, "rrf_k": settings.rrf_k},
        "index": {"dir": str(index_dir), "reused": not report.changed,
                  "docs": report.added + report.unchanged, "build_seconds": round(build_s, 1)},
        "stages": {},
        "latency_ms": {},
        "per_query": {},
    }
    p = Pipeline(first, embedder=embedder, reranker=None)
    for stage in chosen:
        if stage is Stage.RERANKED:
            # Ranking quality: every query gets its ranked list, no refusals.
            rs = settings.model_copy(update={"index": index_dir, "rerank": True,
                                             "relevance_floor": None, "answerability": False})
            rp = Pipeline.from_settings(rs, embedder=embedder, reranker=reranker)
            if rp.reranker is None:
                raise DatasetError(f"the reranked stage needs a reranker: {rp.rerank_error}")
            ranked = partial(_reranked, rp, candidates)
        else:
            ranked = partial(_first_stage, p, stage)
        nd, r100 = _measure(stage, items, qrels, k, ranked, out, quiet)
        out["per_query"][stage] = {
            qid: {f"ndcg@{k}": round(a, 4), f"recall@{FIRST_STAGE_DEPTH}": round(b, 4)}
            for (qid, _), a, b in zip(items, nd, r100, strict=True)
        }
    st = out["stages"]
    if "reranked" in st and "hybrid" in st:
        out["precision_gap"] = round(st["reranked"][f"ndcg@{k}"] - st["hybrid"][f"ndcg@{k}"], 4)
    out["comparison"] = compare_stages(out["per_query"], f"ndcg@{k}")
    return out


def _judged(dataset: Path, split: str, max_queries: int
            ) -> tuple[list[tuple[str, str]], list[str], dict[str, dict[str, int]]]:
    """The judged queries (cut to the tools' limit, the ids of those cut) and the qrels."""
    queries, qrels = load_queries(dataset), load_qrels(dataset, split)
    items = judged_queries(queries, qrels)[: max_queries or None]
    if not items:
        raise DatasetError(f"{dataset}: no query in queries.jsonl has qrels in {split}.tsv")
    truncated = [q for q, text in items if len(text) > MAX_QUERY_CHARS]
    for q in truncated:
        log.warning("query %s has %d characters, over the tools' limit of %d: evaluated on "
                    "its first %d", q, len(queries[q]), MAX_QUERY_CHARS, MAX_QUERY_CHARS)
    return [(q, text[:MAX_QUERY_CHARS]) for q, text in items], truncated, qrels


def _first_stage(p: Pipeline, stage: Stage, text: str) -> tuple[list[Hit], float]:
    t = time.perf_counter()
    res = p.retrieve(text, FIRST_STAGE_DEPTH, mode=stage)
    return res.hits, (time.perf_counter() - t) * 1000


def _reranked(rp: Pipeline, candidates: int, text: str) -> tuple[list[Hit], float]:
    """The served order of the top ``candidates``, then the first stage's order (as many
    documents as the other stages get); the time is the served search's."""
    t = time.perf_counter()
    res = rp.search(text, k=min(50, candidates), candidates=candidates)
    ms = (time.perf_counter() - t) * 1000
    seen = {h.chunk.chunk_id for h in res.hits}
    rest = rp.retrieve(text, FIRST_STAGE_DEPTH).hits
    return res.hits + [h for h in rest if h.chunk.chunk_id not in seen], ms


def _measure(stage: Stage, items: list[tuple[str, str]], qrels: dict[str, dict[str, int]],
             k: int, ranked: Callable[[str], tuple[list[Hit], float]], out: dict,
             quiet: bool) -> tuple[list[float], list[float]]:
    """Every query through ``ranked``: the stage's metrics and latency into ``out``; its
    per-query nDCG@k and Recall@100."""
    nd, mrr, r10, r100, ms = [], [], [], [], []
    for qid, text in _progress(items, stage, quiet):
        hits, took = ranked(text)
        ms.append(took)
        ranking = docs_from_chunks([h.chunk.doc_id for h in hits])
        rel = qrels[qid]
        nd.append(ndcg_at_k(ranking, rel, k))
        mrr.append(mrr_at_k(ranking, rel, k))
        r10.append(recall_at_k(ranking, rel, k))
        r100.append(recall_at_k(ranking, rel, FIRST_STAGE_DEPTH))
    row = {f"ndcg@{k}": statistics.mean(nd), f"mrr@{k}": statistics.mean(mrr),
           f"recall@{k}": statistics.mean(r10)}
    if stage is not Stage.RERANKED:
        row[f"recall@{FIRST_STAGE_DEPTH}"] = statistics.mean(r100)
    out["stages"][stage] = {key: round(v, 4) for key, v in row.items()}
    out["latency_ms"][stage] = {"p50": percentile(ms, 50), "p95": percentile(ms, 95)}
    return nd, r100


def compare_stages(per_query: dict[str, dict[str, dict[str, float]]], metric: str) -> dict:
    """Each stage against the best other stage (by mean ``metric``), query by query.

    Returns ``{stage: {"vs", "diff", "ci95": [lo, hi], "wins", "losses", "sign_p"}}``.
    """
    means = {s: statistics.mean(r[metric] for r in rows.values())
             for s, rows in per_query.items()}
    out = {}
    for stage, rows in per_query.items():
        others = [s for s in means if s != stage]
        if not others:
            continue
        best = max(others, key=means.__getitem__)
        qids = sorted(rows)
        a = [rows[q][metric] for q in qids]
        b = [per_query[best][q][metric] for q in qids]
        diff, lo, hi = paired_bootstrap_ci(a, b)
        wins, losses, p = sign_test(a, b)
        out[stage] = {"vs": best, "diff": diff, "ci95": [lo, hi], "wins": wins,
                      "losses": losses, "sign_p": p}
    return out


def _progress(items: list[tuple[str, str]], stage: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(items, desc=f"eval {stage}", unit="query", file=sys.stderr, disable=quiet,
                leave=False)


def render_table(result: dict, k: int = 10) -> str:
    cols = [f"ndcg@{k}", f"mrr@{k}", f"recall@{k}", f"recall@{FIRST_STAGE_DEPTH}"]
    lines = [
        f"{result['dataset']} ({result['split']}, {result['queries']} queries)",
        "| stage | " + " | ".join(cols) + f" | ndcg@{k} vs best other [95% CI] | sign p "
        "| p50 ms | p95 ms |",
        "|---" * (len(cols) + 5) + "|",
    ]
    comparison = result.get("comparison", {})
    for stage, row in result["stages"].items():
        lat = result["latency_ms"][stage]
        cells = [f"{row[c]:.3f}" if c in row else "–" for c in cols]
        c = comparison.get(stage)
        vs = (f"{c['diff']:+.3f} vs {c['vs']} [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]"
              if c else "–")
        p = c["sign_p"] if c else 1.0
        sign = (("<0.001" if p < 0.001 else f"{p:.3g}") + f" ({c['wins']}/{c['losses']})"
                if c else "–")
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {vs} | {sign} | {lat['p50']} "
                     f"| {lat['p95']} |")
    if result.get("truncated_queries"):
        lines.append(f"\n{len(result['truncated_queries'])} queries over {MAX_QUERY_CHARS} "
                     f"characters were cut to the limit: {', '.join(result['truncated_queries'])}")
    if "precision_gap" in result:
        gap = result["precision_gap"]
        lines.append(f"\nprecision gap (reranked - hybrid nDCG@{k}): {gap:+.4f}")
    return "\n".join(lines)


def compare_to_baseline(
    results: dict[str, dict[str, float]],
    baseline: dict[str, dict[str, float]],
    tolerance: float = 0.02,
) -> list[str]:
    """Regressions: every (golden set, stage) whose score fell more than ``tolerance``.

    A set or stage missing from the results counts as a regression; scores above the
    baseline never fail (raise the baseline on purpose, with ``benchmarks/gate.py --update``).
    """
    failures = []
    for name, stages in baseline.items():
        for stage, want in stages.items():
            got = results.get(name, {}).get(stage)
            if got is None:
                failures.append(f"{name}/{stage}: not measured (baseline {want:.4f})")
            elif got < want - tolerance:
                failures.append(
                    f"{name}/{stage}: nDCG@10 {got:.4f} is {want - got:.4f} under the baseline "
                    f"{want:.4f} (tolerance {tolerance})"
                )
    return failures
