from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import SAMPLE, KeywordEmbedder, KeywordReranker

from mcp_rag.index.update import index_paths
from mcp_rag.models.pack import PACK, is_present
from mcp_rag.settings import Settings, default_models_dir

# No test may reach the Hugging Face Hub: the pack is on disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled sample knowledge base."""
    dst = tmp_path / "kb"
    shutil.copytree(SAMPLE, dst)
    return dst


@pytest.fixture
def embedder() -> KeywordEmbedder:
    return KeywordEmbedder()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # First stage only; the rerank tests turn the cross-encoder on themselves.
    return Settings(index=tmp_path / "index", models=tmp_path / "models", rerank=False)


@pytest.fixture(scope="session")
def sample_index_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample knowledge base indexed once per run with the keyword embedder. Read only:
    tests take a copy through ``indexed``."""
    root = tmp_path_factory.mktemp("sample-index")
    shutil.copytree(SAMPLE, root / "kb")
    index_paths(root / "index", [root / "kb"], KeywordEmbedder(), quiet=True)
    return root / "index"


@pytest.fixture
def indexed(settings: Settings, sample_index_once: Path) -> Settings:
    """``settings`` over a private copy of the sample index (so a test may write to it)."""
    shutil.copytree(sample_index_once, settings.index)
    return settings


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The real model pack. Missing: skip, unless MCP_RAG_REQUIRE_PACK=1 (CI) makes it fail."""
    d = Path(os.environ.get("MCP_RAG_MODELS") or default_models_dir())
    missing = [m.name for m in PACK if not is_present(d, m)]
    if missing:
        msg = f"model pack missing in {d}: {missing}; run `mcp-rag models pull`"
        if os.environ.get("MCP_RAG_REQUIRE_PACK") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI in this process, with the keyword models in place of the pack."""
    # The CLI loads the embedder named by settings; give it the keyword embedder instead.
    from mcp_rag import cli as cli_mod

    monkeypatch.setattr(cli_mod, "_load_embedder", lambda s: KeywordEmbedder())
    import mcp_rag.retrieve.pipeline as pipeline

    real = pipeline.Pipeline.from_settings.__func__

    def from_settings(cls, settings, **kw):
        kw.setdefault("embedder", KeywordEmbedder())
        kw.setdefault("reranker", KeywordReranker())
        return real(cls, settings, **kw)

    monkeypatch.setattr(pipeline.Pipeline, "from_settings", classmethod(from_settings))
    return CliRunner()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MilvusLite:
    """A real `milvus-lite server` on a loopback port, its data in a temp folder."""

    def __init__(self, data: Path) -> None:
        import subprocess
        import sys
        import time

        exe = Path(sys.executable).parent / "milvus-lite"
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        data.mkdir(parents=True, exist_ok=True)
        self.log = (data / "server.log").open("w")
        self.proc = subprocess.Popen(
            [str(exe), "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(data)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        import socket

        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-lite exited: {(data / 'server.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("milvus-lite did not start in 60 s")

    def stop(self) -> None:
        """Stopped by its own PID (never a pkill that could hit another one); idempotent."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except Exception:
                self.proc.kill()
                self.proc.wait(timeout=20)
        if not self.log.closed:
            self.log.close()


def milvus_lite(data: Path) -> MilvusLite:
    """A started server; skipped without the [milvus] extra, unless MCP_RAG_REQUIRE_MILVUS=1
    (make test) makes that a failure."""
    exe_ok = shutil.which("milvus-lite", path=str(Path(sys.executable).parent))
    try:
        import pymilvus  # noqa: F401
    except ImportError:
        exe_ok = None
    if not exe_ok:
        msg = "the [milvus] extra is not installed (pip install 'mcp-rag-server[milvus]')"
        if os.environ.get("MCP_RAG_REQUIRE_MILVUS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return MilvusLite(data)


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory):
    """One Milvus Lite server for the run (each test uses its own index name)."""
    server = milvus_lite(tmp_path_factory.mktemp("milvus"))
    yield server.uri
    server.stop()
