"""The one entry into indexing: index, remove and the error of an Indexer with no embedder."""

from __future__ import annotations

import pytest
from helpers import KeywordEmbedder

from mcp_rag.index.backend import backend_for
from mcp_rag.index.indexer import Indexer


def test_index_then_remove_through_one_indexer(settings, sample_dir):
    indexer = Indexer(settings, KeywordEmbedder())
    report = indexer.index([sample_dir], quiet=True)
    assert report.added == 6 and report.generation == 1
    assert indexer.options().chunking.target_tokens == settings.chunk_tokens
    gone = Indexer(settings).remove(["policies/"])  # removing needs no model
    assert gone.removed == 2
    assert len(backend_for(settings).open().doc_ids) == 4


def test_an_indexer_without_an_embedder_only_removes(settings, sample_dir):
    with pytest.raises(TypeError, match="only remove"):
        Indexer(settings).index([sample_dir])
