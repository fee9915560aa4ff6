"""Reciprocal Rank Fusion (Cormack, Clarke & Buettcher, SIGIR 2009): pure functions."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence


def rrf(
    rankings: Mapping[str, Sequence[Hashable]],
    k: int = 60,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[Hashable, float]]:
    """Fuse ranked lists: ``score(d) = sum_i w_i / (k + rank_i(d))``, ranks starting at 1.

    Ties are broken by the best single rank, then by first appearance, so the result is
    deterministic. A list of one ranking comes back in its own order.

    Example:
        >>> rrf({"bm25": ["a", "b"], "dense": ["b", "c"]}, k=60)
        [('b', 0.03252247488101534), ('a', 0.01639344262295082), ('c', 0.016129032258064516)]
    """
    if k < 1:
        raise ValueError(f"k of {k} must be at least 1")
    scores: dict[Hashable, float] = {}
    best: dict[Hashable, int] = {}
    order: dict[Hashable, int] = {}
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
