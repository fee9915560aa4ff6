"""The persisted hybrid index: incremental runs, generations, corruption, crashes, search."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import KeywordEmbedder

from mcp_rag.errors import (
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
)
from mcp_rag.index.manifest import BuildOptions, ChunkingParams, Counts
from mcp_rag.index.store import IndexReader, read_current, read_last_run, write_lock
from mcp_rag.index.update import index_paths, remove_docs
from mcp_rag.retrieve.pipeline import Pipeline


def build(settings, paths, embedder, **kw):
    return index_paths(settings.index, paths, embedder, quiet=True, **kw)


def search(settings, embedder, query, **kw):
    return Pipeline(settings, embedder=embedder).search(query, **kw)


def test_first_run_indexes_sample_and_second_run_embeds_nothing(settings, sample_dir, embedder):
    r1 = build(settings, [sample_dir], embedder)
    assert (r1.added, r1.updated, r1.removed, r1.unchanged) == (6, 0, 0, 0)
    assert r1.embedded_chunks == embedder.calls > 0
    assert r1.generation == 1
    calls = embedder.calls
    r2 = build(settings, [sample_dir], embedder)
    assert (r2.added, r2.updated, r2.removed, r2.unchanged, r2.embedded_chunks) == (0, 0, 0, 6, 0)
    assert embedder.calls == calls
    assert r2.generation == 1 and not r2.changed
    assert read_last_run(settings.index)["unchanged"] == 6
    reader = IndexReader(settings.index)
    assert reader.manifest.counts == Counts(docs=6, chunks=r1.embedded_chunks,
                                            languages={"en": r1.embedded_chunks})
    assert {d["doc_id"] for d in reader.documents()} == {
        "README.md",
        "policies/refund-policy.md",
        "policies/refund-policy-2023.md",
        "support/error-codes.md",
        "support/onboarding.txt",
        "support/sla-tiers.html",
    }


def test_skips_a_folder_is_expected_to_have_are_one_line_a_reason(
        tmp_path, settings, embedder, caplog):
    import logging

    docs = tmp_path / "docs"
    (docs / "images").mkdir(parents=True)
    (docs / "guide.md").write_text("# Guide\n\nCapture filters limit what is captured.\n")
    (docs / "ws.css").write_text("body { margin: 0 }")
    for name in ("note", "tip", "warning", "caution"):
        (docs / "images" / f"{name}.svg").write_text("<svg/>")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with caplog.at_level(logging.INFO, logger="mcp_rag.index.update"):
        r = build(settings, [docs], embedder)
    assert r.added == 1 and len(r.skipped) == 6  # the report keeps every file
    warned = [m.getMessage() for m in caplog.records if m.levelno == logging.WARNING]
    svgs = [m for m in warned if "unsupported file type .svg" in m]
    first = ", ".join(str(docs / "images" / f"{n}.svg") for n in ("caution", "note", "tip"))
    assert svgs == [f"skipped 4 files: unsupported file type .svg ({first}, ...)"]
    # a reason one file has is said of it, by name
    assert f"skipped {docs / 'ws.css'}: unsupported file type .css" in warned
    assert any(m.startswith(f"skipped {docs / 'broken.pdf'}: ") for m in warned)
    info = [m.getMessage() for m in caplog.records if m.levelno == logging.INFO]
    assert f"skipped {docs / 'images' / 'warning.svg'}: unsupported file type .svg" in info


def test_change_add_delete_embed_only_what_changed(settings, sample_dir, embedder):
    build(settings, [sample_dir], embedder)
    onboarding_chunks = len(
        [c for c in IndexReader(settings.index).documents() if c["doc_id"].endswith(".txt")]
    )
    assert onboarding_chunks == 1
    (sample_dir / "support" / "onboarding.txt").write_text(
        "Onboarding\n\nBadges are collected at reception on the first day."
    )
    (sample_dir / "support" / "new.md").write_text("# Parking\n\nParking is free after 6pm.")
    (sample_dir / "policies" / "refund-policy-2023.md").unlink()
    before = embedder.calls
    r = build(settings, [sample_dir], embedder)
    assert (r.added, r.updated, r.removed, r.unchanged) == (1, 1, 1, 4)
    assert r.embedded_chunks == embedder.calls - before == 2
    assert r.generation == 2
    res = search(settings, embedder, "badges reception", k=1)
    assert res.hits[0].chunk.doc_id == "support/onboarding.txt"
    assert res.generation == 2
    ids = {d["doc_id"] for d in IndexReader(settings.index).documents()}
    assert "policies/refund-policy-2023.md" not in ids and "support/new.md" in ids


def test_same_content_new_mtime_is_unchanged(settings, sample_dir, embedder):
    build(settings, [sample_dir], embedder)
    f = sample_dir / "support" / "error-codes.md"
    os.utime(f, (time.time() + 100, time.time() + 100))
    r = build(settings, [sample_dir], embedder)
    assert (r.added, r.updated, r.unchanged, r.embedded_chunks, r.changed) == (0, 0, 6, 0, False)


def test_other_roots_stay_and_single_files_do_not_remove_siblings(tmp_path, settings, embedder):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "one.md").write_text("# One\n\nApples are red.")
    (a / "two.md").write_text("# Two\n\nBananas are yellow.")
    (b / "three.txt").write_text("Cherries are dark red.")
    build(settings, [a / "one.md"], embedder)
    build(settings, [a / "two.md"], embedder)
    build(settings, [b], embedder)
    assert {d["doc_id"] for d in IndexReader(settings.index).documents()} == {
        "one.md", "two.md", "three.txt",
    }
    (b / "three.txt").unlink()
    r = build(settings, [b], embedder)
    assert r.removed == 1
    assert {d["doc_id"] for d in IndexReader(settings.index).documents()} == {"one.md", "two.md"}


def test_same_relative_path_under_two_roots_gets_distinct_ids(tmp_path, settings, embedder):
    for root, word in (("x", "xylophone"), ("y", "yodel")):
        (tmp_path / root).mkdir()
        (tmp_path / root / "README.md").write_text(f"# R\n\n{word}")
    build(settings, [tmp_path / "x"], embedder)
    build(settings, [tmp_path / "y"], embedder)
    ids = {d["doc_id"] for d in IndexReader(settings.index).documents()}
    assert ids == {"README.md", "y/README.md"}


def test_remove_by_id_prefix_and_path(settings, sample_dir, embedder):
    build(settings, [sample_dir], embedder)
    r = remove_docs(settings.index, ["README.md"])
    assert r.removed == 1 and r.generation == 2
    r = remove_docs(settings.index, ["policies/"])
    assert r.removed == 2
    r = remove_docs(settings.index, [str(sample_dir / "support" / "sla-tiers.html")])
    assert r.removed == 1
    r = remove_docs(settings.index, ["nothing-like-this"])
    assert r.removed == 0 and "matches no indexed document" in r.warnings[0]
    assert {d["doc_id"] for d in IndexReader(settings.index).documents()} == {
        "support/error-codes.md", "support/onboarding.txt",
    }
    assert search(settings, embedder, "refund annual plan").hits[0].chunk.doc_id.startswith(
        "support/"
    )


def test_jsonl_corpus_keeps_ids_and_removes_vanished_lines(tmp_path, settings, embedder):
    f = tmp_path / "corpus.jsonl"
    rows = [{"_id": f"d{i}", "title": f"T{i}", "text": f"word{i} shared"} for i in range(5)]
    f.write_text("\n".join(json.dumps(r) for r in rows))
    assert build(settings, [f], embedder).added == 5
    f.write_text("\n".join(json.dumps(r) for r in rows[:3] + [{**rows[3], "text": "changed"}]))
    r = build(settings, [f], embedder)
    assert (r.added, r.updated, r.removed, r.unchanged, r.embedded_chunks) == (0, 1, 1, 3, 1)
    assert search(settings, embedder, "word2", k=1).hits[0].chunk.doc_id == "d2"


def test_model_or_chunking_change_needs_rebuild(settings, sample_dir, embedder):
    build(settings, [sample_dir], embedder)
    other = KeywordEmbedder(name="test/other")
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        build(settings, [sample_dir], other)
    with pytest.raises(IndexMismatchError, match="chunking"):
        build(settings, [sample_dir], embedder,
              options=BuildOptions(chunking=ChunkingParams(target_tokens=50)))
    r = build(settings, [sample_dir], other, rebuild=True)
    assert r.added == 6 and r.generation == 2
    with pytest.raises(IndexMismatchError, match="built with embedder 'test/other'"):
        Pipeline(settings, embedder=embedder)


def test_missing_index_names_the_fix(settings, embedder):
    with pytest.raises(IndexNotFoundError,
                       match=re.escape(f"mcp-rag --index {settings.index} index PATH...")):
        Pipeline(settings, embedder=embedder)


@pytest.mark.parametrize("victim", ["manifest.json", "dense.faiss", "meta.sqlite", "bm25.npz"])
def test_corrupt_index_names_the_fix_and_rebuild_recovers(settings, sample_dir, embedder, victim):
    build(settings, [sample_dir], embedder)
    gen = settings.index / read_current(settings.index)
    (gen / victim).write_bytes(b"garbage" * 10)
    with pytest.raises(IndexCorruptError, match="--rebuild"):
        Pipeline(settings, embedder=embedder)
    with pytest.raises(IndexCorruptError):
        build(settings, [sample_dir], embedder)
    r = build(settings, [sample_dir], embedder, rebuild=True)
    assert r.added == 6
    assert search(settings, embedder, "refund").hits


def test_second_writer_is_refused(settings, sample_dir, embedder):
    with write_lock(settings.index), pytest.raises(IndexBusyError, match="another process"):
        build(settings, [sample_dir], embedder)


def test_old_generations_are_pruned_but_previous_kept(settings, sample_dir, embedder):
    build(settings, [sample_dir], embedder)
    for i in range(3):
        (sample_dir / f"extra{i}.md").write_text(f"# E{i}\n\nextra {i}")
        build(settings, [sample_dir], embedder)
    gens = sorted(p.name for p in settings.index.glob("gen-*"))
    assert gens == ["gen-000003", "gen-000004"]
    assert read_current(settings.index) == "gen-000004"


def test_reader_sees_new_generation_via_refresh(settings, sample_dir, embedder):
    build(settings, [sample_dir], embedder)
    p = Pipeline(settings, embedder=embedder)
    (sample_dir / "zebra.md").write_text("# Zebra\n\nZebras have stripes.")
    build(settings, [sample_dir], embedder)
    assert p.search("zebra stripes", k=1).hits[0].chunk.doc_id != "zebra.md"
    assert p.refresh() is True
    assert p.search("zebra stripes", k=1).hits[0].chunk.doc_id == "zebra.md"
    assert p.refresh() is False


CRASH_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from helpers import KeywordEmbedder
    from mcp_rag.index.update import index_paths
    print("started", flush=True)
    index_paths({index!r}, [{docs!r}], KeywordEmbedder(delay=0.05), quiet=True)
    print("finished", flush=True)
    """
)


