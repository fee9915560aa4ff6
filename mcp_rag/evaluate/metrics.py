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
