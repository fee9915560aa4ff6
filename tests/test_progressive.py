"""Big folders: the same text is embedded once, and a first index is searchable while its
vectors arrive in batches (real FAISS, SQLite and BM25; the keyword embedder)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import KeywordEmbedder

from mcp_rag.app.catalog import index_status
from mcp_rag.app.schemas import SearchOutput
from mcp_rag.cli import _run_line
from mcp_rag.index.manifest import BuildOptions
from mcp_rag.index.store import IndexReader, read_current
from mcp_rag.index.update import _batches, index_paths
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.render import render_search, render_status
from mcp_rag.types import RerankStatus


def build(settings, paths, embedder, **kw):
    return index_paths(settings.index, paths, embedder, quiet=True, **kw)


def search(settings, embedder, query, **kw):
    return Pipeline(settings, embedder=embedder).search(query, **kw)


def bulk(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"note{i:03d}.md").write_text(
            f"# Note {i}\n\nField report {i}: the station logged marker{i} at dawn.\n")


def test_batches_double_from_the_first_up_to_the_cap():
    assert _batches(10, None) == [10]
    assert _batches(10, 16) == [10]
    assert _batches(100, 8) == [8, 16, 32, 44]
    assert sum(_batches(100_000, 1024)) == 100_000
    assert max(_batches(100_000, 1024)) == 8192


def test_identical_chunks_are_embedded_once(settings, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    text = "".join(f"## Part {i}\n\nStep {i} of the install guide sets option{i}.\n\n"
                   for i in range(6))
    for name in ("guide.md", "copy-a.md", "copy-b.md"):
        (docs / name).write_text("# Install guide\n\n" + text)
    emb = KeywordEmbedder()
    r = build(settings, [docs], emb)
    reader = IndexReader(settings.index)
    per_file = reader.n_chunks // 3
    assert r.added == 3 and per_file > 1
    assert emb.calls == r.embedded_chunks == per_file
    assert r.reused_chunks == 2 * per_file
    assert f"({2 * per_file} more took the vector of the same text)" in _run_line(r)
    by_doc = {d: reader.chunk_rows_for_docs({d}) for d in reader.doc_ids}
    np.testing.assert_array_equal(reader.vectors(by_doc["guide.md"].tolist()),
                                  reader.vectors(by_doc["copy-b.md"].tolist()))
    # A fourth copy later, in another run: nothing to embed.
    (docs / "copy-c.md").write_text("# Install guide\n\n" + text)
    r2 = build(settings, [docs], emb)
    assert (r2.added, r2.embedded_chunks, r2.reused_chunks) == (1, 0, per_file)


def test_a_moved_file_re_embeds_nothing(settings, sample_dir, embedder):
    build(settings, [sample_dir], embedder)
    calls = embedder.calls
    (sample_dir / "archive").mkdir()
    shutil.move(sample_dir / "support" / "error-codes.md", sample_dir / "archive")
    r = build(settings, [sample_dir], embedder)
    assert (r.added, r.removed, r.embedded_chunks) == (1, 1, 0) and r.reused_chunks > 0
    assert embedder.calls == calls
    hit = search(settings, embedder, "KB-ERR-2847", k=1).hits[0]
    assert hit.chunk.doc_id == "archive/error-codes.md" and hit.dense_rank is not None


def test_an_edit_embeds_only_the_chunks_it_changed(settings, tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    parts = [f"## Section {i}\n\nSection {i} explains setting{i} in some detail.\n\n"
             for i in range(8)]
    page = docs / "manual.md"
    page.write_text("# Manual\n\n" + "".join(parts))
    first = build(settings, [docs], embedder)
    parts[3] = "## Section 3\n\nSection 3 now explains a new flag, --turbo.\n\n"
    page.write_text("# Manual\n\n" + "".join(parts))
    r = build(settings, [docs], embedder)
    assert r.updated == 1 and 1 <= r.embedded_chunks < first.embedded_chunks
    assert r.embedded_chunks + r.reused_chunks == IndexReader(settings.index).n_chunks
    assert search(settings, embedder, "turbo flag", k=1).hits[0].chunk.doc_id == "manual.md"


def test_a_first_index_is_searchable_while_it_is_embedded(settings, tmp_path):
    docs = tmp_path / "docs"
    bulk(docs, 60)
    emb = KeywordEmbedder()
    seen: list[tuple[int, int, int]] = []
    found: list = []

    def progress(done: int, total: int) -> None:
        r = IndexReader(settings.index)
        seen.append((r.generation, r.n_embedded, r.n_chunks))
        if not found:  # a note not embedded yet is found by its words
            found.append(search(settings, emb, "marker59 station", k=1))
        r.close()

    report = build(settings, [docs], emb, first_batch=8, progress=progress)
    assert report.embedded_chunks == 60 and report.coverage == 1.0
    first = seen[0]
    assert first[1] == 0 and first[2] == 60  # BM25 over all, no vector yet
    embedded = [e for _, e, _ in seen]
    assert embedded == sorted(embedded) and embedded[-1] < 60
    assert len({g for g, _, _ in seen}) >= 3  # each batch switched in as a generation
    hit = found[0].hits[0]
    assert hit.chunk.doc_id == "note059.md" and hit.dense_rank is None
    # its dense similarity, for the answerability decision, as it will be once embedded
    expected = float(emb._vec(index_text(hit.chunk)) @ emb.embed_query("marker59 station"))
    assert hit.dense_score == pytest.approx(expected, abs=1e-6)
    assert found[0].nearest == pytest.approx(max(h.dense_score for h in found[0].hits))
    assert found[0].coverage == 0.0
    done = IndexReader(settings.index)
    assert done.n_embedded == done.n_chunks == 60
    assert done.calibration is not None and done.calibration["generation"] == done.generation
    assert done.manifest.to_json()["counts"] == {"docs": 60, "chunks": 60,
                                                 "languages": {"en": 60}}


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_stopped_run_leaves_a_partial_index_the_next_run_completes(settings, tmp_path, kind):
    docs = tmp_path / "docs"
    bulk(docs, 40)
    emb = KeywordEmbedder()
    stop = threading.Event()
    opts = BuildOptions(dense_index=kind)
    r = build(settings, [docs], emb, first_batch=8, stop=stop, options=opts,
              progress=lambda done, total: stop.set())
    assert r.added == 40 and r.embedded_chunks == 8 and r.coverage == 8 / 40
    line = _run_line(r)
    assert "embedded 8 chunks (20% of the index embedded: the next run goes on)" in line
    assert ", skipped 0 files (" in line
    reader = IndexReader(settings.index)
    assert (reader.n_embedded, reader.n_chunks) == (8, 40)
    assert reader.calibration is None  # until every chunk has a vector: the default
    status = index_status(reader)
    assert (status.embedded, status.coverage) == (8, 0.2)
    assert "(8 embedded so far)" in render_status(status)
    res = search(settings, KeywordEmbedder(), "marker3 dawn", k=3)
    assert res.hits[0].chunk.doc_id == "note003.md" and res.coverage == 0.2
    reader.close()
    again = build(settings, [docs], emb, options=opts)  # nothing changed: the rest is embedded
    assert (again.added, again.unchanged, again.embedded_chunks) == (0, 40, 32)
    assert again.coverage == 1.0 and emb.calls == 40
    done = IndexReader(settings.index)
    assert done.n_embedded == 40 and done.dense.kind == kind
    assert done.calibration is not None and done.calibration["generation"] == done.generation
    # every row holds its own chunk's vector, whichever batch it came in
    expected = np.stack([emb._vec(index_text(c)) for c in done.chunks(list(range(40)))])
    np.testing.assert_allclose(done.vectors(range(40)), expected, atol=1e-6)


CRASH_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from helpers import KeywordEmbedder
    from mcp_rag.index.update import index_paths
    print("started", flush=True)
    index_paths({index!r}, [{docs!r}], KeywordEmbedder(delay=0.05), quiet=True,
                first_batch=10)
    print("finished", flush=True)
    """
)


