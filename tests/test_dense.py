"""The FAISS dense index: search, filters and save/load round trips."""

from __future__ import annotations

import numpy as np
import pytest

from mcp_rag.index.dense import DenseIndex


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_faiss_search_filter_and_round_trip(tmp_path, kind):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(200, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    idx = DenseIndex.build(v, kind)
    rows, scores = idx.search(v[42], 5)
    assert rows[0] == 42 and scores[0] == pytest.approx(1.0, abs=1e-5)
    exact = np.argsort(-(v @ v[42]))[:5]
    if kind == "flat":
        assert rows.tolist() == exact.tolist()
    allowed = np.array([3, 99, 150])
    rows, _ = idx.search(v[42], 10, allowed)
    assert sorted(rows.tolist()) == [3, 99, 150]
    assert idx.search(v[42], 10, np.array([], dtype=np.int64))[0].tolist() == []
    idx.save(tmp_path / "d.faiss")
    again = DenseIndex.load(tmp_path / "d.faiss")
    assert again.kind == kind
    np.testing.assert_allclose(again.rows(range(again.n_rows)), v, atol=1e-6)
