"""The typed manifest: what is written is what is read, and damage names the field."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_rag.errors import IndexCorruptError
from mcp_rag.index.manifest import (
    BM25Params,
    BuildOptions,
    ChunkingParams,
    Counts,
    EmbedderInfo,
    Manifest,
)
from mcp_rag.settings import Settings


def _manifest(**kw) -> Manifest:
    base = dict(
        generation=3, created_at="2026-11-22T10:00:00+00:00",
        embedder=EmbedderInfo("BAAI/bge-small-en-v1.5", 384), counts=Counts(docs=2, chunks=5),
        chunking=ChunkingParams(200, 1), bm25=BM25Params(tokenizer="t/1"),
        dense_index="flat", loader_version=2, roots=("/docs",),
    )
    return Manifest(**{**base, **kw})


@given(
    generation=st.integers(1, 10**6),
    docs=st.integers(0, 10**6),
    chunks=st.integers(0, 10**7),
    dense=st.sampled_from(["flat", "hnsw"]),
    roots=st.lists(st.text(min_size=1, max_size=20), max_size=3).map(tuple),
)
def test_save_load_round_trip(tmp_path_factory, generation, docs, chunks, dense, roots):
    m = _manifest(generation=generation, counts=Counts(docs, chunks), dense_index=dense,
                  roots=roots)
    d = tmp_path_factory.mktemp("gen")
    m.write(d)
    assert Manifest.read(d) == m


def test_the_on_disk_layout_is_format_1():
    data = _manifest().to_json()
    assert data["models"] == {"embedder": {"name": "BAAI/bge-small-en-v1.5", "dim": 384}}
    assert data["dim"] == 384 and data["format_version"] == 1
    assert data["bm25"] == {"k1": 1.5, "b": 0.75, "epsilon": 0.25, "tokenizer": "t/1"}


def test_a_manifest_without_models_names_the_missing_field(tmp_path):
    data = _manifest().to_json()
    del data["models"]
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(IndexCorruptError, match=re.escape("is damaged (missing field 'models')")):
        Manifest.read(tmp_path)


def test_a_manifest_holding_a_list_is_damaged_not_an_attribute_error(tmp_path):
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(IndexCorruptError, match="a JSON object was expected, not list"):
        Manifest.read(tmp_path)


def test_next_keeps_the_models_and_changes_generation_and_counts():
    m = _manifest()
    n = m.next(4, Counts(docs=1, chunks=2))
    assert (n.generation, n.counts, n.embedder, n.chunking) == (4, Counts(1, 2), m.embedder,
                                                                m.chunking)


def test_build_options_come_from_settings(tmp_path):
    s = Settings(index=tmp_path, chunk_tokens=120, chunk_overlap=0, dense_index="hnsw")
    assert BuildOptions.from_settings(s) == BuildOptions(ChunkingParams(120, 0), "hnsw")
