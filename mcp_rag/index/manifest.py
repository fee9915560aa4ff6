"""The manifest of an index generation: the settings that built it, read and written here only.

Saved as ``manifest.json`` beside the generation's files (as bm25s saves ``params.index.json``
beside its arrays), so that a reader queries an index with the models and parameters that
built it. The JSON layout is unchanged since format 1; this module is its one typed view.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from mcp_rag.errors import IndexCorruptError
from mcp_rag.settings import Settings

FORMAT_VERSION = 1
FILENAME = "manifest.json"

DenseKind = Literal["flat", "hnsw"]


@dataclass(frozen=True)
class EmbedderInfo:
    """The embedding model that made the vectors: a query must be embedded by the same one."""

    name: str
    dim: int


@dataclass(frozen=True)
class ChunkingParams:
    """How documents were cut into chunks."""

    target_tokens: int = 200
    overlap: int = 1


@dataclass(frozen=True)
class BM25Params:
    """Okapi BM25 parameters (rank_bm25's defaults) and the tokenizer of the postings."""

    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25
    tokenizer: str = ""


@dataclass(frozen=True)
class Counts:
    docs: int
    chunks: int
    # Chunks with a vector: rows 0..embedded-1 (a first index of a big folder is searchable
    # by BM25 before it is embedded, and vectors arrive in batches); None: every chunk.
    embedded: int | None = None
    # Passages by language as BM25 analysed them (ISO 639-1 codes); None: an index written
    # before languages were told apart (all analysed as English).
    languages: dict[str, int] | None = None
    ocr_pages: int | None = None  # pages whose passages were read by OCR (None: none known)

    @property
    def n_embedded(self) -> int:
        return self.chunks if self.embedded is None else self.embedded


@dataclass(frozen=True)
class Manifest:
    """Everything a reader must know of a generation before it opens the files."""

    generation: int
    created_at: str
    embedder: EmbedderInfo
    counts: Counts
    chunking: ChunkingParams
    bm25: BM25Params
    dense_index: DenseKind = "flat"
    loader_version: int = 1
    roots: tuple[str, ...] = ()
    format_version: int = FORMAT_VERSION

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def next(self, generation: int, counts: Counts) -> Manifest:
        """This manifest for the next generation, with new counts and a new time stamp."""
        return replace(self, generation=generation, created_at=now(), counts=counts)

    def to_json(self) -> dict[str, Any]:
        """The on-disk layout (format 1)."""
        return {
            "format_version": self.format_version,
            "generation": self.generation,
            "created_at": self.created_at,
            "models": {"embedder": asdict(self.embedder)},
            "dim": self.embedder.dim,
            "counts": {k: v for k, v in asdict(self.counts).items() if v is not None},
            "chunking": asdict(self.chunking),
            "loader_version": self.loader_version,
            "bm25": asdict(self.bm25),
            "dense_index": self.dense_index,
            "roots": list(self.roots),
        }

    @classmethod
    def from_json(cls, data: Any, where: Path | str = FILENAME) -> Manifest:
        """Parse the on-disk layout; IndexCorruptError naming the field if it is damaged."""
        try:
            if not isinstance(data, dict):
                raise TypeError(f"a JSON object was expected, not {type(data).__name__}")
            emb = data["models"]["embedder"]
            dense = data.get("dense_index", "flat")
            if dense not in ("flat", "hnsw"):
                raise ValueError(f"dense_index {dense!r} is not flat or hnsw")
            return cls(
                format_version=int(data["format_version"]),
                generation=int(data["generation"]),
                created_at=str(data["created_at"]),
                embedder=EmbedderInfo(name=str(emb["name"]), dim=int(emb["dim"])),
                counts=Counts(docs=int(data["counts"]["docs"]),
                              chunks=int(data["counts"]["chunks"]),
                              embedded=_optional_int(data["counts"].get("embedded")),
                              languages=_languages(data["counts"].get("languages")),
                              ocr_pages=_optional_int(data["counts"].get("ocr_pages"))),
                chunking=ChunkingParams(**data["chunking"]),
                bm25=BM25Params(**data["bm25"]),
                dense_index=dense,
                loader_version=int(data.get("loader_version", 1)),
                roots=tuple(str(r) for r in data.get("roots", [])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
            raise IndexCorruptError(f"{where} is damaged ({what})") from e

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """The manifest of the generation in ``directory``."""
        path = Path(directory) / FILENAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise IndexCorruptError(f"{path} cannot be read ({type(e).__name__}: {e})") from e
        return cls.from_json(data, path)

    def write(self, directory: Path) -> None:
        (Path(directory) / FILENAME).write_text(json.dumps(self.to_json(), indent=2))


def _languages(value: Any) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("counts.languages must be an object")
    return {str(k): int(v) for k, v in value.items()}


def _optional_int(v: Any) -> int | None:
    return None if v is None else int(v)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class BuildOptions:
    """The settings that shape an index when it is built (checked against the manifest after)."""

    chunking: ChunkingParams = field(default_factory=ChunkingParams)
    dense_index: DenseKind = "flat"

    @classmethod
    def from_settings(cls, s: Settings) -> BuildOptions:
        return cls(ChunkingParams(s.chunk_tokens, s.chunk_overlap), s.dense_index)
