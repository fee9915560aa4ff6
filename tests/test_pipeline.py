"""First-stage search through the pipeline: modes, scores, filters, the per-document cap."""

from __future__ import annotations

import pytest
from helpers import KeywordEmbedder

from mcp_rag.errors import QueryError
from mcp_rag.retrieve.pipeline import Pipeline


@pytest.fixture
def pipeline(indexed):
    return Pipeline(indexed, embedder=KeywordEmbedder())


def test_hybrid_score_is_the_convex_combination_of_normalised_scores_by_default(pipeline):
    hybrid = pipeline.search("KB-ERR-2847 storage quota", k=3)
    top = hybrid.hits[0]
    assert top.chunk.doc_id == "support/error-codes.md"
    assert top.bm25_rank == 1 and top.dense_rank == 1
    assert top.score == pytest.approx(1.0)  # the best of both lists: 0.35 * 1 + 0.65 * 1
    assert all(0.0 <= h.score <= 1.0 for h in hybrid.hits)
    assert set(hybrid.timings_ms) >= {"bm25", "embed_query", "dense", "fusion", "total"}


def test_hybrid_score_is_the_rrf_of_both_ranks_when_asked(indexed):
    p = Pipeline(indexed.model_copy(update={"fusion": "rrf"}), embedder=KeywordEmbedder())
    top = p.search("KB-ERR-2847 storage quota", k=3).hits[0]
    assert top.bm25_rank == 1 and top.dense_rank is not None
    assert top.score == pytest.approx(1 / 61 + 1 / (60 + top.dense_rank))


def test_bm25_mode_scores_by_bm25_alone(pipeline):
    bm = pipeline.search("KB-ERR-2847", mode="bm25", k=2)
    assert bm.hits[0].dense_rank is None and bm.hits[0].score == bm.hits[0].bm25_score


def test_dense_mode_scores_by_similarity_alone(pipeline):
    dn = pipeline.search("KB-ERR-2847", mode="dense", k=2)
    assert dn.hits[0].bm25_rank is None and dn.hits[0].score == dn.hits[0].dense_score


def test_doc_id_prefix_filter(pipeline):
    only = pipeline.search("refund", k=10, filters={"doc_id_prefix": "support/"})
    assert only.hits and all(h.chunk.doc_id.startswith("support/") for h in only.hits)


def test_source_glob_filter(pipeline):
    html = pipeline.search("refund incident", k=10, filters={"source": "*.html"})
    assert html.hits and {h.chunk.doc_id for h in html.hits} == {"support/sla-tiers.html"}


def test_chunks_per_document_are_capped(pipeline, indexed):
    capped = pipeline.search("refund policy plan annual monthly", k=10)
    per_doc: dict[str, int] = {}
    for h in capped.hits:
        per_doc[h.chunk.doc_id] = per_doc.get(h.chunk.doc_id, 0) + 1
    assert max(per_doc.values()) <= indexed.max_chunks_per_doc


def test_a_hit_span_indexes_the_stored_document_text(pipeline):
    c = pipeline.search("KB-ERR-2847 storage quota", k=1).hits[0].chunk
    assert pipeline.reader.document(c.doc_id).text[c.start : c.end] == c.text


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"query": "   "}, "query is empty"),
    ({"query": "x" * 5000}, "over the limit"),
    ({"query": "refund", "k": 51}, "k of 51 is out of range"),
    ({"query": "refund", "filters": {"author": "me"}}, "unknown filter field"),
    ({"query": "refund", "mode": "magic"}, "mode 'magic'"),
])
def test_bad_parameters_are_query_errors(pipeline, kwargs, message):
    with pytest.raises(QueryError, match=message):
        pipeline.search(**kwargs)


def test_retrieve_looks_deeper_until_k_distinct_documents(settings, tmp_path):
    from mcp_rag.index.manifest import BuildOptions, ChunkingParams
    from mcp_rag.index.update import index_paths

    kb = tmp_path / "many"
    kb.mkdir()
    for d in range(30):  # every document is cut into many chunks that all match
        (kb / f"d{d}.md").write_text(f"# Doc {d}\n\n" + "".join(
            f"Refund rule {d}-{i} covers quokka refunds. " for i in range(12)))
    emb = KeywordEmbedder()
    index_paths(settings.index, [kb], emb, quiet=True,
                options=BuildOptions(ChunkingParams(target_tokens=16, overlap=0)))
    s = settings.model_copy(update={"candidates": 20, "max_chunks_per_doc": 1})
    p = Pipeline(s, embedder=emb)
    assert p.reader.n_chunks > 60
    for mode in ("bm25", "dense", "hybrid"):
        docs = [h.chunk.doc_id for h in p.retrieve("quokka refunds", 25, mode=mode).hits]
        assert len(docs) == len(set(docs)) == 25, mode
    assert len(p.retrieve("quokka refunds", 100, mode="bm25").hits) == 30  # all there is
