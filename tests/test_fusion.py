"""Reciprocal rank fusion and the reranker blend, worked out by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_rag.retrieve.fusion import blend, convex, interpolate, rrf


def test_rrf_hand_computed():
    fused = dict(rrf({"a": ["x", "y", "z"], "b": ["z", "x"]}, k=60))
    assert fused["x"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["z"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["y"] == pytest.approx(1 / 62)
    assert [key for key, _ in rrf({"a": ["x", "y", "z"], "b": ["z", "x"]})] == ["x", "z", "y"]


def test_rrf_weights_and_zero_weight():
    fused = rrf({"a": ["x"], "b": ["y"]}, k=1, weights={"a": 1.0, "b": 3.0})
    assert fused == [("y", 1.5), ("x", 0.5)]
    only_a = rrf({"a": ["x"], "b": ["y"]}, k=1, weights={"a": 1.0, "b": 0.0})
    assert only_a == [("x", 0.5), ("y", 0.0)]
    with pytest.raises(ValueError, match="k of 0"):
        rrf({"a": ["x"]}, k=0)


@given(st.lists(st.integers(), unique=True, max_size=50), st.integers(1, 100))
def test_rrf_of_one_list_returns_it_unchanged(ranking, k):
    assert [key for key, _ in rrf({"only": ranking}, k=k)] == ranking


def test_blend_breaks_a_tie_by_the_first_stage_rank():
    # first-stage ranks 1, 2, 3; cross-encoder prefers the third, then the second.
    blended = blend([1, 2, 3], [0.0, 1.0, 2.0], weight=0.5, k=60)
    scores = [0.5 / 63 + 0.5 / 61, 0.5 / 62 + 0.5 / 62, 0.5 / 61 + 0.5 / 63]
    assert scores[0] == pytest.approx(scores[2]) and scores[1] < scores[0]
    assert [i for i, _ in blended] == [0, 2, 1]
    assert [s for _, s in blended] == pytest.approx([scores[0], scores[2], scores[1]])


def test_blend_weight_one_is_the_cross_encoder_order_and_zero_the_first_stage():
    assert [i for i, _ in blend([1, 2, 3], [0.0, 1.0, 2.0], weight=1.0)] == [2, 1, 0]
    assert [i for i, _ in blend([1, 2, 3], [0.0, 1.0, 2.0], weight=0.0)] == [0, 1, 2]


def test_interpolate_weighs_normalised_scores_by_hand():
    # first stage 0.9, 0.8, 0.2 -> 1, 6/7, 0; logits -1, 4, 3 -> 0, 1, 0.8
    got = interpolate([0.9, 0.8, 0.2], [-1.0, 4.0, 3.0], weight=0.3)
    assert [i for i, _ in got] == [1, 0, 2]
    assert [s for _, s in got] == pytest.approx([0.7 * 6 / 7 + 0.3, 0.7, 0.3 * 0.8])
    assert [i for i, _ in interpolate([0.9, 0.8, 0.2], [-1.0, 4.0, 3.0], 1.0)] == [1, 2, 0]
    assert [i for i, _ in interpolate([0.9, 0.8, 0.2], [-1.0, 4.0, 3.0], 0.0)] == [0, 1, 2]


def test_interpolate_lets_a_clear_cross_encoder_move_items_a_flat_one_does_not():
    first = [0.9, 0.85, 0.8]
    # nearly equal logits still span [0, 1] after min-max: the first stage's spread decides
    assert [i for i, _ in interpolate(first, [2.0, 2.01, 2.02], 0.3)] == [0, 1, 2]
    # a clear preference for the last item at the same weight moves it up
    assert [i for i, _ in interpolate([0.9, 0.89, 0.2], [-3.0, 0.0, 8.0], 0.3)][0] == 1
    # equal scores everywhere: the first stage's order stands; one item; none
    assert [i for i, _ in interpolate([0.5, 0.5], [1.0, 1.0], 0.3)] == [0, 1]
    assert interpolate([0.7], [-2.0], 0.3) == [(0, 0.0)]
    assert interpolate([], [], 0.3) == []


def test_convex_leans_on_the_informative_retriever():
    # BM25 gives every candidate the same score (it separates nothing): dense decides.
    flat_bm25 = {"a": 2.0, "b": 2.0, "c": 2.0}
    dense = {"c": 0.9, "a": 0.5, "b": 0.1}
    fused = convex({"bm25": flat_bm25, "dense": dense}, {"bm25": 0.35, "dense": 0.65})
    assert [k for k, _ in fused] == ["c", "a", "b"]
    # and the other way round: a dense list that does not separate leaves BM25 in charge
    fused = convex({"bm25": {"x": 9.0, "y": 1.0}, "dense": {"x": 0.3, "y": 0.3}},
                   {"bm25": 0.35, "dense": 0.65})
    assert [k for k, _ in fused] == ["x", "y"]


def test_convex_by_hand_and_an_empty_list_is_ignored():
    fused = convex({"bm25": {}, "dense": {"a": 4.0, "b": 2.0, "c": 0.0}},
                   {"bm25": 0.35, "dense": 0.65})
    assert fused == [("a", pytest.approx(0.65)), ("b", pytest.approx(0.325)), ("c", 0.0)]


def test_fusions_and_blends_are_tables_whose_names_are_the_settings_choices():
    import typing

    import pytest

    from mcp_rag.retrieve.first_stage import FUSIONS
    from mcp_rag.retrieve.fusion import choose
    from mcp_rag.retrieve.rerank import BLENDS
    from mcp_rag.settings import Settings

    fields = Settings.model_fields
    assert set(FUSIONS) == set(typing.get_args(fields["fusion"].annotation))
    assert set(BLENDS) == set(typing.get_args(fields["rerank_blend"].annotation))
    with pytest.raises(ValueError, match="unknown rerank blend 'max': choose one of rrf, scores"):
        choose(BLENDS, "max", "rerank blend")
