"""Text from pictures of pages: scanned PDF pages and image files (the ``ocr`` extra).

Two engines, chosen by ``engine()``: Tesseract, when the OS has it (``tesseract`` on the
PATH: ``apt install tesseract-ocr``, ``brew install tesseract``), and otherwise RapidOCR on
onnxruntime (``rapidocr-onnxruntime``, in the extra: PP-OCRv4's text detector and
recogniser shipped as ONNX files inside its wheel, so it runs offline on the CPU with
nothing else installed). On a scanned sample built for it (research/ocr_scans.py, the docs'
Indexing page, "Scans") Tesseract read 0.999 of the characters and RapidOCR 0.96 (its
model runs English words together; the spaces are put back from its character boxes), at
3.3x Tesseract's speed. ``MCP_RAG_OCR_ENGINE`` picks one. pypdfium2 renders a PDF page that
has no text layer.

A page's recognised lines are put in reading order (top to bottom, then left to right) and
joined into text, one line a line; its confidence is the recogniser's, averaged over the
characters. Bounded: ``MAX_PAGES`` pages read by OCR per file, pages rendered at ``DPI`` and
scaled down to at most ``MAX_PIXELS``, and a file stops being read by OCR once it has taken
``MAX_SECONDS`` (the rest of its pages are skipped, with a warning).
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mcp_rag.errors import LoaderError

INSTALL = "pip install 'mcp-rag-server[ocr]'"
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
MIN_TEXT = 20  # a PDF page whose text layer holds fewer non-space characters is a picture
# An image file is a document when OCR reads at least this many non-space characters in it
# (a photographed or scanned page holds a thousand or more): logos, book covers, charts and
# diagrams in a documentation folder read as a few labels, which as documents of their own
# were found and quoted for the product names on them (SQLite's manual: 26 such images).
MIN_IMAGE_TEXT = 200
MAX_PAGES = 300  # pages read by OCR per file
MAX_PIXELS = 16_000_000  # a page image larger than this is scaled down (A4 at 300 dpi: 8.7 M)
MAX_SECONDS = 600.0  # OCR time per file; past it, its remaining pages are skipped
DPI = 200  # PDF pages are rendered at this resolution (printed text: ~30 px high letters)

_engine: Any = None
_lock = threading.Lock()


@functools.cache
def missing() -> str | None:
    """None when OCR can run here; otherwise what to install (asked once per process)."""
    try:
        import pypdfium2  # noqa: F401
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError:
        return f"reading scans and images needs the OCR extra: {INSTALL}"
    return None


def _ocr() -> Any:
    """The engine, loaded once per process (its three ONNX models)."""
    global _engine
    with _lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _engine = RapidOCR()
        return _engine


def label(page: int, confidence: float) -> str:
    """An OCR'd page's section label: how its text was read, and how surely."""
    return f"page {page}, read by OCR (confidence {confidence:.2f})"


def is_label(section: str) -> bool:
    return section.startswith("page ") and ", read by OCR (confidence " in section


@dataclass
class Read:
    """What OCR read from one page: its text and how sure the recogniser was (0..1)."""

    text: str
    confidence: float


@dataclass
class Budget:
    """What one file may still spend on OCR."""

    pages: int = field(default_factory=lambda: MAX_PAGES)
    seconds: float = field(default_factory=lambda: MAX_SECONDS)
    started: float = field(default_factory=time.monotonic)

    def spent(self) -> str | None:
        """Why no more pages of this file are read by OCR, or None."""
        if self.pages <= 0:
            return f"OCR reads at most {MAX_PAGES} pages of a file (the rest are skipped)"
        if time.monotonic() - self.started > self.seconds:
            return f"OCR took more than {self.seconds:.0f} s on this file"
        return None


def _spaced(text: str, chars: list[Any]) -> str:
    """``text`` with the spaces the recogniser dropped put back: PP-OCRv4's model (trained
    mostly on Chinese) often runs English words together ("ofmyelodysplasiaby"); a gap
    between two characters' boxes wider than 0.7 of the median character is a space."""
    if len(chars) != len(text) or len(chars) < 3:
        return text
    widths = sorted(abs(c[1][0] - c[0][0]) for c in chars)
    # 0.7 of the median width: the best of 0.5-1.4 on 8 dev pages, not the reported ones
    wide = max(4.0, 0.7 * widths[len(widths) // 2])
    out = [text[0]]
    for i in range(1, len(text)):
        gap = chars[i][0][0] - chars[i - 1][1][0]
        if gap > wide and " " not in (text[i], text[i - 1]):
            out.append(" ")
        out.append(text[i])
    return "".join(out)


def _joined(parts: list[tuple[str, float]], sep: str) -> tuple[str, float]:
    """``parts`` (text, confidence) joined by ``sep``, the confidence averaged over their
    characters."""
    chars = sum(len(t) for t, _ in parts)
    conf = sum(c * len(t) for t, c in parts) / chars if chars else 0.0
    return sep.join(t for t, _ in parts), conf


def _in_order(boxes: list[Any]) -> list[tuple[str, float]]:
    """(text, score) of each recognised box, top to bottom in lines, left to right."""
    items = []
    for quad, text, score, *chars in boxes:
        text = _spaced(str(text), chars[0]) if chars else text
        ys = [p[1] for p in quad]
        items.append((min(ys), max(ys), min(p[0] for p in quad), str(text), float(score)))
    items.sort(key=lambda b: (b[0] + b[1]) / 2)
    lines: list[list[tuple[float, float, float, str, float]]] = []
    for b in items:  # same line: its middle lies within the line's first box
        if lines and lines[-1][0][0] <= (b[0] + b[1]) / 2 <= lines[-1][0][1]:
            lines[-1].append(b)
        else:
            lines.append([b])
    return [_joined([(b[3], b[4]) for b in sorted(line, key=lambda b: b[2])], " ")
            for line in lines]


ENGINES = ("tesseract", "rapidocr")


def engine() -> str:
    """The OCR engine: ``MCP_RAG_OCR_ENGINE`` (tesseract or rapidocr), else Tesseract
    where the OS has it, else RapidOCR."""
    chosen = os.environ.get("MCP_RAG_OCR_ENGINE", "").strip().lower()
    if chosen in ENGINES:
        return chosen
    return "tesseract" if shutil.which("tesseract") else "rapidocr"


def _rapidocr(image: Any) -> list[tuple[str, float]]:
    import numpy as np

    # No angle classifier: on upright scans it turned good lines upside down (docs: Scans).
    boxes, _ = _ocr()(np.asarray(image.convert("RGB")), use_cls=False, return_word_box=True)
    return _in_order(boxes or [])


def _tesseract(image: Any) -> list[tuple[str, float]]:
    """Lines and their confidence from ``tesseract ... tsv`` (words with a confidence)."""
    buf = io.BytesIO()
    image.convert("L").save(buf, "PNG")
    try:
        r = subprocess.run(["tesseract", "stdin", "stdout", "--psm", "3", "tsv"],
                           input=buf.getvalue(), capture_output=True, timeout=MAX_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LoaderError(f"tesseract failed: {e}") from e
    if r.returncode != 0:
        raise LoaderError(f"tesseract failed: {r.stderr.decode(errors='replace')[-300:]}")
    lines: dict[tuple[str, ...], list[tuple[str, float]]] = {}
    for row in r.stdout.decode(errors="replace").splitlines()[1:]:
        f = row.split("\t")
        if len(f) == 12 and f[0] == "5" and f[11].strip():
            lines.setdefault(tuple(f[1:5]), []).append((f[11], max(0.0, float(f[10])) / 100))
    return [_joined(words, " ") for words in lines.values()]  # in tesseract's reading order


def on_white(image: Any) -> Any:
    """``image`` with its transparent pixels made white paper. A transparent pixel keeps a
    colour of its own, often black (a toolbar icon of Wireshark's guide; a diagram exported
    with no background), which read as such hides black text; a palette image with
    transparency is converted first (Pillow warns on every one converted straight to grey).
    An opaque image is returned as it is."""
    from PIL import Image

    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode not in ("RGBA", "LA", "PA", "RGBa", "La"):
        return image
    paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
    paper.alpha_composite(image.convert("RGBA"))
    return paper.convert("RGB")


def read_image(image: Any) -> Read:
    """OCR one page image (a PIL image), on white (``on_white``) and scaled down to
    ``MAX_PIXELS`` first."""
    image = on_white(image)
    w, h = image.size
    if w * h > MAX_PIXELS:
        f = (MAX_PIXELS / (w * h)) ** 0.5
        image = image.resize((max(1, int(w * f)), max(1, int(h * f))))
    text, conf = _joined(_tesseract(image) if engine() == "tesseract" else _rapidocr(image),
                         "\n")
    return Read(text, round(conf, 3))


class PdfPages:
    """A PDF's pages as PIL images at ``DPI``, the document parsed once (on first use)."""

    def __init__(self, data: bytes) -> None:
        self.data: bytes = data
        self._pdf: Any = None

    def render(self, index: int) -> Any:
        """Page ``index`` (0-based)."""
        import pypdfium2 as pdfium

        if self._pdf is None:
            self._pdf = pdfium.PdfDocument(self.data)
        page = self._pdf[index]
        w, h = page.get_size()  # points
        scale = DPI / 72
        if w * h * scale * scale > MAX_PIXELS:
            scale = (MAX_PIXELS / (w * h)) ** 0.5
        return page.render(scale=scale).to_pil()

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()


def image_pages(data: bytes, name: str) -> list[Any]:
    """The pages of an image file (a TIFF may hold several), as PIL images."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        return [frame.copy() for frame in ImageSequence.Iterator(img)]
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as e:
        raise LoaderError(f"{name}: unreadable image ({e})") from e
