"""The benchmark studies measure what the shipped code does (research/)."""

from __future__ import annotations

from helpers import KeywordEmbedder, KeywordReranker

from mcp_rag.retrieve.pipeline import Pipeline
from research import answerability_study as study


def test_the_study_keeps_the_signals_of_a_question_the_decision_refuses(indexed):
    q = "How do librarians catalogue serials with automation?"
    served = Pipeline(indexed.model_copy(update={"rerank": True}), embedder=KeywordEmbedder(),
                      reranker=KeywordReranker())
    assert served.search(q, k=10, rerank=True).hits == []  # refused where it is served
    s = study.study_settings(indexed.index).model_copy(update={"models": indexed.models})
    pipe = Pipeline(s, embedder=KeywordEmbedder(), reranker=KeywordReranker())
    rec = study.raw_signals(pipe, q)
    assert rec["logits"] and all(v is not None for v in rec["logits"])
    assert rec["nearest"] is not None and rec["terms"]


def test_the_study_calibrates_as_an_index_build_does(indexed):
    pipe = Pipeline(indexed.model_copy(update={"rerank": False}), embedder=KeywordEmbedder())
    built = pipe.reader.calibration
    made = study.calibration_of(pipe)
    assert built is not None
    for key in ("dense_low", "dense_high", "pseudo_questions", "bank_questions"):
        assert made[key] == built[key]
