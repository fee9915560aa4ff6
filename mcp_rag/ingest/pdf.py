"""PDF to text with page offsets (optional extra: pypdf); pages without a text layer are
read by OCR when the ``ocr`` extra is installed (``ingest/ocr.py``)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from mcp_rag.errors import LoaderError
from mcp_rag.ingest import ocr
from mcp_rag.ingest.safety import read_bytes


@dataclass
class PageText:
    """A file's text by pages: where each page starts, the OCR'd pages' labels (``sections``:
    "page 3, read by OCR (confidence 0.97)"), and what could not be read."""

    text: str = ""
    pages: list[tuple[int, int]] = field(default_factory=list)
    sections: list[tuple[int, str]] = field(default_factory=list)
    ocr_pages: int = 0
    warnings: list[str] = field(default_factory=list)

    def add(self, n: int, text: str, read: ocr.Read | None = None) -> None:
        """Page ``n``'s text (``read``: it came from OCR)."""
        if self.text:
            self.text += "\n\n"
        pos = len(self.text)
        self.pages.append((pos, n))
        if read is not None:
            self.ocr_pages += 1
            self.sections.append((pos, ocr.label(n, read.confidence)))
        elif self.sections and self.sections[-1][1]:
            self.sections.append((pos, ""))  # the OCR label ends with its page
        self.text += text

    def read_by_ocr(self, n: int, image, budget: ocr.Budget) -> None:
        """Page ``n`` read by OCR from ``image`` (a callable giving the PIL image), if the
        budget allows."""
        why = budget.spent()
        if why is not None:
            self.warnings.append(f"page {n} not read: {why}")
            return
        budget.pages -= 1
        read = ocr.read_image(image())
        if read.text.strip():
            self.add(n, read.text, read)


def parse_pdf(path: Path, fallback_title: str) -> tuple[PageText, str]:
    """PDF to text with page offsets (needs the optional ``pypdf``); a page with no text
    layer (a scan) is read by OCR when the extra is installed, else listed in warnings."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as e:
        raise LoaderError(
            f"{path}: PDF support needs pypdf. Install it with: pip install 'mcp-rag-server[pdf]'"
        ) from e
    out, pictures = PageText(), []
    data = read_bytes(path)
    no_ocr = ocr.missing()
    budget, scans = ocr.Budget(), ocr.PdfPages(data)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoaderError(f"{path}: encrypted PDF (needs a password)")
        for n, page in enumerate(reader.pages, start=1):
            t = (page.extract_text() or "").replace("\r\n", "\n").strip()
            if len("".join(t.split())) >= ocr.MIN_TEXT or not _has_image(page):
                if t:
                    out.add(n, t)
            elif no_ocr is None:
                out.read_by_ocr(n, lambda i=n - 1: scans.render(i), budget)
            else:
                pictures.append(n)
                if t:
                    out.add(n, t)
        meta_title = ""
        if reader.metadata is not None and reader.metadata.title:
            meta_title = str(reader.metadata.title).strip()
    except LoaderError:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError) as e:
        raise LoaderError(f"{path}: unreadable PDF ({e})") from e
    finally:
        scans.close()
    if pictures:
        out.warnings.append(f"{len(pictures)} page(s) without a text layer (scanned?) not read: "
                            f"{no_ocr}")
    if not out.text.strip():
        raise LoaderError(f"{path}: PDF has no extractable text"
                          + (f" (scanned? {no_ocr})" if no_ocr else ""))
    return out, meta_title or fallback_title


def _has_image(page) -> bool:
    """Whether a PDF page draws an image (a scan is one): an image XObject in its
    resources, or in a form it draws."""
    def images(resources, depth: int = 0) -> bool:
        try:
            xobjects = resources.get("/XObject") if resources is not None else None
            for ref in (xobjects or {}).values():
                x = ref.get_object()
                if x.get("/Subtype") == "/Image":
                    return True
                if x.get("/Subtype") == "/Form" and depth < 3 and images(
                        x.get("/Resources"), depth + 1):
                    return True
        except (AttributeError, KeyError, TypeError, ValueError):
            return False
        return False

    return images(page.get("/Resources"))


def parse_image(path: Path) -> PageText:
    """An image file (PNG, JPEG, TIFF: each frame a page) read by OCR."""
    why = ocr.missing()
    if why is not None:
        raise LoaderError(f"{path}: {why}")
    out, budget = PageText(), ocr.Budget()
    for n, frame in enumerate(ocr.image_pages(read_bytes(path), str(path)), start=1):
        out.read_by_ocr(n, lambda f=frame: f, budget)
    found = len("".join(out.text.split()))
    if found < ocr.MIN_IMAGE_TEXT:
        raise LoaderError(f"{path}: {found} characters of text found in the image: a "
                          f"picture (a logo, a chart), not a page of text")
    return out
