"""Test doubles that are real implementations: a keyword embedder and a minimal PDF writer."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mcp_rag.index.lexical import tokenize

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "mcp_rag" / "sample"
SCIFACT = REPO.parent / "shared" / "datasets" / "scifact"


class KeywordEmbedder:
    """A real Embedder: hashed bag of words, L2-normalised. Predictable: shared words = similar.

    ``delay`` seconds per text make builds slow enough to interrupt in crash tests.
    """

    def __init__(self, dim: int = 256, name: str = "test/keyword-hash", delay: float = 0.0):
        self.name = name
        self.dim = dim
        self.delay = delay
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in tokenize(text):
            v[zlib.crc32(tok.encode()) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            if self.delay:
                time.sleep(self.delay)
            out[i] = self._vec(t)
            self.calls += 1
            if progress:
                progress(1)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)


def minimal_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A valid PDF with one line of Helvetica text per page (no library needed)."""
    objs: list[bytes] = []
    n_pages = len(pages)
    font_id = 3 + 2 * n_pages
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for i, text in enumerate(pages):
        page_id, content_id = 3 + 2 * i, 4 + 2 * i
        assert page_id
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode()
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    info_id = None
    if title:
        objs.append(f"<< /Title ({title}) >>".encode())
        info_id = len(objs)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    trailer = f"<< /Size {len(objs) + 1} /Root 1 0 R"
    if info_id:
        trailer += f" /Info {info_id} 0 R"
    out += f"trailer\n{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


class KeywordReranker:
    """A real Reranker: logit = 8 * (share of query terms in the passage) - 4. Counts pairs."""

    def __init__(self, name: str = "test/keyword-reranker") -> None:
        self.name = name
        self.pairs_seen = 0

    def predict(self, pairs):
        self.pairs_seen += len(pairs)
        out = []
        for q, p in pairs:
            qt, pt = set(tokenize(q)), set(tokenize(p))
            out.append(8.0 * len(qt & pt) / max(1, len(qt)) - 4.0)
        return np.asarray(out, dtype=np.float32)


class Passages:
    """A real Corpus (``retrieve.result``) over a document's chunks, as ``Pipeline`` looks
    them up for an answer: the passage that opens a section, the one just before."""

    def __init__(self, chunks: Sequence) -> None:
        self.chunks = {(c.doc_id, c.chunk_no): c for c in chunks}

    def writes(self, words: list[str]) -> bool | None:
        return None

    def preceding(self, chunk):
        prev = self.chunks.get((chunk.doc_id, chunk.chunk_no - 1))
        return prev if prev is not None and prev.section == chunk.section else None

    def opening(self, chunk):
        first = chunk
        while (prev := self.preceding(first)) is not None:
            first = prev
        return None if first is chunk else first


class BrokenReranker:
    """A Reranker whose model fails at inference time."""

    name = "test/broken"

    def predict(self, pairs):
        raise RuntimeError("ONNX session crashed")


class DiesOnceEmbedder(KeywordEmbedder):
    """The keyword embedder, whose process dies on its first batch (once per ``marker``
    file): a Ray worker lost mid-run."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def embed_documents(self, texts, progress=None):
        import os

        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return super().embed_documents(texts, progress)
