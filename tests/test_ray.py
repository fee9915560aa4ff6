"""Embedding on a local Ray cluster (started bound to 127.0.0.1, its files and HOME under the
test's tmp path, shut down by the test; never `ray stop`): the same chunks and vectors as
a local run, into either backend, surviving a worker that dies."""

from __future__ import annotations

import functools
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import SAMPLE, DiesOnceEmbedder, KeywordEmbedder

from mcp_rag.errors import QueryError
from mcp_rag.index.backend import backend_for
from mcp_rag.index.store import IndexReader
from mcp_rag.index.update import index_paths
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed") \
    if os.environ.get("MCP_RAG_REQUIRE_RAY") != "1" else __import__("ray")
from mcp_rag.index.ray_embed import (  # noqa: E402
    RayEmbedder,
    chunk_on_ray,
    load_on_ray,
    ray_cluster,
)

TESTS = str(Path(__file__).parent)

# A slow Ray start (twice in three fresh clones: "Failed to get node info ... Deadline
# Exceeded", then up after 33 s) drops handles of Ray's own processes while they run;
# their ResourceWarning, raised from a garbage collection during the module's set-up,
# is Ray's, not ours. Only that warning, only here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:subprocess \\d+ is still running:ResourceWarning")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    home = tmp_path_factory.mktemp("rayhome")
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(home)  # Ray writes its auth token under HOME as it starts
    try:
        for attempt in (1, 2):
            try:
                ray.init(_node_ip_address="127.0.0.1", _temp_dir=str(home / f"r{attempt}"),
                         num_cpus=2, include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": {"PYTHONPATH": TESTS, "HOME": str(home)}})
                break
            except Exception as e:
                # Ray waits 30 s for its GCS and raylet to come up; on a loaded 2-core
                # machine they have not ("timed out during startup", "Timed out waiting
                # for file .../gcs_server_port"): start a fresh session once more. The
                # processes of the failed one are let go here, where their warnings are
                # expected, not at some later test's garbage collection.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ResourceWarning)
                    ray.shutdown()
                    gc.collect()
                if attempt == 2 or "timed out" not in str(e).lower():
                    raise
    finally:
        if old is not None:
            os.environ["HOME"] = old
    try:
        yield ray
    finally:
        ray.shutdown()


def on_ray(factory=KeywordEmbedder) -> RayEmbedder:
    return RayEmbedder(KeywordEmbedder(), factory, actors=2, batch_size=4, quiet=True)


def assert_same_index(local: Path, ray_built: Path, atol: float = 1e-6) -> None:
    """The same chunks (ids, texts, spans, sections) and vectors within ``atol``."""
    a, b = IndexReader(local), IndexReader(ray_built)
    try:
        rows = list(range(a.n_chunks))
        assert b.chunks(rows) == a.chunks(rows)
        np.testing.assert_allclose(
            b.vectors(range(b.n_embedded)), a.vectors(range(a.n_embedded)), atol=atol
        )
    finally:
        a.close()
        b.close()


def test_ray_gives_the_chunks_and_vectors_of_a_local_run(cluster, tmp_path):
    index_paths(tmp_path / "local", [SAMPLE], KeywordEmbedder(), quiet=True)
    index_paths(tmp_path / "ray", [SAMPLE], on_ray(), quiet=True, load=load_on_ray,
                chunk=chunk_on_ray)
    assert_same_index(tmp_path / "local", tmp_path / "ray")
    s = Settings(index=tmp_path / "ray", models=tmp_path, rerank=False)
    local = Settings(index=tmp_path / "local", models=tmp_path, rerank=False)
    for q in ("KB-ERR-2847 storage quota", "refund within 30 days"):
        got = Pipeline(s, embedder=KeywordEmbedder()).search(q, k=3).hits
        want = Pipeline(local, embedder=KeywordEmbedder()).search(q, k=3).hits
        assert [h.chunk.chunk_id for h in got] == [h.chunk.chunk_id for h in want]


def test_a_worker_that_dies_is_replaced_and_the_run_completes(cluster, tmp_path):
    index_paths(tmp_path / "local", [SAMPLE], KeywordEmbedder(), quiet=True)
    factory = functools.partial(DiesOnceEmbedder, str(tmp_path / "died"))
    rep = index_paths(tmp_path / "ray", [SAMPLE], on_ray(factory), quiet=True)
    assert (tmp_path / "died").exists() and rep.generation == 1
    assert_same_index(tmp_path / "local", tmp_path / "ray")


def test_files_read_on_ray_are_what_a_local_run_reads_and_skips(cluster, tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "kb")
    (tmp_path / "kb" / "broken.docx").write_bytes(b"PK\x03\x04 not a docx")
    (tmp_path / "kb" / "empty.eml").write_text("no e-mail here\n")
    a = index_paths(tmp_path / "a", [tmp_path / "kb"], KeywordEmbedder(), quiet=True)
    b = index_paths(tmp_path / "b", [tmp_path / "kb"], on_ray(), quiet=True, load=load_on_ray,
                    chunk=chunk_on_ray)
    assert (b.added, sorted(b.skipped), b.warnings) == (a.added, sorted(a.skipped), a.warnings)
    ra, rb = IndexReader(tmp_path / "a"), IndexReader(tmp_path / "b")
    try:
        assert [ra.document(d) for d in ra.doc_ids] == [rb.document(d) for d in rb.doc_ids]
    finally:
        ra.close()
        rb.close()


def test_an_incremental_run_on_ray_embeds_only_what_changed(cluster, tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "kb")
    index_paths(tmp_path / "index", [tmp_path / "kb"], on_ray(), quiet=True)
    (tmp_path / "kb" / "new.md").write_text("# New\n\nNumbats eat termites.\n")
    rep = index_paths(tmp_path / "index", [tmp_path / "kb"], on_ray(), quiet=True)
    assert (rep.added, rep.embedded_chunks, rep.generation) == (1, 1, 2)


def test_ray_writes_into_milvus_too(cluster, tmp_path, milvus_uri):
    s = Settings(index=tmp_path / f"ray_{os.getpid()}", models=tmp_path, rerank=False,
                 backend="milvus", milvus_uri=milvus_uri)
    index_paths(s.index, [SAMPLE], on_ray(), quiet=True, backend=backend_for(s))
    hits = Pipeline(s, embedder=KeywordEmbedder()).search("KB-ERR-2847 storage quota", k=1)
    assert hits.hits[0].chunk.doc_id == "support/error-codes.md"


def test_joining_a_cluster_that_is_running_reuses_it(cluster):
    with ray_cluster("local") as r:
        assert r.is_initialized()
    assert ray.is_initialized()  # not ours to stop


def test_without_the_extra_the_error_says_how_to_install_it(monkeypatch):
    import builtins

    from mcp_rag.index import ray_embed

    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(QueryError, match=r"pip install 'mcp-rag-server\[ray\]'"):
        ray_embed._ray()


@pytest.mark.slow
def test_the_index_command_with_ray_matches_a_local_run(tmp_path, models_dir):
    """`mcp-rag index --ray` starts its own local cluster (files under the test's tmp path),
    embeds with the real model and stops it; the vectors are those of a local run."""
    short = tempfile.mkdtemp(prefix="r", dir="/tmp")  # Ray's socket paths must stay short
    env = {**os.environ, "MCP_RAG_MODELS": str(models_dir), "HOME": str(tmp_path),
           "MCP_RAG_RAY_TEMP_DIR": short, "MCP_RAG_RAY_ACTORS": "2"}
    def run(*args: str) -> subprocess.CompletedProcess:
        got = subprocess.run([sys.executable, "-m", "mcp_rag", *args], env=env,
                             capture_output=True, text=True)
        assert got.returncode == 0, got.stderr[-3000:]
        return got

    run("--index", str(tmp_path / "local"), "index", str(SAMPLE), "-q")
    out = run("--index", str(tmp_path / "ray"), "index", str(SAMPLE), "--ray")
    assert "chunks embedded" in out.stderr and "added 6" in out.stdout
    shutil.rmtree(short, ignore_errors=True)
    assert_same_index(tmp_path / "local", tmp_path / "ray", atol=1e-5)


def test_a_too_long_session_folder_is_a_clear_error(tmp_path):
    with pytest.raises(QueryError, match="MCP_RAG_RAY_TEMP_DIR"), \
            ray_cluster("local", temp_dir=tmp_path / ("x" * 80)):
        pass
