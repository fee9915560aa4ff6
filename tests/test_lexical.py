"""BM25 postings and the tokenizer: hand-computed scores, rank_bm25 as the reference."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from mcp_rag.index.lexical import BM25Index, tokenize


def test_tokenize_lowercases_drops_stopwords_and_keeps_codes_whole():
    assert tokenize("The KB-ERR-2847 error is NOT fatal") == [
        "kb-err-2847", "kb", "err", "2847", "error", "not", "fatal",
    ]
    assert tokenize("Müller's café") == ["müller", "café"]


def test_bm25_matches_hand_computed_score():
    docs = [["apple", "banana"], ["apple"], ["cherry"], ["date"], ["elder"]]
    bm = BM25Index.build(docs)
    avgdl = 6 / 5
    idf = math.log((5 - 1 + 0.5) / (1 + 0.5))
    want = idf * 1 * 2.5 / (1 + 1.5 * (1 - 0.75 + 0.75 * 2 / avgdl))
    scores = bm.scores(["banana"])
    assert scores[0] == pytest.approx(want, rel=1e-6)
    assert scores[1:].tolist() == [0, 0, 0, 0]


def test_bm25_equals_rank_bm25_on_random_corpora():
    rng = random.Random(7)
    vocab = [f"t{i}" for i in range(40)]
    for _ in range(20):
        docs = [[rng.choice(vocab) for _ in range(rng.randint(0, 12))] for _ in range(30)]
        if not any(docs):
            continue
        query = [rng.choice(vocab) for _ in range(rng.randint(1, 5))]
        ours = BM25Index.build(docs).scores(query)
        ref = BM25Okapi(docs).get_scores(query)
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_bm25_search_filters_orders_and_round_trips(tmp_path):
    docs = [tokenize(t) for t in ["red fox", "red red fox", "blue whale", "red car"]]
    bm = BM25Index.build(docs)
    rows, scores = bm.search("red fox", 10)
    assert rows.tolist() == [1, 0, 3]  # whale matches nothing and is not returned
    assert list(scores) == sorted(scores, reverse=True)
    allowed = np.array([True, False, True, True])
    assert bm.search("red fox", 10, allowed)[0].tolist() == [0, 3]
    assert bm.search("red fox", 1)[0].tolist() == [1]
    bm.save(tmp_path)
    again = BM25Index.load(tmp_path)
    np.testing.assert_array_equal(again.scores(["red"]), bm.scores(["red"]))


def test_bm25_empty_corpus():
    bm = BM25Index.build([])
    assert bm.search("anything", 5)[0].tolist() == []


def test_tokenize_stems_words_but_not_codes():
    assert tokenize("refunds refunded refunding") == ["refund"] * 3
    assert tokenize("Running KB-ERR-2847") == ["run", "kb-err-2847", "kb", "err", "2847"]
