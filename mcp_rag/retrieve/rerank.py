"""The second stage: the cross-encoder reads the first stage's top candidates, its logits
are blended with the first stage's scores (a blend chosen by name from ``BLENDS``), and the
answerability decision (or the relevance floor) says whether anything answers."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from mcp_rag.index.lexical import written_in_cjk
from mcp_rag.ingest.chunking import index_text
from mcp_rag.models.pack import english_only
from mcp_rag.models.rerank import relevance, token_starts
from mcp_rag.retrieve.answerability import Decision, decide
from mcp_rag.retrieve.evidence import (
    LONG_REQUEST,
    asked,
    check,
    examples,
    steps_elsewhere,
    targets,
)
from mcp_rag.retrieve.focus import PAIR_SPECIALS, windows
from mcp_rag.retrieve.fusion import blend, choose, interpolate
from mcp_rag.retrieve.result import SearchResult
from mcp_rag.settings import Settings
from mcp_rag.types import Hit, Reranker, RerankStatus

log = logging.getLogger(__name__)


def _scores(cands: list[Hit], keep: list[int], logits: list[float],
            s: Settings) -> list[tuple[int, float]]:
    return interpolate([cands[i].score for i in keep], logits, s.rerank_weight)


def _rank_rrf(cands: list[Hit], keep: list[int], logits: list[float],
              s: Settings) -> list[tuple[int, float]]:
    return blend([i + 1 for i in keep], logits, s.rerank_weight, s.rerank_rrf_k)


# How the cross-encoder's logits and the first stage combine, by name (Settings.rerank_blend).
BLENDS: dict[str, Callable[[list[Hit], list[int], list[float], Settings],
                           list[tuple[int, float]]]] = {
    "scores": _scores,
    "rrf": _rank_rrf,
}


def passages(first: SearchResult, cands: list[Hit], reranker: Reranker,
             s: Settings) -> list[str]:
    """What the cross-encoder reads of each candidate: its best ``rerank_window``."""
    if not s.rerank_window:
        return [index_text(h.chunk) for h in cands]
    starts = partial(token_starts, reranker)
    question = min(len(starts([first.query])[0]), s.rerank_max_query_tokens)
    weights = {t.stem: t.idf(first.n_chunks) for t in first.terms}
    budget = max(16, s.rerank_window - question - PAIR_SPECIALS)  # a long question
    return windows([h.chunk for h in cands], weights, budget, starts)


def retrievers_agree(hits: list[Hit]) -> bool:
    """BM25 and dense both ranked the first hit first (selective reranking trusts it)."""
    return bool(hits) and hits[0].bm25_rank == 1 and hits[0].dense_rank == 1


@dataclass
class _Scored:
    keep: list[int]  # positions of the candidates the cross-encoder scored
    logits: list[float]
    status: RerankStatus
    reason: str | None


def _score(cands: list[Hit], pairs: list[tuple[str, str]], reranker: Reranker,
           cascade: Reranker | None, s: Settings, timings: dict[str, float]) -> _Scored:
    """Logits for the candidates worth scoring (all; the top one when selective reranking
    trusts the first stage; what the cascade keeps). Raises what the model raises."""
    status, reason = RerankStatus.RERANKED, None
    keep = list(range(len(cands)))
    t = time.perf_counter()
    if s.selective_rerank and retrievers_agree(cands):
        # The first stage is confident: score only its top hit, for the floor.
        keep = [0]
        status = RerankStatus.SKIPPED
        reason = "skipped: BM25 and dense agree on the top hit"
    elif cascade is not None and len(cands) > s.cascade_keep:
        cheap = cascade.predict(pairs)
        keep = sorted(sorted(keep, key=lambda i: -cheap[i])[: s.cascade_keep])
        timings["cascade"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
    logits = reranker.predict([pairs[i] for i in keep]).tolist()
    timings["rerank"] = (time.perf_counter() - t) * 1000
    return _Scored(keep, logits, status, reason)


def _ordered(cands: list[Hit], sc: _Scored, s: Settings) -> list[Hit]:
    """The candidates in their final order, each with its logit and relevance."""
    scored = dict(zip(sc.keep, sc.logits, strict=True))
    if sc.status is RerankStatus.RERANKED:
        blended = choose(BLENDS, s.rerank_blend, "rerank blend")(cands, sc.keep, sc.logits, s)
        order = [(sc.keep[j], score) for j, score in blended]
    else:  # skipped: the first stage's order and scores stand
        order = [(i, h.score) for i, h in enumerate(cands)]
    hits = []
    for i, score in order:
        lg = scored.get(i)
        if lg is None and sc.status is RerankStatus.RERANKED:
            continue  # trimmed by the cascade
        hits.append(replace(cands[i], score=score, first_stage_rank=i + 1, rerank_score=lg,
                            relevance=None if lg is None else relevance(lg)))
    return hits


def _asked_logit(first: SearchResult, cands: list[Hit], reranker: Reranker, s: Settings,
                 timings: dict[str, float]) -> float | None:
    """For a long request, the best logit of what it asks (its first sentence) against the
    candidates: the cross-encoder gives a whole pasted abstract +1 to +3 on unrelated
    passages (research/long_requests.py). None for a short question, or if it fails."""
    if not s.answerability or len(first.query) <= LONG_REQUEST:
        return None
    ask = asked(first.query).rstrip(" .!?")
    t = time.perf_counter()
    try:
        wins = passages(replace(first, query=ask), cands, reranker, s)
        logits = reranker.predict([(ask, w) for w in wins])
    except Exception as e:  # the request's own logits still decide
        log.error("scoring a long request's first sentence failed (%s: %s)",
                  type(e).__name__, e)
        return None
    timings["asked"] = (time.perf_counter() - t) * 1000
    return float(max(logits)) if len(logits) else None


def models_read(question: str, s: Settings) -> bool:
    """Whether the cross-encoder can read ``question``: not one in Chinese, Japanese or
    Korean when it is the pack's (trained on English only)."""
    return not (written_in_cjk(question) and english_only(s.reranker))


