from __future__ import annotations

import os
import shutil
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
