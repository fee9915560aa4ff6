from __future__ import annotations

import math

import pytest

from mcp_rag.evaluate.metrics import docs_from_chunks, mrr_at_k, ndcg_at_k, recall_at_k, wilson


def test_ndcg_hand_computed():
    qrels = {"a": 1, "b": 1}
    # relevant at ranks 2 and 3: (1/log2 3 + 1/log2 4) / (1 + 1/log2 3)
    want = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "a", "b"], qrels) == pytest.approx(want)
    assert ndcg_at_k(["a", "b", "x"], qrels) == pytest.approx(1.0)
    assert ndcg_at_k(["x"], qrels) == 0.0
    assert ndcg_at_k(["a"], {}) == 0.0


def test_ndcg_graded_and_cut():
    qrels = {"a": 2, "b": 1}
    want = (1 / 1 + 2 / math.log2(3)) / (2 / 1 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "a"], qrels) == pytest.approx(want)
    assert ndcg_at_k(["x", "a"], qrels, k=1) == 0.0


def test_recall_and_mrr():
    qrels = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["a", "x", "c"], qrels, 10) == 0.5
    assert recall_at_k(["x", "a"], qrels, 1) == 0.0
    assert mrr_at_k(["x", "c", "b"], qrels) == pytest.approx(1 / 3)
    assert mrr_at_k(["x"] * 3, qrels) == 0.0


def test_docs_from_chunks_keeps_best_rank():
    assert docs_from_chunks(["d1", "d2", "d1", "d3", "d2"]) == ["d1", "d2", "d3"]


def test_a_rate_comes_with_its_wilson_interval():
    assert wilson(27, 42) == [0.492, 0.77]  # 0.64 of 42: a target of 0.80 is outside
    assert wilson(42, 42) == [0.916, 1.0] and wilson(0, 20) == [0.0, 0.161]
