"""The answer policy: from a search result to an answer, a refusal, or a fallback.

One place decides what ``answer`` says: refuse when the search found nothing that clears
the relevance floor or the answerability decision; otherwise ask the configured LLM
endpoint (when there is one), and fall back to quoting sentences (extractive) when it
fails; say why whenever the answer is not what was configured. The service turns the
``Composed`` result into the tool's output; this module knows nothing of MCP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from mcp_rag.answer.extractive import Run, extractive
from mcp_rag.answer.generated import ChatClient, LLMError, generated
from mcp_rag.ingest.chunking import index_text
from mcp_rag.models.rerank import relevance
from mcp_rag.retrieve.answerability import Decision
from mcp_rag.retrieve.evidence import (
    check,
    examples,
    how_to,
    lacking,
    rare_words,
    steps_elsewhere,
    steps_inside,
    targets,
    weighed,
)
from mcp_rag.retrieve.pipeline import SearchResult
from mcp_rag.types import Chunk, Embedder, Hit, Reranker

log = logging.getLogger(__name__)

NO_ANSWER = "The indexed documents do not contain an answer to this question"
DO_NOT_GUESS = " Do not answer it from memory as if it came from them."


def still_building(coverage: float) -> str:
    """What a refusal adds while a first index is being embedded."""
    return (f"the index is still being built ({coverage:.0%} of the passages are embedded), "
            f"so ask again when it is complete")


@dataclass(frozen=True)
class AnswerPolicy:
    """How sentences are chosen, and the floor a refusal names (from ``Settings``)."""

    budget: int  # at most this many sentences quoted
    margin: float  # sentences within this many logits of the best are quoted too
    min_score: float  # and only over this logit
    relevance_floor: float | None
    dense_share: float = 0.0  # the embedder's share in choosing them (``extractive.with_dense``)


@dataclass
class Composed:
    """What ``answer`` says, before it becomes the tool's output.

    ``citations`` pairs each marker number [n] with what it cites: a whole passage
    (generated answers) or a run of quoted sentences (extractive ones).
    """

    answered: bool
    mode: Literal["extractive", "generated"]
    text: str
    sources: list[Hit]
    citations: list[tuple[int, Hit | Run]] = field(default_factory=list)
    confidence: float | None = None
    fallback: str | None = None  # why the answer is not what was configured
    no_answer_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    cacheable: bool = True
    missing: tuple[str, ...] = ()  # what the question names that the passages never mention
    decision: Decision | None = None  # the search's decision, once the quotes were checked

    @property
    def state(self) -> Literal["answered", "partial", "refused"]:
        return "refused" if not self.answered else "partial" if self.missing else "answered"


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 3)


def _joined(*why: str | None) -> str | None:
    return "; ".join(x for x in why if x) or None


def compose(
    question: str, r: SearchResult, reranker: Reranker | None, llm: ChatClient | None,
    policy: AnswerPolicy, embedder: Embedder | None = None,
) -> Composed:
    """The answer to ``question`` (normalised) from the search result ``r``.

    ``reranker`` scores sentences when ``r`` says it works, and ``embedder`` (the index's)
    judges them too when ``policy.dense_share`` is set; ``llm`` writes the answer when
    configured, falling back to extractive if it fails or cites a passage it was not given.
    """
    timings = dict(r.timings_ms)
    cacheable = r.rerank_status.cacheable
    if r.no_answer or not r.hits:
        return _refusal(r, policy, timings, cacheable)
    scored = [h.relevance for h in r.hits if h.relevance is not None]
    confidence = (r.decision.confidence if r.decision is not None
                  else max(scored) if scored else None)
    # The cross-encoder scores sentences unless it is missing or failed just now.
    ce = reranker if r.rerank_status.model_works else None
    unchecked = None if ce else (
        f"not reranked ({r.rerank_reason}): nothing checked that the passages answer "
        f"the question"
    )
    fallback = unchecked and unchecked + "; sentences were picked by the words they share with it"
    ev = r.decision.evidence if r.decision is not None else None
    missing, note = (ev.lacks, f"\n\nPartial answer: {ev.reason()}.") if ev and ev.missing \
        else ((), "")
    if llm is not None:
        done, why = _by_llm(question, r, llm, policy, timings, cacheable, confidence,
                            unchecked, missing, note)
        if done is not None:
            return done
        fallback, cacheable = _joined(why, fallback), False  # the endpoint may be back
    t = time.perf_counter()
    try:
        text, runs = extractive(question, r.hits, ce, budget=policy.budget,
                                margin=policy.margin, min_score=policy.min_score,
                                corpus=r.corpus, embedder=embedder,
                                dense_share=policy.dense_share, query_vector=r.query_vector)
    except Exception as e:  # the cross-encoder failed on sentences: degrade, not fail
        log.error("sentence scoring failed (%s: %s); picking by shared words",
                  type(e).__name__, e)
        text, runs = extractive(question, r.hits, None, budget=policy.budget,
                                margin=policy.margin, min_score=policy.min_score,
                                corpus=r.corpus)
        cacheable = False
        fallback = _joined(
            f"reranker failed on sentences ({type(e).__name__}: {e}): they were picked by the "
            f"words they share with the question", fallback)
    timings["sentences"] = _ms(t)
    if not runs:
        text, missing = (f"{NO_ANSWER}: no sentence of the top passages shares a word with "
                         f"it.{DO_NOT_GUESS}"), ()
    # the passages the sentences come from (a heading's passage fetched for it is not read)
    hit_ids = {h.chunk.chunk_id for h in r.hits}
    quoted = _texts(run.chunk for run in runs if run.chunk.chunk_id in hit_ids)
    unnamed = _unnamed(question, r, quoted)
    if unnamed is not None:
        return _refusal(unnamed, policy, timings, cacheable)
    t = time.perf_counter()
    decision = _weighed(question, r, runs, quoted, ce)
    timings["weighed"] = _ms(t)
    if decision is not None and not decision.answerable:
        return _refusal(_refused(r, decision), policy, timings, cacheable)
    if decision is not None and decision.evidence is not None:
        missing, note = decision.evidence.lacks, \
            f"\n\nPartial answer: {decision.evidence.reason()}."
    return Composed(
        answered=bool(runs), mode="extractive", text=text + note if runs else text,
        sources=r.hits, citations=list(enumerate(runs, start=1)), fallback=fallback,
        confidence=confidence, timings_ms=timings, cacheable=cacheable, missing=missing,
        decision=decision or r.decision,
    )


def _by_llm(
    question: str, r: SearchResult, llm: ChatClient, policy: AnswerPolicy,
    timings: dict[str, float], cacheable: bool, confidence: float | None,
    unchecked: str | None, missing: tuple[str, ...], note: str,
) -> tuple[Composed | None, str | None]:
    """The answer ``llm`` writes from ``r``'s passages (or a refusal: it cited none, or
    the passages it cited name none of what a how-to question names); or None and why
    the extractive answer is given instead (the endpoint failed)."""
    t = time.perf_counter()
    try:
        text, cited = generated(question, r.hits, llm.complete)
    except LLMError as e:
        log.warning("generated answer dropped: %s", e)
        timings["generate"] = _ms(t)
        return None, f"{e}; the extractive answer is given instead"
    timings["generate"] = _ms(t)
    if not cited:
        return Composed(
            answered=False, mode="generated", sources=r.hits, fallback=unchecked,
            text=f"{NO_ANSWER}: {llm.model} found none in the top {len(r.hits)} "
            f"passages.{DO_NOT_GUESS}", confidence=confidence, timings_ms=timings,
            cacheable=cacheable, decision=r.decision,
        ), None
    unnamed = _unnamed(question, r, _texts(r.hits[n - 1].chunk for n in cited))
    if unnamed is not None:
        return _refusal(unnamed, policy, timings, cacheable), None
    return Composed(
        answered=True, mode="generated", text=text + note, sources=r.hits,
        citations=[(n, r.hits[n - 1]) for n in cited], fallback=unchecked,
        confidence=confidence, timings_ms=timings, cacheable=cacheable,
        missing=missing, decision=r.decision,
    ), None


def _texts(chunks: Iterable[Chunk]) -> list[str]:
    """What the evidence check reads of the passages quoted (title, section, text), each
    passage once."""
    return [index_text(c) for c in dict.fromkeys(chunks)]


def _weighed(question: str, r: SearchResult, runs: list[Run], quoted: list[str],
             ce: Reranker | None) -> Decision | None:
    """The search's decision, its evidence with the rare words of a how-to question that
    the quoted passages lack and the cross-encoder weighs on the best quote
    (``evidence.weighed``: "How do I create a materialized view?" answered from CREATE
    VIEW is partial, naming "materialized"), and the lower-case tools it asks its steps
    with that they lack (``evidence.tools``: "... with kubectl?" of Docker's manual);
    one it asks its steps *in* ("... in nginx?" of Apache httpd's manual) is what they are
    for, and the decision is then a refusal (not ``answerable``). None: nothing to add."""
    d = r.decision
    if ce is None or d is None or d.evidence is None or not runs or not how_to(question):
        return None
    focal = {f.casefold() for f in d.evidence.focal}
    asked = [t for t in r.tools if t.word.casefold() not in focal]
    rare = [t for t in rare_words(r.terms, r.names, r.n_chunks)
            if t.word.casefold() not in focal and t not in asked]
    missing = lacking(asked + rare, quoted)  # the quoted passages read once for both
    found = [t for t in missing if t in asked]
    words = [t for t in missing if t not in asked]
    done_in = set(steps_inside(question))
    inside = [t for t in found if t.word.casefold() in done_in]
    if words:
        best = max(runs, key=lambda x: float("-inf") if x.score is None else x.score)
        found += weighed(question, best.quote, words, ce)
    if not found:
        return None
    e = d.evidence.weighing(found, inside)
    # a tool the steps are done in, which the quotes lack, refuses: "... in nginx?"
    return d.checked(e, steps_elsewhere=steps_elsewhere(question, e)) if inside \
        else replace(d, evidence=e)


def _unnamed(question: str, r: SearchResult, quoted: list[str]) -> SearchResult | None:
    """``r`` turned into a refusal when ``question`` asks how to do something and the
    passages the answer quotes (``quoted``: ``_texts``) name none of what it names, where
    that is what the steps are for (``evidence.steps_elsewhere``; None: the answer
    stands).

    The search checked its top passages; one of them may name the product in passing
    ("PostgreSQL enforces this at commit") while the quotes explain the task for this
    one: the steps quoted are for another product."""
    d = r.decision
    if d is None or d.evidence is None or not d.evidence.focal or not quoted \
            or not how_to(question):
        return None
    e = check(r.terms, r.names, r.n_chunks, quoted, targets(question, r.names),
              writes=r.corpus.writes if r.corpus else None,
              examples=examples(question, r.names))
    checked = d.checked(e, steps_elsewhere=steps_elsewhere(question, e))
    return None if checked.answerable else _refused(r, checked)


def _refused(r: SearchResult, decision: Decision) -> SearchResult:
    """``r`` as a refusal by ``decision``: no hits, its passages listed as the closest."""
    return replace(r, hits=[], no_answer=True, closest=r.hits, decision=decision)


def _refusal(
    r: SearchResult, policy: AnswerPolicy, timings: dict[str, float], cacheable: bool
) -> Composed:
    """Nothing cleared the floor or the answerability decision: say why, plainly."""
    why: str | None = None
    confidence: float | None = None
    if r.decision is not None:
        why, confidence = r.decision.reason(r.best_score), r.decision.confidence
    elif r.best_score is not None:
        why = (f"best cross-encoder score {r.best_score:.2f}, under the relevance floor of "
               f"{policy.relevance_floor}")
        confidence = relevance(r.best_score)
    if r.coverage < 1:  # a first index still being embedded: say so, it may change
        why = _joined(why or "no passage matched", still_building(r.coverage))
    return Composed(
        answered=False, mode="extractive", sources=r.closest,
        text=NO_ANSWER + (f": {why}" if why else "") + "." + DO_NOT_GUESS,
        no_answer_reason=why or "no passage matched", confidence=confidence,
        timings_ms=timings, cacheable=cacheable, decision=r.decision,
    )
