"""Cross-encoder rerankers: ONNX runtime + tokenizers (default) and sentence-transformers.

Two layers, as in sentence-transformers' ``CrossEncoder``: ``predict(pairs)`` gives raw
scores (logits), ``rank(query, documents, top_k)`` sorts documents by them. A pair is
truncated with the query kept whole up to ``max_query_tokens`` and the passage cut to
fill ``max_length``. A pair's score never depends on the other pairs scored with it
(one pair per model call; see ``onnx_runner``), so floors and caches can rely on it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mcp_rag.errors import ModelNotFoundError
from mcp_rag.models.onnx_runner import OnnxModel
from mcp_rag.models.pack import ModelRef
from mcp_rag.models.st_backend import import_sentence_transformers
from mcp_rag.types import Reranker

log = logging.getLogger(__name__)



def relevance(logit: float) -> float:
    """Calibrated 0..1 relevance of an MS MARCO cross-encoder logit: its sigmoid."""
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    z = math.exp(logit)
    return z / (1.0 + z)


def rank(
    reranker: Reranker, query: str, documents: Sequence[str], top_k: int | None = None
) -> list[dict]:
    """Score ``documents`` against ``query``; best first. The input list is not reordered.

    Returns ``[{"corpus_id", "score", "relevance", "text"}]`` where ``corpus_id`` is the
    document's position in ``documents`` and ``score`` the raw logit.

    Example (the pack's ms-marco-MiniLM-L-12-v2):
        >>> q = "can I get a refund for the unused months of my annual plan?"
        >>> [(r["corpus_id"], round(r["score"], 2)) for r in rank(reranker, q, [
        ...     "Refunds go back to the original payment method within 10 business days.",
        ...     "Customers on an annual plan may cancel at any time and receive a prorated "
        ...     "refund for the unused months.",
        ...     "Cats purr when happy."])]
        [(1, 8.68), (0, -6.66), (2, -11.05)]
    """
    if not documents:
        return []
    scores = reranker.predict([(query, d) for d in documents])
    order = sorted(range(len(documents)), key=lambda i: (-float(scores[i]), i))
    out = [
        {
            "corpus_id": i,
            "score": float(scores[i]),
            "relevance": relevance(float(scores[i])),
            "text": documents[i],
        }
        for i in order
    ]
    return out if top_k is None else out[:top_k]


class OnnxReranker:
    """A BERT cross-encoder (logits[B, 1]) in ONNX, run with onnxruntime on the CPU.

    Args:
        path: folder with ``model.onnx`` and ``tokenizer.json``.
        name: the model id (recorded in results and cache keys).
        max_length: tokens per pair, special tokens included.
        max_query_tokens: a longer query is cut to this many tokens; the passage gets the rest.
        batch_size: pairs per model call (1: fastest on 2 cores, and batch-independent).
        threads: CPU threads (default: all cores).
    """

    def __init__(
        self,
        path: Path,
        name: str,
        *,
        max_length: int = 512,
        max_query_tokens: int = 64,
        batch_size: int = 1,
        threads: int | None = None,
        exact: bool = False,
    ) -> None:
        from tokenizers import Tokenizer

        path = Path(path)
        if not (path / "model.onnx").is_file() or not (path / "tokenizer.json").is_file():
            raise ModelNotFoundError(f"{path} needs model.onnx and tokenizer.json")
        self.name = name
        self.max_length = max_length
        self.max_query_tokens = max_query_tokens
        self.batch_size = batch_size
        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.no_truncation()
        self._specials = self._tok.num_special_tokens_to_add(is_pair=True)
        if max_length <= max_query_tokens + self._specials:
            raise ValueError(
                f"max_length of {max_length} leaves no room for a passage after a "
                f"{max_query_tokens}-token query; raise max_length or lower max_query_tokens"
            )
        self._model = OnnxModel(path / "model.onnx", threads, exact)
        out = self._model.session.get_outputs()[0]
        if len(out.shape) != 2 or out.shape[1] not in (1, "1"):
            log.warning("%s: output shape %s, expected [batch, 1]", name, out.shape)

    def encode(self, query: str, passage: str):
        """The model input for one pair: query truncated first, then the passage to fit."""
        q = self._tok.encode(query, add_special_tokens=False)
        q.truncate(self.max_query_tokens)
        p = self._tok.encode(passage, add_special_tokens=False)
        p.truncate(max(1, self.max_length - len(q.ids) - self._specials))
        return self._tok.post_process(q, p)

    def words(self) -> frozenset[str]:
        """The whole words of the model's vocabulary, lowercased (not word pieces)."""
        return _whole_words(self._tok.get_vocab())

    def token_starts(self, texts: Sequence[str]) -> list[list[int]]:
        """Where each token of each text starts (character offsets), special tokens not
        counted. One text at a time: encode_batch's thread hand-off costs more (~2.5 ms)."""
        return [
            [a for a, _ in self._tok.encode(t, add_special_tokens=False).offsets] for t in texts
        ]

    def predict(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw logits, one per (query, passage) pair, in the order given."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        encodings = [self.encode(q, p) for q, p in pairs]
        rows = self._model.map(encodings, lambda out, _mask: out[:, 0], self.batch_size)
        return np.asarray(rows, dtype=np.float32)


class SentenceTransformersReranker:
    """Any sentence-transformers ``CrossEncoder`` (Hugging Face id or local folder), on the CPU."""

    def __init__(
        self,
        location: str,
        name: str,
        *,
        max_length: int = 512,
        batch_size: int = 16,
        threads: int | None = None,
    ) -> None:
        st, torch = import_sentence_transformers(threads)
        self.name = name
        self.batch_size = batch_size
        self._identity = torch.nn.Identity()
        self._model = st.CrossEncoder(location, device="cpu", max_length=max_length)

    def words(self) -> frozenset[str]:
        """The whole words of the model's vocabulary, lowercased (not word pieces)."""
        return _whole_words(self._model.tokenizer.get_vocab())

    def token_starts(self, texts: Sequence[str]) -> list[list[int]]:
        """Where each token of each text starts (character offsets), special tokens not
        counted."""
        enc = self._model.tokenizer(
            list(texts), add_special_tokens=False, return_offsets_mapping=True
        )
        return [[a for a, _ in row] for row in enc["offset_mapping"]]

    def predict(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        scores = self._model.predict(
            [list(p) for p in pairs],
            batch_size=self.batch_size,
            activation_fn=self._identity,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(scores, dtype=np.float32).reshape(len(pairs))


def _whole_words(vocab: Mapping[str, int]) -> frozenset[str]:
    """A vocabulary's tokens that start a word, lowercased: WordPiece's (BERT, the pack's
    models) less its ``##`` continuations and ``[SPECIAL]`` tokens; a SentencePiece or
    byte-level BPE vocabulary's that carry its word-start mark (``▁``, ``Ġ``), without it."""
    for mark in ("▁", "Ġ"):
        if any(t.startswith(mark) for t in vocab):
            return frozenset(t[1:].casefold() for t in vocab if t.startswith(mark) and t[1:])
    return frozenset(t.casefold() for t in vocab
                     if not t.startswith("##") and not (t.startswith("[") and t.endswith("]")))


def vocabulary(reranker: Reranker | None) -> frozenset[str]:
    """The whole words ``reranker``'s tokenizer holds (empty for a model without one to
    ask): the evidence check tells a command's name from a word by them."""
    words = getattr(reranker, "words", None)
    return words() if words is not None else frozenset()


def token_starts(reranker: Reranker, texts: Sequence[str]) -> list[list[int]]:
    """Where each token of each text starts for ``reranker``; for a model without a
    tokenizer to ask, each word is taken for a token."""
    starts = getattr(reranker, "token_starts", None)
    if starts is not None:
        return list(starts(texts))
    return [[m.start() for m in re.finditer(r"\S+", t)] for t in texts]


def load_reranker(
    ref: ModelRef,
    *,
    max_length: int = 512,
    max_query_tokens: int = 64,
    batch_size: int = 1,
    threads: int | None = None,
    exact: bool = False,
) -> Reranker:
    """Load the cross-encoder ``ref`` names with the backend it resolved to (``exact``:
    exact int8 products on a CPU whose default ones saturate; ONNX only)."""
    log.info("loading reranker %s (%s)", ref.name, ref.backend)
    if ref.backend == "onnx":
        assert ref.path is not None
        return OnnxReranker(
            ref.path,
            ref.name,
            max_length=max_length,
            max_query_tokens=max_query_tokens,
            batch_size=batch_size,
            threads=threads,
            exact=exact,
        )
    return SentenceTransformersReranker(
        ref.location, ref.name, max_length=max_length, batch_size=max(batch_size, 16),
        threads=threads,
    )
