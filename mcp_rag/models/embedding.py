"""Text embedders behind one interface: ONNX runtime + tokenizers (default), sentence-transformers.

Both return float32 rows, L2-normalised, so inner product is cosine similarity.
Texts are sorted by token length before batching so that a batch pads little, and
results come back in the caller's order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from mcp_rag.errors import ModelNotFoundError
from mcp_rag.models.onnx_runner import OnnxModel
from mcp_rag.models.pack import ModelRef
from mcp_rag.models.st_backend import import_sentence_transformers
from mcp_rag.types import Embedder

log = logging.getLogger(__name__)



def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def token_counter(embedder: Embedder) -> Callable[[str], int]:
    """What chunking counts tokens with: the embedder's model-free, picklable counter where
    it has one (workers that chunk get it), else its ``count_tokens``."""
    made = getattr(embedder, "token_counter", None)
    return made() if made is not None else embedder.count_tokens


class TokenCounter:
    """Counts a text's tokens with a ``tokenizers.Tokenizer`` (which pickles)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


class OnnxEmbedder:
    """A BERT-style encoder exported to ONNX, run with onnxruntime on the CPU.

    Args:
        path: folder with ``model.onnx`` and ``tokenizer.json``.
        name: the model id recorded in the index manifest.
        pooling: ``cls`` (bge) or ``mean`` (sentence-transformers MiniLM).
        query_prefix: prepended to queries, not documents (bge: "Represent this sentence ...").
        max_length: tokens per text, longer texts are truncated.
        batch_size: texts per call. Keep 1 for dynamic-int8 models: their activation scales
            are computed over the whole batch, so a batch changes every vector in it.
        threads: intra-op threads (default: all cores).
    """

    def __init__(
        self,
        path: Path,
        name: str,
        *,
        pooling: str = "cls",
        query_prefix: str = "",
        max_length: int = 512,
        batch_size: int = 1,
        threads: int | None = None,
    ) -> None:
        from tokenizers import Tokenizer

        path = Path(path)
        if not (path / "model.onnx").is_file():
            raise ModelNotFoundError(f"no model.onnx in {path}")
        self.name = name
        self.pooling = pooling
        self.query_prefix = query_prefix
        self.max_length = max_length
        self.batch_size = batch_size
        self._model = OnnxModel(path / "model.onnx", threads)
        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(max_length)
        self._count_tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._count_tok.no_padding()
        self._count_tok.no_truncation()
        self.dim = int(self._embed(["dimension probe"], None).shape[1])

    def count_tokens(self, text: str) -> int:
        return len(self._count_tok.encode(text, add_special_tokens=False).ids)

    def token_counter(self) -> Callable[[str], int]:
        """``count_tokens`` without the model: small and picklable, for workers that chunk."""
        return TokenCounter(self._count_tok)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return _l2_normalise(pooled)

    def _embed(self, texts: Sequence[str], progress: Callable[[int], None] | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        encodings = self._tok.encode_batch(list(texts))
        rows = self._model.map(encodings, self._pool, self.batch_size, progress)
        return np.stack(rows).astype(np.float32)

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        return self._embed(texts, progress)

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([self.query_prefix + text], None)[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """``embed_query`` of each text, run in parallel like documents (the same vectors
        at the default batch size of 1)."""
        return self._embed([self.query_prefix + t for t in texts], None)


class SentenceTransformerEmbedder:
    """Any sentence-transformers bi-encoder (a Hugging Face id or a local folder), on the CPU."""

    def __init__(
        self,
        location: str,
        name: str,
        *,
        query_prefix: str = "",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        st, _ = import_sentence_transformers(threads)
        self.name = name
        self.query_prefix = query_prefix
        self.batch_size = batch_size
        self._model = st.SentenceTransformer(location, device="cpu")
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim())
        self.max_length = int(self._model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(
            self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        ).reshape(len(texts), self.dim)

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        step = self.batch_size * 8
        for i in range(0, len(texts), step):
            parts.append(self._encode(list(texts[i : i + step])))
            if progress:
                progress(len(parts[-1]))
        return np.concatenate(parts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self.query_prefix + text])[0]


def load_embedder(ref: ModelRef, *, batch_size: int = 1, threads: int | None = None) -> Embedder:
    """Load the model ``ref`` names with the backend it resolved to."""
    log.info("loading embedder %s (%s)", ref.name, ref.backend)
    if ref.backend == "onnx":
        assert ref.path is not None
        return OnnxEmbedder(
            ref.path,
            ref.name,
            pooling=ref.pooling,
            query_prefix=ref.query_prefix,
            max_length=ref.max_length,
            batch_size=batch_size,
            threads=threads,
        )
    return SentenceTransformerEmbedder(
        ref.location,
        ref.name,
        query_prefix=ref.query_prefix,
        batch_size=max(batch_size, 16),
        threads=threads,
    )


class UnavailableEmbedder:
    """Stands in for an embedder that could not load, so a server still starts: every use
    raises the reason, which names what to run."""

    def __init__(self, name: str, error: str) -> None:
        self.name = name
        self.dim = 0
        self.error = error

    def _fail(self) -> NoReturn:
        raise ModelNotFoundError(self.error)

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self._fail()

    def embed_query(self, text: str) -> np.ndarray:
        self._fail()

    def count_tokens(self, text: str) -> int:
        self._fail()
