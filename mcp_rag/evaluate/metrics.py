"""Ranking metrics with trec_eval's definitions, and latency percentiles (pure functions).

``qrels`` maps a document id to its graded relevance (> 0 is relevant); ``ranking`` is
the system's document ids, best first, without duplicates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def ndcg_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gain (trec_eval ``ndcg_cut``): sum rel_i / log2(i + 1), i from 1."""
    dcg = sum(qrels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted((r for r in qrels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top k."""
    relevant = {d for d, r in qrels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document in the top k (0 if none)."""
    for i, d in enumerate(ranking[:k], start=1):
        if qrels.get(d, 0) > 0:
            return 1.0 / i
    return 0.0


def docs_from_chunks(chunk_doc_ids: Sequence[str]) -> list[str]:
    """Document ranking from a chunk ranking: each document at the rank of its best chunk."""
    seen: dict[str, None] = {}
    for d in chunk_doc_ids:
        seen.setdefault(d, None)
    return list(seen)


def percentile(xs: Sequence[float], p: float) -> float:
    """The ``p``-th percentile of ``xs`` (linear interpolation), rounded to 0.01; 0.0 if empty."""
    return round(float(np.percentile(xs, p)), 2) if len(xs) else 0.0


def paired_bootstrap_ci(
    a: Sequence[float], b: Sequence[float], resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired queries and its 95 % percentile-bootstrap interval.

    Queries are resampled with replacement ``resamples`` times (Efron & Tibshirani 1993,
    ch. 13; the paired design of Sakai, SIGIR 2006). Seeded: the same inputs give the same
    interval.

    Example:
        >>> paired_bootstrap_ci([0.5, 0.7, 0.9], [0.5, 0.6, 0.7])
        (0.1, 0.0, 0.2)
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) == 0:
        return 0.0, 0.0, 0.0
    idx = np.random.default_rng(seed).integers(0, len(d), size=(resamples, len(d)))
    means = d[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return round(float(d.mean()), 4), round(float(lo), 4), round(float(hi), 4)


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """The 95 % Wilson score interval of ``k`` successes in ``n`` trials (Wilson 1927), as
    [low, high] rounded to 0.001: with 42 questions a rate is known to about ±0.14.

    Example:
        >>> wilson(27, 42)
        [0.492, 0.77]
    """
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, mid - half), 3), round(min(1.0, mid + half), 3)]


def sign_test(a: Sequence[float], b: Sequence[float]) -> tuple[int, int, float]:
    """Wins of ``a`` over ``b``, losses, and the two-sided exact sign-test p-value (ties
    dropped).

    Example:
        >>> sign_test([1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0])
        (5, 0, 0.0625)
    """
    wins = sum(x > y for x, y in zip(a, b, strict=True))
    losses = sum(x < y for x, y in zip(a, b, strict=True))
    n = wins + losses
    if n == 0:
        return 0, 0, 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return wins, losses, float(f"{min(1.0, 2 * tail):.3g}")
