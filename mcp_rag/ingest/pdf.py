"""PDF to text with page offsets (optional extra: pypdf)."""

from __future__ import annotations

import io
from pathlib import Path

from mcp_rag.errors import LoaderError
from mcp_rag.ingest.safety import read_bytes


def parse_pdf(path: Path, fallback_title: str) -> tuple[str, str, tuple[tuple[int, int], ...]]:
    """PDF to text with page offsets (needs the optional ``pypdf``)."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as e:
        raise LoaderError(
            f"{path}: PDF support needs pypdf. Install it with: pip install 'mcp-rag[pdf]'"
        ) from e
    try:
        reader = PdfReader(io.BytesIO(read_bytes(path)))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoaderError(f"{path}: encrypted PDF (needs a password)")
        pages: list[tuple[int, int]] = []
        parts: list[str] = []
        pos = 0
        for n, page in enumerate(reader.pages, start=1):
            t = (page.extract_text() or "").replace("\r\n", "\n").strip()
            if not t:
                continue
            if parts:
                parts.append("\n\n")
                pos += 2
            pages.append((pos, n))
            parts.append(t)
            pos += len(t)
        meta_title = ""
        if reader.metadata is not None and reader.metadata.title:
            meta_title = str(reader.metadata.title).strip()
    except LoaderError:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError) as e:
        raise LoaderError(f"{path}: unreadable PDF ({e})") from e
    text = "".join(parts)
    if not text.strip():
        raise LoaderError(f"{path}: PDF has no extractable text (scanned? OCR it first)")
    return text, meta_title or fallback_title, tuple(pages)
