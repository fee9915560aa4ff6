from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# No test may reach the Hugging Face Hub: the pack is on disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from helpers import KeywordEmbedder  # noqa: E402

from mcp_rag.models.pack import PACK, is_present  # noqa: E402
from mcp_rag.settings import Settings, default_models_dir  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "mcp_rag" / "sample"
SCIFACT = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "scifact"


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