def _judged(first: SearchResult, hits: list[Hit], best: float | None, status: RerankStatus,
            s: Settings, k: int, timings: dict[str, float], asked_logit: float | None = None,
            ) -> tuple[list[Hit], list[Hit], Decision | None, bool]:
    """(hits kept, closest when refused: all of ``hits``, the decision, refused): the
    answerability decision where there is a dense similarity to decide with, else the
    relevance floor. ``asked_logit``, for a long request, is the ``ce`` the decision
    weighs; the evidence check reads the best ``k`` hits."""
    floor = s.relevance_floor
    decision = None
    if s.answerability and best is not None and first.nearest is not None:
        t = time.perf_counter()
        decision = decide(first.terms, first.n_chunks, hits, first.calibration, first.nearest,
                          asked_logit, models_read=models_read(first.query, s))
        timings["answerability"] = (time.perf_counter() - t) * 1000
        refuse = not decision.answerable
    else:
        refuse = floor is not None and best is not None and best < floor
    if refuse:
        return [], hits, decision, True
    if floor is not None and best is not None and status is RerankStatus.RERANKED:
        # Passages under the floor are dropped; an answerable decision keeps its top one.
        top = 1 if decision is not None else 0
        hits = hits[:top] + [
            h for h in hits[top:] if h.rerank_score is not None and h.rerank_score >= floor
        ]
    if decision is not None and s.evidence_check:
        t = time.perf_counter()
        e = check(first.terms, first.names, first.n_chunks,
                  [index_text(h.chunk) for h in hits[:k]], targets(first.query, first.names),
                  writes=first.corpus.writes if first.corpus else None,
                  examples=examples(first.query, first.names))
        decision = decision.checked(e, steps_elsewhere=steps_elsewhere(first.query, e))
        timings["evidence"] = (time.perf_counter() - t) * 1000
        if not decision.answerable:
            return [], hits, decision, True
    return hits, [], decision, False


# Passages sharing this share of their word triples are copies of one another (the same
# endpoint in seven versions of an API reference): an answer quotes the best of them only.
# Chosen on Docker's manual (0.5-0.6 alike; 0.8 kept some copies), checked on three others.
COPY_JACCARD = 0.6
_WORDS = re.compile(r"\w+")


def _triples(text: str) -> set[tuple[str, ...]]:
    w = _WORDS.findall(text.casefold())
    return {tuple(w[i:i + 3]) for i in range(max(1, len(w) - 2))}


