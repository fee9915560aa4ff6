"""Fusion of the first stage (reciprocal rank fusion, Cormack, Clarke & Buettcher, SIGIR 2009;
convex combination) and the reranker blends: pure functions."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def rrf(
    rankings: Mapping[str, Sequence[K]],
    k: int = 60,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[K, float]]:
    """Fuse ranked lists: ``score(d) = sum_i w_i / (k + rank_i(d))``, ranks starting at 1.

    Ties are broken by the best single rank, then by first appearance, so the result is
    deterministic. A list of one ranking comes back in its own order.

    Example:
        >>> rrf({"bm25": ["a", "b"], "dense": ["b", "c"]}, k=60)
        [('b', 0.03252247488101534), ('a', 0.01639344262295082), ('c', 0.016129032258064516)]
    """
    if k < 1:
        raise ValueError(f"k of {k} must be at least 1")
    scores: dict[K, float] = {}
    best: dict[K, int] = {}
    order: dict[K, int] = {}
    for name, ranking in rankings.items():
        w = 1.0 if weights is None else float(weights.get(name, 1.0))
        for rank, key in enumerate(ranking, start=1):
            if key not in order:
                order[key] = len(order)
            if w > 0:
                scores[key] = scores.get(key, 0.0) + w / (k + rank)
            else:
                scores.setdefault(key, 0.0)
            best[key] = min(best.get(key, rank), rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], best[kv[0]], order[kv[0]]))


def blend(
    first_ranks: Sequence[int], logits: Sequence[float], weight: float, k: int = 60
) -> list[tuple[int, float]]:
    """Final order of reranked items: RRF of the cross-encoder rank and the first-stage rank.

    ``score_i = weight / (k + ce_rank_i) + (1 - weight) / (k + first_rank_i)``. The MS MARCO
    cross-encoder alone can lower quality out of its domain (SciFact hybrid 0.726 -> 0.694
    when it orders the top 20 alone), so it is blended with what the first stage knew.
    Returns (position into the input lists, blended score), best first; ties go to the
    better first-stage rank.

    Example:
        >>> [(i, round(s, 4)) for i, s in blend([1, 2], [-3.0, 5.0], weight=0.7, k=10)]
        [(1, 0.0886), (0, 0.0856)]
    """
    order = sorted(range(len(logits)), key=lambda i: -logits[i])
    ce_rank = {i: r for r, i in enumerate(order, start=1)}
    score = [
        weight / (k + ce_rank[i]) + (1 - weight) / (k + first_ranks[i]) for i in range(len(logits))
    ]
    best = sorted(range(len(logits)), key=lambda i: (-score[i], first_ranks[i]))
    return [(i, score[i]) for i in best]


def _minmax(values: Sequence[float]) -> list[float]:
    lo, hi = min(values), max(values)
    return [(v - lo) / (hi - lo) if hi > lo else 0.0 for v in values]


def interpolate(
    first_scores: Sequence[float], logits: Sequence[float], weight: float
) -> list[tuple[int, float]]:
    """Final order of reranked items: ``weight * ce + (1 - weight) * first``, each min-max
    normalised over the reranked items.

    Unlike the rank blend, how far apart two items are counts: a cross-encoder that
    separates the candidates clearly moves them, one whose logits are nearly equal moves
    them little (relative to the first stage's own spread). Chosen over ``blend`` on SciFact
    train and NFCorpus dev together (``research/blend_study.py``). Returns (position into
    the input lists, blended score), best first; ties go to the earlier (better first-stage)
    item.

    Example:
        >>> [(i, round(s, 2)) for i, s in interpolate([0.9, 0.8, 0.2], [-1.0, 4.0, 3.0], 0.3)]
        [(1, 0.9), (0, 0.7), (2, 0.24)]
    """
    if not logits:
        return []
    f, g = _minmax(first_scores), _minmax(logits)
    score = [(1 - weight) * a + weight * b for a, b in zip(f, g, strict=True)]
    best = sorted(range(len(score)), key=lambda i: (-score[i], i))
    return [(i, score[i]) for i in best]


def convex(
    scores: Mapping[str, Mapping[K, float]], weights: Mapping[str, float]
) -> list[tuple[K, float]]:
    """Convex combination of min-max normalised scores: ``sum_i w_i * norm_i(d)``.

    Each list's scores are scaled to [0, 1] over that list (an item a list did not return
    gets 0 from it), so a retriever whose scores do not separate anything (all equal)
    contributes nothing and the order leans on the other. Bruch, Gai & Ingber (TOIS 2023)
    found this fusion beats RRF when tuned; here the weight is chosen on SciFact train and
    NFCorpus dev together (``research/fusion_study.py``). Ties keep first appearance.

    Example:
        >>> convex({"bm25": {"a": 3.0, "b": 1.0}, "dense": {"b": 0.9, "c": 0.5}},
        ...        {"bm25": 0.35, "dense": 0.65})
        [('b', 0.65), ('a', 0.35), ('c', 0.0)]
    """
    total: dict[K, float] = {}
    for name, lst in scores.items():
        w = float(weights.get(name, 0.0))
        if not lst:
            continue
        lo, hi = min(lst.values()), max(lst.values())
        span = hi - lo
        for key, s in lst.items():
            total[key] = total.get(key, 0.0) + (w * (s - lo) / span if span > 0 else 0.0)
    order = {key: i for i, key in enumerate(total)}
    return sorted(total.items(), key=lambda kv: (-kv[1], order[kv[0]]))


V = TypeVar("V")


def choose(table: Mapping[str, V], name: str, what: str) -> V:
    """``table[name]``, or an error that lists the names there are.

    Example:
        >>> choose({"rrf": 1, "convex": 2}, "max", "fusion")
        Traceback (most recent call last):
        ...
        ValueError: unknown fusion 'max': choose one of convex, rrf
    """
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}: choose one of "
                         f"{', '.join(sorted(table))}") from None
