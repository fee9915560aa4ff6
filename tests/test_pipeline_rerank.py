"""Reranking in the pipeline: blend, floor, fallback, selective skip and cascade."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import BrokenReranker, KeywordReranker

from mcp_rag.errors import QueryError
from mcp_rag.models.rerank import rank, relevance
from mcp_rag.retrieve.pipeline import Pipeline


def make(settings, embedder, reranker=None, cascade=None, **overrides):
    s = settings.model_copy(update={"rerank": True, **overrides})
    return Pipeline(s, embedder=embedder, reranker=reranker or KeywordReranker(), cascade=cascade)


def test_rank_sorts_without_touching_the_input_and_calibrates():
    docs = ["cats purr", "refund within 30 days", "refund"]
    before = list(docs)
    got = rank(KeywordReranker(), "refund 30 days", docs, top_k=2)
    assert [g["corpus_id"] for g in got] == [1, 2]
    assert got[0]["text"] == "refund within 30 days"
    assert got[0]["relevance"] == pytest.approx(1 / (1 + math.exp(-got[0]["score"])))
    assert docs == before
    assert relevance(0.0) == 0.5 and relevance(-800) == 0.0 and relevance(800) == 1.0


def test_reranked_hits_are_ordered_by_their_score(indexed, embedder):
    hits = make(indexed, embedder, page_first=False).search(
        "refund annual plan within days", k=5).hits
    assert len(hits) > 2 and all(h.rerank_score is not None for h in hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    # the score interpolates the min-max normalised logit and first-stage score: in [0, 1]
    assert all(0.0 <= sc <= 1.0 for sc in scores)
    s = indexed
    rrf = make(indexed, embedder, rerank_blend="rrf").search("refund annual plan within days", k=5)
    first = [h.first_stage_rank for h in rrf.hits]
    # the rrf blend: the cross-encoder rank among the candidates and the first rank
    assert all(sc <= s.rerank_weight / (s.rerank_rrf_k + 1) + (1 - s.rerank_weight)
               / (s.rerank_rrf_k + fr) + 1e-12
               for sc, fr in zip([h.score for h in rrf.hits], first, strict=True))


def test_reranked_search_reports_scores_ranks_and_timing(indexed, embedder):
    p = make(indexed, embedder)
    res = p.search("KB-ERR-2847 storage quota exceeded", k=3)
    assert res.reranked and res.rerank_reason is None and not res.no_answer
    assert res.reranker == "test/keyword-reranker"
    top = res.hits[0]
    assert top.chunk.doc_id == "support/error-codes.md"
    assert top.rerank_score is not None and top.first_stage_rank is not None
    assert top.relevance == pytest.approx(relevance(top.rerank_score))
    assert res.best_score == max(h.rerank_score for h in res.hits)
    assert "rerank" in res.timings_ms


def test_weight_one_is_cross_encoder_order_and_zero_is_first_stage(indexed, embedder):
    q = "refund annual plan cancel prorated months fee"
    ce_only = make(indexed, embedder, rerank_weight=1.0, relevance_floor=None,
                   page_first=False).search(q, k=8)
    scores = [h.rerank_score for h in ce_only.hits]
    assert scores == sorted(scores, reverse=True)
    first = make(indexed, embedder, rerank_weight=0.0, relevance_floor=None,
                 page_first=False).search(q, k=8)
    assert [h.first_stage_rank for h in first.hits] == list(range(1, 9))


@pytest.mark.parametrize("rerank", [True, False])
def test_search_lists_each_page_first_and_answer_reads_by_score(indexed, embedder, rerank):
    q = "refund annual plan cancel prorated months fee"
    by_score = make(indexed, embedder, page_first=False).search(q, k=10, rerank=rerank).hits
    p = make(indexed, embedder)
    paged = p.search(q, k=10, rerank=rerank).hits
    docs = [h.chunk.doc_id for h in by_score]
    pages = list(dict.fromkeys(docs))
    assert 2 < len(pages) < len(docs)  # some page has several passages among them
    # the same passages, the best first, each page's best before any page's second one
    assert {h.chunk.chunk_id for h in paged} == {h.chunk.chunk_id for h in by_score}
    assert paged[0] == by_score[0]
    assert [h.chunk.doc_id for h in paged[:len(pages)]] == pages
    rest = [h for h in by_score if h not in paged[:len(pages)]]
    assert paged[len(pages):] == rest
    # a short list covers as many pages as the candidates hold
    top3 = p.search(q, k=3, rerank=rerank).hits
    assert [h.chunk.doc_id for h in top3] == pages[:3]
    # answer's passages (copies=False) stay in the order of their scores
    read = p.search(q, k=10, copies=False, rerank=rerank).hits
    assert [h.score for h in read] == sorted((h.score for h in read), reverse=True)


def test_a_refused_search_lists_its_closest_passages_page_by_page(indexed, embedder):
    q = "zebra migration serengeti"
    by_score = make(indexed, embedder, relevance_floor=0.0, page_first=False).search(q, k=5)
    p = make(indexed, embedder, relevance_floor=0.0)
    paged = p.search(q, k=5)
    assert by_score.no_answer and paged.no_answer and paged.hits == []
    assert paged.closest[0] == by_score.closest[0]
    docs = [h.chunk.doc_id for h in paged.closest]
    assert len(set(docs)) > len(set(h.chunk.doc_id for h in by_score.closest))
    assert len(set(docs[:len(set(docs))])) == len(set(docs))  # every page before a repeat
    # answer's closest passages stay the best k by score
    read = p.search(q, k=5, copies=False)
    assert [h.score for h in read.closest] == sorted((h.score for h in read.closest),
                                                     reverse=True)


def test_floor_drops_weak_hits_and_says_no_answer(indexed, embedder):
    p = make(indexed, embedder, relevance_floor=0.0)
    res = p.search("zebra migration serengeti", k=5)
    assert res.no_answer and res.hits == []
    assert res.best_score is not None and res.best_score < 0.0
    some = p.search("refund policy annual plan", k=10)
    assert not some.no_answer
    assert all(h.rerank_score >= 0.0 for h in some.hits)
    unfloored = make(indexed, embedder, relevance_floor=None, answerability=False).search(
        "zebra migration", k=5
    )
    assert unfloored.hits and not unfloored.no_answer


def test_broken_reranker_falls_back_to_first_stage(indexed, embedder):
    p = make(indexed, embedder, reranker=BrokenReranker())
    res = p.search("KB-ERR-2847", k=3)
    assert not res.reranked
    assert "reranker failed: RuntimeError: ONNX session crashed" in res.rerank_reason
    assert res.hits and res.hits[0].rerank_score is None
    assert [h.chunk.chunk_id for h in res.hits] == [
        h.chunk.chunk_id for h in p.search("KB-ERR-2847", k=3, rerank=False).hits
    ]


def test_reranker_that_cannot_load_does_not_stop_search(indexed, embedder, tmp_path):
    s = indexed.model_copy(update={"rerank": True, "reranker": str(tmp_path / "no-such-model")})
    p = Pipeline.from_settings(s, embedder=embedder)
    assert p.reranker is None and "failed to load" in p.rerank_error
    res = p.search("refund", k=2)
    assert res.hits and not res.reranked and "failed to load" in res.rerank_reason


def test_selective_rerank_scores_only_the_agreed_top_hit(indexed, embedder):
    rr = KeywordReranker()
    p = make(indexed, embedder, reranker=rr, selective_rerank=True)
    first = p.search("KB-ERR-2847 storage quota", k=5, rerank=False)
    assert first.hits[0].bm25_rank == 1 and first.hits[0].dense_rank == 1
    res = p.search("KB-ERR-2847 storage quota", k=5)
    assert not res.reranked and res.rerank_reason.startswith("skipped")
    assert rr.pairs_seen == 1
    assert res.hits[0].rerank_score is not None
    assert all(h.rerank_score is None for h in res.hits[1:])
    assert [h.chunk.chunk_id for h in res.hits] == [h.chunk.chunk_id for h in first.hits]


def test_cascade_trims_candidates_before_the_main_reranker(indexed, embedder):
    main, cheap = KeywordReranker("main"), KeywordReranker("cheap")
    p = make(indexed, embedder, reranker=main, cascade=cheap, cascade_keep=4,
             relevance_floor=None)
    res = p.search("refund annual plan", k=10, candidates=12)
    assert cheap.pairs_seen == 12 and main.pairs_seen == 4
    assert len(res.hits) == 4 and res.reranked
    assert "cascade" in res.timings_ms


def test_candidate_bounds(indexed, embedder):
    p = make(indexed, embedder)
    with pytest.raises(QueryError, match="candidates of 0 is out of range"):
        p.search("refund", candidates=0)
    # fewer candidates than k: k are reranked all the same
    p = make(indexed, embedder, relevance_floor=None)
    res = p.search("refund policy", k=3, candidates=2)
    assert len(res.hits) == 3 and all(h.rerank_score is not None for h in res.hits)


def test_predict_is_batch_independent_for_the_test_double():
    r = KeywordReranker()
    pairs = [("a b", "a"), ("a b", "b c"), ("x", "y")]
    np.testing.assert_array_equal(r.predict(pairs), np.concatenate([r.predict([p]) for p in pairs]))


def test_corrupt_model_file_falls_back_with_the_reason(indexed, embedder, tmp_path):
    broken = tmp_path / "broken-ce"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"this is not an onnx graph")
    (broken / "tokenizer.json").write_text("{}")
    s = indexed.model_copy(update={"rerank": True, "reranker": str(broken)})
    p = Pipeline.from_settings(s, embedder=embedder)
    assert p.reranker is None
    res = p.search("KB-ERR-2847", k=2)
    assert res.hits and not res.reranked
    assert res.rerank_reason.startswith(f"reranker {str(broken)!r} failed to load")


class RecordingReranker(KeywordReranker):
    """A KeywordReranker that keeps the passages it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.passages: list[str] = []

    def predict(self, pairs):
        self.passages += [p for _, p in pairs]
        return super().predict(pairs)


def test_the_cross_encoder_reads_a_window_of_each_passage(indexed, embedder):
    from mcp_rag.ingest.chunking import index_text
    from mcp_rag.models.rerank import token_starts

    q = "refund annual plan cancel prorated months"
    whole, cut = RecordingReranker(), RecordingReranker()
    a = make(indexed, embedder, whole, rerank_window=0).search(q, k=3, candidates=10)
    b = make(indexed, embedder, cut, rerank_window=40).search(q, k=3, candidates=10)
    assert len(whole.passages) == len(cut.passages) == 10  # the top 10 candidates, no more
    texts = [index_text(h.chunk) for h in make(indexed, embedder).retrieve(q, 10).hits]
    assert whole.passages == texts
    budget = 40 - len(token_starts(cut, [q])[0]) - 3
    for full, read in zip(texts, cut.passages, strict=True):
        if len(token_starts(cut, [full])[0]) <= budget:
            assert read == full
        else:  # the heading, then whole sentences of the passage
            assert len(read) < len(full) and read.split("\n")[-1] in full
    assert "focus" in b.timings_ms and a.hits and b.hits
    assert any(r != f for r, f in zip(cut.passages, texts, strict=True))
