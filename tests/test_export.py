"""Both backends of the reranker (and the embedder) on tiny generated models, and export."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import tiny_bert

from mcp_rag.models.embedding import load_embedder
from mcp_rag.models.export import export_model
from mcp_rag.models.pack import resolve
from mcp_rag.models.rerank import OnnxReranker, load_reranker, rank

PAIRS = [
    ("refund policy", "refund within 30 days for the annual plan"),
    ("refund policy", "the cat is not a dog"),
    ("error code", "storage quota error code"),
]


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("ce") / "tiny-ce", cross_encoder=True)


@pytest.fixture(scope="module")
def exported_ce(tiny_ce, tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "tiny-ce-int8"
    report = export_model(str(tiny_ce), out)
    return out, report


def test_export_round_trip_cross_encoder(exported_ce, tiny_ce):
    out, report = exported_ce
    assert report.kind == "cross-encoder" and report.quantized
    assert (out / "model.onnx").is_file() and (out / "tokenizer.json").is_file()
    assert report.max_abs_diff < 0.05  # int8 weights vs the fp32 original, tiny random model
    ref = resolve(str(out), out, "reranker")
    assert ref.backend == "onnx"
    onnx = load_reranker(ref)
    st = load_reranker(resolve(str(tiny_ce), out, "reranker"))
    assert type(st).__name__ == "SentenceTransformersReranker"
    np.testing.assert_allclose(onnx.predict(PAIRS), st.predict(PAIRS), atol=0.05)


def test_onnx_scores_do_not_depend_on_the_batch(exported_ce):
    out, _ = exported_ce
    r = OnnxReranker(out, "tiny")
    together = r.predict(PAIRS)
    alone = np.concatenate([r.predict([p]) for p in PAIRS])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(r.predict(list(reversed(PAIRS))), together[::-1])


@pytest.mark.parametrize(("saturating", "exact"), [(True, True), (True, False), (False, True)])
def test_int8_products_are_exact_where_asked(exported_ce, monkeypatch, saturating, exact):
    """Asked (``rerank_exact_int8``) where onnxruntime's default int8 products saturate
    (x86 without VNNI), sessions ask for its exact u8u8 kernel, the bulk session too;
    otherwise they keep the default (on VNNI or AMX, the fast exact kernel). The pack's
    cross-encoder is checked against its fp32 weights in test_real_models."""
    from mcp_rag.models import onnx_runner

    monkeypatch.setattr(onnx_runner, "saturates", lambda: saturating)
    out, _ = exported_ce
    r = OnnxReranker(out, "tiny", exact=exact)
    r.predict([PAIRS[0]] * 3)  # makes the single-threaded bulk session too
    key, value = onnx_runner.PRECISE_INT8
    for session in (r._model.session, r._model._bulk):
        options = session.get_session_options()
        if saturating and exact:
            assert options.get_session_config_entry(key) == value
        else:
            with pytest.raises(RuntimeError):
                options.get_session_config_entry(key)


@pytest.mark.parametrize(("flags", "saturating"), [
    ({"sse4_1", "avx2"}, True),  # AMD Zen 3, Intel Haswell to Skylake client
    ({"sse4_1", "avx2", "avx512f"}, True),  # Skylake-SP: AVX-512 without VNNI
    ({"sse4_1", "avx2", "avx512f", "avx512_vnni"}, False),
    ({"sse4_1", "avx2", "avx_vnni"}, False),  # Alder Lake
    ({"sse41", "avx2"}, True),  # as numpy names them, off Linux
    ({"asimd", "asimddp"}, False),  # ARM
])
def test_which_cpus_saturate(monkeypatch, flags, saturating):
    from mcp_rag.models import onnx_runner

    monkeypatch.setattr(onnx_runner, "cpu_flags", lambda: ("cpu", frozenset(flags)))
    onnx_runner.saturates.cache_clear()
    try:
        assert onnx_runner.saturates() is saturating
    finally:
        onnx_runner.saturates.cache_clear()


def test_truncation_keeps_the_query_and_cuts_the_passage(exported_ce):
    out, _ = exported_ce
    r = OnnxReranker(out, "tiny", max_length=24, max_query_tokens=8)
    query = "refund policy annual plan"
    enc = r.encode(query, " ".join(["storage quota"] * 50))
    assert len(enc.ids) == 24
    q_ids = r._tok.encode(query, add_special_tokens=False).ids
    assert enc.ids[1 : 1 + len(q_ids)] == q_ids  # [CLS] query [SEP] passage [SEP]
    long_q = r.encode(" ".join(["refund"] * 40), "cat")
    assert long_q.ids.count(r._tok.token_to_id("refund")) == 8
    with pytest.raises(ValueError, match="leaves no room for a passage"):
        OnnxReranker(out, "tiny", max_length=10, max_query_tokens=8)


def test_rank_with_both_backends(exported_ce, tiny_ce):
    out, _ = exported_ce
    for r in (OnnxReranker(out, "tiny"), load_reranker(resolve(str(tiny_ce), out, "reranker"))):
        got = rank(r, "refund policy", [p for _, p in PAIRS], top_k=2)
        assert len(got) == 2 and got[0]["score"] >= got[1]["score"]


def test_export_round_trip_bi_encoder(tmp_path):
    src = tiny_bert(tmp_path / "tiny-bi", cross_encoder=False)
    report = export_model(str(src), tmp_path / "bi-int8")
    assert report.kind == "bi-encoder"
    assert report.max_abs_diff < 0.1
    emb = load_embedder(resolve(str(tmp_path / "bi-int8"), tmp_path, "embedder"))
    v = emb.embed_documents(["refund policy", "cat"])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
