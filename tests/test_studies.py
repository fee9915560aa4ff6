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


def test_the_rerank_rule_study_orders_as_search_does(indexed):
    from research import rerank_rule

    s = indexed.model_copy(update={"rerank": True, "relevance_floor": None,
                                   "answerability": False})
    pipe = Pipeline(s, embedder=KeywordEmbedder(), reranker=KeywordReranker())
    # the blend reorders the documents of both (as the keyword cross-encoder scores them)
    for q in ("Refund for annual plan cancellation?", "SLA response time for enterprise customers"):
        rec = rerank_rule.record(pipe, "q", q, {})
        assert rerank_rule.order(rec, s.rerank_weight, False) != rerank_rule.order(rec, 0, False)
        served = pipe.search(q.casefold().rstrip("?"), k=s.rerank_candidates, rerank=True)
        assert rerank_rule.order(rec, s.rerank_weight, False) == list(
            dict.fromkeys(h.chunk.doc_id for h in served.hits))
        first = pipe.search(q, k=s.rerank_candidates, rerank=False)
        assert rerank_rule.order(rec, 0.0, False) == list(
            dict.fromkeys(h.chunk.doc_id for h in first.hits))


def test_the_evidence_study_reads_names_and_code_but_not_title_case():
    from research.evidence_terms import focal, verdict

    n = 1000
    terms = [["mysql", 3, 5.5, False], ["slow", 40, 3.2, True], ["log", 90, 2.4, True],
             ["pg_dump", 0, 7.6, False]]
    got = focal("How do I turn on the MySQL slow query log with pg_dump?", terms, n, 0.5, False)
    assert [t[0] for t in got] == ["mysql", "pg_dump"]
    assert [t[0] for t in focal("Is MySQL Slow For Logs?", terms, n, 0.5, False)] == []
    assert [t[0] for t in got if t[1] > 0] == [t[0] for t in focal(
        "How do I turn on the MySQL slow query log with pg_dump?", terms, n, 0.5, True)]
    rec = {"question": "How do I use MySQL with pg_dump?", "terms": terms, "n_chunks": n}
    assert verdict(rec, 0.5, False) == "refused"
    rec["terms"] = [["mysql", 3, 5.5, True], ["pg_dump", 0, 7.6, False]]
    assert verdict(rec, 0.5, False) == "partial"
