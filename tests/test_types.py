"""Closed sets and the citation label shared by every stage."""

from __future__ import annotations

import re

import pytest

from mcp_rag.errors import QueryError
from mcp_rag.types import Mode, RerankStatus, Stage, cite_label


def test_mode_from_str_lists_the_valid_modes():
    assert Mode.from_str("bm25") is Mode.BM25
    with pytest.raises(QueryError, match=re.escape("mode 'fuzzy' is unknown: choose one of "
                                                   "hybrid, bm25, dense")):
        Mode.from_str("fuzzy")


def test_stages_are_the_modes_and_the_reranked_search():
    assert {s.value for s in Stage} == {m.value for m in Mode} | {"reranked"}


def test_only_a_failed_rerank_is_not_cached_and_only_a_working_model_scores_sentences():
    assert [s for s in RerankStatus if not s.cacheable] == [RerankStatus.FAILED]
    assert {s for s in RerankStatus if s.model_works} == {RerankStatus.RERANKED,
                                                         RerankStatus.SKIPPED}


def test_cite_label():
    assert cite_label("a.md") == "a.md"
    assert cite_label("a.pdf", "Intro > Scope", 3) == "a.pdf § Intro > Scope p.3"