def _copy(t: set[tuple[str, ...]], seen: list[set[tuple[str, ...]]], threshold: float) -> bool:
    """The word triples ``t`` are a near copy of one of ``seen`` (Jaccard >= threshold)."""
    return any(len(t & o) >= threshold * len(t | o) for o in seen)


def distinct(hits: list[Hit], threshold: float = COPY_JACCARD) -> list[Hit]:
    """``hits`` without the near copies of a better one (word-triple Jaccard at least
    ``threshold``), in order."""
    kept: list[Hit] = []
    seen: list[set[tuple[str, ...]]] = []
    for h in hits:
        t = _triples(h.chunk.text)
        if not _copy(t, seen, threshold):
            kept.append(h)
            seen.append(t)
    return kept


def page_first(hits: list[Hit], threshold: float = COPY_JACCARD) -> list[Hit]:
    """``hits`` with each document's first passage before any document's second one, each
    part in its order: the best passage stays first, and the first ``k`` cover as many
    pages as the list holds (a manual's long page no longer fills a top 3 on its own). A
    near copy of a passage listed before it (``distinct``: the same endpoint in seven
    versions of an API reference) waits with the second passages."""
    seen: set[str] = set()
    shapes: list[set[tuple[str, ...]]] = []
    firsts: list[Hit] = []
    more: list[Hit] = []
    for h in hits:
        t = _triples(h.chunk.text)
        copy = _copy(t, shapes, threshold)
        (more if h.chunk.doc_id in seen or copy else firsts).append(h)
        seen.add(h.chunk.doc_id)
        if not copy:
            shapes.append(t)
    return firsts + more


def shown(hits: list[Hit], k: int, s: Settings) -> list[Hit]:
    """The ``k`` hits ``search`` shows of a ranked list (``page_first`` when set)."""
    return (page_first(hits) if s.page_first else hits)[:k]


def rerank(first: SearchResult, k: int, n: int, reranker: Reranker | None,
           cascade: Reranker | None, s: Settings, unavailable: str | None,
           copies: bool = True) -> SearchResult:
    """Rerank the first ``n`` hits of ``first``, blend, decide, keep ``k``.

    ``copies``: False is ``answer``'s passages: it drops near copies of a better passage
    before the decision and the cut to ``k`` (no point quoting one text three times), and
    keeps the order of the scores. True is ``search``'s list: the ``k`` kept are
    ``shown`` (page by page, after the decision, which reads the best ``k`` by score).

    With no ``reranker`` (``unavailable`` says why) or a failing one, the first stage's
    hits come back with the status and the reason.
    """
    cands = first.hits[:n]
    timings = dict(first.timings_ms)

    def cut(hits: list[Hit]) -> list[Hit]:
        return shown(hits, k, s) if copies else hits[:k]

    if reranker is None:
        return replace(first, hits=cut(first.hits), rerank_status=RerankStatus.UNAVAILABLE,
                       rerank_reason=unavailable)
    if not cands:
        return replace(first, rerank_status=RerankStatus.RERANKED, reranker=reranker.name)
    t = time.perf_counter()
    pairs = list(zip([first.query] * len(cands), passages(first, cands, reranker, s),
                     strict=True))
    timings["focus"] = (time.perf_counter() - t) * 1000
    try:
        sc = _score(cands, pairs, reranker, cascade, s, timings)
    except Exception as e:  # a failing model must not fail the search
        why = f"reranker failed: {type(e).__name__}: {e}"
        log.error("%s; serving first-stage results", why)
        return replace(first, hits=cut(first.hits), rerank_status=RerankStatus.FAILED,
                       rerank_reason=why)
    best = max(sc.logits) if sc.logits else None
    ask = _asked_logit(first, cands, reranker, s, timings) if best is not None else None
    ordered = _ordered(cands, sc, s)
    if not copies:
        ordered = distinct(ordered)
    hits, closest, decision, refused = _judged(first, ordered, best,
                                               sc.status, s, k, timings, ask)
    timings["total"] = sum(v for key, v in timings.items() if key != "total")
    return replace(
        first, hits=cut(hits), rerank_status=sc.status, rerank_reason=sc.reason,
        no_answer=refused, closest=cut(closest), best_score=best, decision=decision,
        reranker=reranker.name,
        timings_ms={key: round(v, 3) for key, v in timings.items()},
    )