def test_a_crash_while_vectors_arrive_leaves_a_readable_index(settings, tmp_path):
    docs = tmp_path / "docs"
    bulk(docs, 200)
    script = CRASH_SCRIPT.format(tests=str(Path(__file__).parent), index=str(settings.index),
                                 docs=str(docs))
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until a batch of vectors has been switched in
            name = read_current(settings.index)
            if name is not None and int(name.removeprefix("gen-")) >= 2:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)  # 200 chunks x 50 ms: killed well inside
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    reader = IndexReader(settings.index)
    assert 10 <= reader.n_embedded < reader.n_chunks == 200
    emb = KeywordEmbedder()
    assert search(settings, emb, "marker199 dawn", k=1).hits[0].chunk.doc_id == "note199.md"
    r = build(settings, [docs], emb)
    assert r.added == 0 and r.embedded_chunks == 200 - reader.n_embedded
    assert IndexReader(settings.index).n_embedded == 200
    assert list(settings.index.glob(".gen-*")) == []


def test_a_refusal_while_embedding_says_the_index_is_still_being_built():
    from mcp_rag.answer.compose import AnswerPolicy, compose
    from mcp_rag.retrieve.result import SearchResult

    policy = AnswerPolicy(budget=3, margin=1.0, min_score=0.0, relevance_floor=0.0)
    r = SearchResult(query="q", mode="hybrid", hits=[], generation=2, no_answer=True,
                     coverage=0.25)
    c = compose("q", r, None, None, policy)
    assert not c.answered
    assert "still being built (25% of the passages are embedded)" in c.no_answer_reason
    assert "still being built" in c.text
    done = compose("q", SearchResult(query="q", mode="hybrid", hits=[], generation=3,
                                     no_answer=True), None, None, policy)
    assert "still being built" not in done.text
    out = SearchOutput(query="q", results=[], no_answer=True, best_score=None, reranked=False,
                       rerank_status=RerankStatus.NOT_REQUESTED, rerank_reason=None,
                       generation=2, coverage=0.25, timings_ms={})
    text = render_search(out)
    assert "Still indexing: 25% of the passages are embedded" in text
    assert "not in what has been indexed so far" in text
    assert "Say the documents do not contain it" not in text