def test_crash_mid_build_leaves_previous_generation_usable(tmp_path, settings, sample_dir):
    emb = KeywordEmbedder()
    build(settings, [sample_dir], emb)
    for i in range(200):
        (sample_dir / f"bulk{i}.txt").write_text(f"Bulk document {i} about topic{i}.")
    script = CRASH_SCRIPT.format(
        tests=str(Path(__file__).parent), index=str(settings.index), docs=str(sample_dir)
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(2.0)  # 200 chunks x 50 ms = 10 s of embedding: killed well inside it
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert read_current(settings.index) == "gen-000001"
    res = search(settings, emb, "KB-ERR-2847", k=1)
    assert res.generation == 1
    assert res.hits[0].chunk.doc_id == "support/error-codes.md"
    # The next run finishes the job.
    r = build(settings, [sample_dir], emb)
    assert r.added == 200 and r.generation == 2
    assert list(settings.index.glob(".gen-*")) == []


def test_crash_after_generation_written_but_before_switch(settings, sample_dir, embedder,
                                                          monkeypatch):
    build(settings, [sample_dir], embedder)
    (sample_dir / "late.md").write_text("# Late\n\nLate arrival.")
    import mcp_rag.index.store as store

    def boom(*a, **k):
        raise OSError("disk vanished")

    monkeypatch.setattr(store, "atomic_write_text", boom)
    with pytest.raises(OSError, match="disk vanished"):
        build(settings, [sample_dir], embedder)
    monkeypatch.undo()
    assert read_current(settings.index) == "gen-000001"
    assert search(settings, embedder, "late arrival", k=1).generation == 1
    r = build(settings, [sample_dir], embedder)
    assert r.added == 1 and read_current(settings.index) == f"gen-{r.generation:06d}"


def test_hnsw_index_option(settings, sample_dir, embedder):
    build(settings, [sample_dir], embedder, options=BuildOptions(dense_index="hnsw"))
    assert IndexReader(settings.index).dense.kind == "hnsw"
    assert search(settings, embedder, "KB-ERR-2847").hits[0].chunk.doc_id == (
        "support/error-codes.md"
    )


def test_stale_temporary_generation_is_cleaned(settings, sample_dir, embedder):
    build(settings, [sample_dir], embedder)
    stale = settings.index / ".gen-000002.tmp-99999"
    stale.mkdir()
    (stale / "meta.sqlite").write_bytes(b"half written")
    assert search(settings, embedder, "refund").generation == 1  # readers ignore it
    (sample_dir / "more.md").write_text("# More\n\nMore text.")
    r = build(settings, [sample_dir], embedder)
    assert not stale.exists()
    assert r.generation == 2


def test_index_from_another_bm25_tokenizer_asks_for_rebuild(settings, sample_dir, embedder):
    build(settings, [sample_dir], embedder)
    manifest = settings.index / read_current(settings.index) / "manifest.json"
    m = json.loads(manifest.read_text())
    m["bm25"]["tokenizer"] = "something-older"
    manifest.write_text(json.dumps(m))
    with pytest.raises(IndexMismatchError, match="BM25 tokenizer 'something-older'"):
        Pipeline(settings, embedder=embedder)
    assert build(settings, [sample_dir], embedder, rebuild=True).added == 6


def test_files_are_re_read_once_after_the_loaders_change(settings, sample_dir, embedder):
    from mcp_rag.ingest.loaders import loader_version

    build(settings, [sample_dir], embedder)
    manifest = settings.index / read_current(settings.index) / "manifest.json"
    m = json.loads(manifest.read_text())
    assert m["loader_version"] == loader_version()
    del m["loader_version"]  # an index written before loaders were versioned
    manifest.write_text(json.dumps(m))
    calls = embedder.calls
    r = build(settings, [sample_dir], embedder)
    # every file read again; the text is the same, so nothing is re-embedded
    assert (r.added, r.updated, r.unchanged, r.embedded_chunks) == (0, 0, 6, 0)
    assert embedder.calls == calls and r.generation == 2
    assert IndexReader(settings.index).manifest.loader_version == loader_version()
    assert build(settings, [sample_dir], embedder).changed is False  # and only once


def test_only_the_formats_a_new_loader_reads_differently_are_re_read(
    settings, sample_dir, embedder, monkeypatch
):
    """Versions 9 to 22 changed how the text formats, JSONL records and images are read:
    an index built by version 8 re-reads those files once, and not its PDFs (OCR is
    slow)."""
    from helpers import minimal_pdf

    from mcp_rag.index import update
    from mcp_rag.ingest import loaders

    (sample_dir / "support" / "runbook.jsonl").write_text(
        '{"_id": "r1", "title": "Runbook", "text": "Restart it."}\n')
    (sample_dir / "support" / "escalation.pdf").write_bytes(
        minimal_pdf(["Escalate a P1 incident to the on-call lead within ten minutes."]))
    build(settings, [sample_dir], embedder)
    manifest = settings.index / read_current(settings.index) / "manifest.json"
    m = json.loads(manifest.read_text())
    m["loader_version"] = 8 * 2 + m["loader_version"] % 2  # built by version 8
    manifest.write_text(json.dumps(m))
    read: list[str] = []

    def counted(src):
        read.append(src.path.name)
        return loaders.load_file(src)

    monkeypatch.setattr(update, "load_file", counted)
    r = build(settings, [sample_dir], embedder)
    assert sorted(read) == ["README.md", "error-codes.md", "onboarding.txt",
                            "refund-policy-2023.md", "refund-policy.md", "runbook.jsonl",
                            "sla-tiers.html"]  # not escalation.pdf
    assert (r.updated, r.unchanged) == (0, 8) and r.changed  # same text: nothing embedded
    assert IndexReader(settings.index).manifest.loader_version == loaders.loader_version()
    read.clear()
    assert build(settings, [sample_dir], embedder).changed is False and read == []
    # where OCR became possible (or went away), or the index is older: every file
    assert loaders.read_differently(8 * 2 + 1 - m["loader_version"] % 2) is None
    assert loaders.read_differently(7 * 2 + m["loader_version"] % 2) is None
    assert loaders.read_differently(loaders.loader_version()) == frozenset()
    # version 13 changed HTML only, version 14 how every text format is cut, version 21
    # how an image's transparent pixels are read, version 22 every format but PDFs and
    # images (invisible characters): an index of version 20 re-reads all but its PDFs, one
    # of version 21 not its images either
    assert loaders.CHANGED_FORMATS[13] == frozenset({".html", ".htm", ".xhtml", ".eml"})
    assert loaders.read_differently(12 * 2 + m["loader_version"] % 2) \
        == loaders.CHANGED_FORMATS[14] | loaders.CHANGED_FORMATS[21] | loaders.CHANGED_FORMATS[22]
    images = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
    assert loaders.read_differently(20 * 2 + m["loader_version"] % 2) \
        == images | loaders.CHANGED_FORMATS[22]
    assert not {".pdf", *images} & loaders.read_differently(21 * 2 + m["loader_version"] % 2)
    assert {".md", ".html", ".jsonl", ".py"} <= loaders.CHANGED_FORMATS[22]
    assert ".pdf" not in loaders.CHANGED_FORMATS[14] and ".jsonl" not in \
        loaders.CHANGED_FORMATS[14] and {".md", ".rst", ".txt"} <= loaders.CHANGED_FORMATS[14]


def test_a_new_chunking_re_chunks_every_document_after_the_loaders_change(
    settings, sample_dir, embedder, monkeypatch
):
    from mcp_rag.ingest import text

    build(settings, [sample_dir], embedder)
    manifest = settings.index / read_current(settings.index) / "manifest.json"
    m = json.loads(manifest.read_text())
    m["loader_version"] -= 1  # built by the previous version...
    manifest.write_text(json.dumps(m))
    monkeypatch.setattr(text, "CHUNKING_VERSION", text.CHUNKING_VERSION + 1)  # ...cut otherwise
    r = build(settings, [sample_dir], embedder)
    assert (r.added, r.updated, r.unchanged) == (0, 6, 0)
    # every chunk is cut anew: embedded, or given the vector of the same text
    assert r.embedded_chunks + r.reused_chunks == IndexReader(settings.index).n_chunks
    assert build(settings, [sample_dir], embedder).changed is False
