"""Does this index hold the answer? The decision behind ``answered: false``.

The best cross-encoder logit alone does not carry across corpora: a question from a
neighbouring field shares its vocabulary and register, and a logit that means "off topic"
on one corpus means "answered" on another. The decision weighs signals that were measured
to carry (research/answerability_study.py; docs, Abstention):

- ``ce``: the best cross-encoder logit of the reranked candidates; for a request over
  ``evidence.LONG_REQUEST`` characters, the best logit of its first sentence (what it
  asks) against the same candidates, since a whole pasted abstract gets +1 to +3 on
  unrelated passages (``research/long_requests.py``);
- ``dense_pos``: the question's similarity to its nearest chunk on this corpus's own scale
  (0 where the shipped out-of-scope questions land, 1 where pseudo-questions made from the
  corpus land; calibrated when the index is built, see ``index.scope``);
- ``unknown``: the share of the question's idf mass carried by words the corpus never
  mentions ("librarians" in an aerodynamics collection). Given the two above it adds
  nothing a linear model can use (its fitted weight came out with the wrong sign), so it
  is a veto instead: a question the corpus does not know most of the rare words of is
  refused unless the cross-encoder is sure. The veto cost no in-scope question on the
  development pairs and it is what catches a neighbouring field's question
  ("automation of libraries" asked of an engineering collection);
- ``cover``: the idf-weighted share of the question's words the best passages contain
  (measured, reported, not weighted: it did not carry once ``ce`` was known).

A logistic model with fixed weights, fitted on pairs from three collections (never one
alone, never a test split; ``research/answerability_study.py``), turns them into
``score``, the probability that the question is in scope; a question is answered when
``score >= THRESHOLD`` and the veto does not apply. A second fixed model over the same
inputs gives ``confidence``: the probability that the cited passages support the answer
(fitted on whether a judged-relevant document is among them; the Abstention docs page has its
reliability table).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from mcp_rag.index.lexical import tokenize
from mcp_rag.index.scope import Term, unknown_share
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve.evidence import Evidence, State
from mcp_rag.types import Hit

# Fitted by `research/answerability_study.py study` on SciFact train, NFCorpus dev and
# the sample's questions against the out-of-scope bank and each other (docs, Abstention).
# Leave-one-corpus-out, the same features refused 0.96-1.00 of the held-out out-of-scope
# questions and answered 0.97 (SciFact), 1.00 (sample) and 0.85 (NFCorpus's keyword
# titles, many naming things the corpus never mentions) of the in-scope ones.
IN_SCOPE = {"bias": 0.588, "ce": 0.487, "dense_pos": 3.128}
SUPPORTED = {"bias": -1.206, "ce": 0.323, "dense_pos": 2.003}
THRESHOLD = 0.5
# A confidence under this is said with the answer (``serve.render``): the quotes may share
# only words with the question. Of the wrong answers ten manuals gave to other manuals'
# questions, 0.65 came under it, of their own answers 0.05 (research/cross_manuals.py;
# docs, Abstention, "Another manual's questions").
LOW_CONFIDENCE = 0.5
VETO_UNKNOWN = 0.5  # share of the question's idf mass the corpus never mentions ...
VETO_CE = -1.0  # ... refuses unless the best cross-encoder logit is at least this
# For an index built before calibration existed: the middle of the calibrations measured
# on SciFact and NFCorpus (bge-small); `mcp-rag index` writes the real one.
DEFAULT_CALIBRATION = {"dense_low": 0.59, "dense_high": 0.78}
TOP_PASSAGES = 3  # the passages whose words `cover` counts (as it was measured; not weighted)
# Passages that hold none of what the question names refuse it unless the question lands
# at least this close to the corpus (``dense_pos``; 1 is where the corpus's own sentences
# land, asked as questions): then the answer is given as partial, naming what is missing.
# Chosen leave-one-corpus-out over eight corpora (research/evidence_terms.py: 0.9 in all 8
# folds).
EVIDENCE_DENSE_POS = 0.9


@dataclass(frozen=True)
class Decision:
    answerable: bool
    score: float  # probability that the question is in scope
    threshold: float
    confidence: float  # probability that the best passages support an answer
    unknown_terms: tuple[str, ...]  # the question's words this corpus never mentions
    features: dict[str, float]
    evidence: Evidence | None = None  # what the passages to be quoted lack (when checked)
    models_read: bool = True  # False: the models cannot read the question's language
    asked: bool = False  # True: ``ce`` is a long request's first sentence's (``asked_logit``)

    @property
    def state(self) -> State:
        """answered, partial (the passages lack some of what the question names) or refused."""
        if not self.answerable:
            return "refused"
        return "partial" if self.evidence is not None and self.evidence.missing else "answered"

    def checked(self, e: Evidence, steps_elsewhere: bool = False) -> Decision:
        """This decision once the evidence check has read the passages: refused when they
        hold none of the question's focal terms and the question is not as close to the
        corpus as its own sentences are (else partial), or asks how to do something in a
        product they never name (``steps_elsewhere``: ``evidence.steps_elsewhere``),
        however close."""
        refuse = e.state == "refused" and (
            steps_elsewhere or self.features["dense_pos"] < EVIDENCE_DENSE_POS)
        return replace(self, evidence=e, answerable=self.answerable and not refuse)

    def reason(self, best_logit: float | None) -> str:
        """Why it was refused, in plain words."""
        e = self.evidence
        if e is not None and e.state == "refused" and self.score >= self.threshold \
                and not vetoed(self.features, self.models_read):
            return (f"{e.reason()}; the documents as a whole look like the question "
                    f"(answerability {self.score:.2f})")
        parts = []
        if self.unknown_terms:
            words = ", ".join(repr(w) for w in self.unknown_terms[:6])
            more = len(self.unknown_terms) - 6
            parts.append(
                f"the documents never mention {words}" + (f" (and {more} more)" if more > 0 else "")
            )
        if self.features["dense_pos"] < 0.25:
            parts.append("the question is unlike anything indexed")
        if best_logit is not None and (not parts or self.features["ce"] < 0):
            ce = self.features["ce"]  # a long request's is its first sentence's
            what = " of what the request asks" if self.asked else ""
            parts.append(
                f"the closest passages do not address it (best cross-encoder score{what} "
                f"{ce:.2f})"
            )
        if vetoed(self.features, self.models_read) and self.score >= self.threshold:
            how = f"answerability {self.score:.2f}, but most of its rare words are missing"
            if not self.models_read:
                how += ("; the models read English only, so a question in Chinese, Japanese "
                        "or Korean is answered only when the documents hold most of its "
                        "rare words")
        else:
            how = f"answerability {self.score:.2f}, under the threshold of {self.threshold:.2f}"
        return "; ".join(parts) + f" ({how})"


def _logistic(weights: dict[str, float], x: dict[str, float]) -> float:
    z = weights["bias"] + sum(w * x[k] for k, w in weights.items() if k != "bias")
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


def vetoed(x: dict[str, float], models_read: bool = True) -> bool:
    """Most of the question's rare words are absent from the corpus and the
    cross-encoder is not sure of any passage (or cannot read the question at all)."""
    return x["unknown"] >= VETO_UNKNOWN and (x["ce"] < VETO_CE or not models_read)


def combine(
    terms: Sequence[Term],
    n_chunks: int,
    logits: Sequence[float],
    dense: Sequence[float],
    seen: set[str],
    calibration: dict | None,
) -> dict[str, float]:
    """The decision's inputs: the question's ``terms``, the candidates' cross-encoder
    ``logits`` and ``dense`` similarities, the term stems ``seen`` in the best passages."""
    cal = calibration or DEFAULT_CALIBRATION
    idf = {t.stem: t.idf(n_chunks) for t in terms}
    total = sum(idf.values()) or 1.0
    lo, hi = float(cal["dense_low"]), float(cal["dense_high"])
    return {
        "ce": max(-12.0, min(12.0, max(logits))) if logits else -12.0,
        "unknown": unknown_share(list(terms), n_chunks),
        "cover": sum(v for k, v in idf.items() if k in seen) / total,
        "dense_pos": (max(dense) - lo) / (hi - lo) if dense else 0.0,
    }


def held_terms(terms: Sequence[Term], hits: Sequence[Hit]) -> set[str]:
    """The stems of ``terms`` that ``hits`` hold (title, section or text)."""
    stems = {t.stem for t in terms}
    held: set[str] = set()
    for h in hits:
        held |= stems.intersection(tokenize(index_text(h.chunk)))
    return held


def features(
    terms: Sequence[Term],
    n_chunks: int,
    hits: Sequence[Hit],
    calibration: dict | None,
    nearest: float | None = None,
    asked_logit: float | None = None,
) -> dict[str, float]:
    """``combine`` over reranked candidates in their final order; ``nearest``, the
    question's similarity to its nearest chunk (the dense retriever's best), else the best
    of the hits'; ``asked_logit``, for a long request, the best logit of its first
    sentence, which stands for the candidates' logits."""
    return combine(
        terms, n_chunks,
        [asked_logit] if asked_logit is not None else
        [h.rerank_score for h in hits if h.rerank_score is not None],
        [nearest] if nearest is not None else
        [h.dense_score for h in hits if h.dense_score is not None],
        held_terms(terms, hits[:TOP_PASSAGES]), calibration,
    )


def decide(
    terms: Sequence[Term],
    n_chunks: int,
    hits: Sequence[Hit],
    calibration: dict | None,
    nearest: float | None = None,
    asked_logit: float | None = None,
    models_read: bool = True,
) -> Decision:
    """``models_read``: False when the question is in a script the models were not trained
    on (Chinese, Japanese or Korean with the English pack): their scores on it are
    confident and mean nothing (+6 to +8 logits for a recipe asked of a Linux manual), so
    the cross-encoder cannot overrule the veto."""
    x = features(terms, n_chunks, hits, calibration, nearest, asked_logit)
    score = _logistic(IN_SCOPE, x)
    return Decision(
        answerable=score >= THRESHOLD and not vetoed(x, models_read),
        score=round(score, 4),
        threshold=THRESHOLD,
        confidence=round(_logistic(SUPPORTED, x), 4),
        unknown_terms=tuple(t.word for t in terms if t.df == 0),
        features={k: round(v, 4) for k, v in x.items()},
        models_read=models_read,
        asked=asked_logit is not None,
    )
