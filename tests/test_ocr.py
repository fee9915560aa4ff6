"""Scans read by OCR (the `ocr` extra): a scanned PDF made here (text rendered to an image,
wrapped as an image-only PDF, joined to a real LibreOffice PDF), a PNG, and what is said
when the extra is missing. The real engine (RapidOCR) runs; nothing is faked but the one
question "is the extra installed?" in the tests of what happens without it."""

from __future__ import annotations

import io
import shutil
import textwrap
from pathlib import Path

import pytest
from helpers import KeywordEmbedder

from mcp_rag.app.catalog import Catalog
from mcp_rag.index.update import index_paths
from mcp_rag.ingest import ocr
from mcp_rag.ingest.discover import SourceFile
from mcp_rag.ingest.loaders import load_file
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.render import render_status
from mcp_rag.types import Mode

FIXTURES = Path(__file__).parent / "fixtures" / "documents"
PAGE_1 = ("Harbour operations manual. Tugs assist every vessel over two hundred metres "
          "through the inner channel, and the pilot boards at the fairway buoy.")
PAGE_2 = ("Dredging schedule. The north basin is dredged every April to a depth of twelve "
          "metres; berths four and five close for nine days while the barges work.")

needs_ocr = pytest.mark.skipif(
    ocr.missing() is not None,
    reason="the OCR extra is not installed here (pip install 'mcp-rag-server[ocr]')")


@pytest.fixture(params=ocr.ENGINES, autouse=True)
def engine(request, monkeypatch):
    """Each test with each engine: RapidOCR (the extra's) and Tesseract (from the OS,
    where it is installed: .ci/run installs Debian's)."""
    if request.param == "tesseract" and shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed here (apt install tesseract-ocr)")
    monkeypatch.setenv("MCP_RAG_OCR_ENGINE", request.param)
    return request.param


def page_image(text: str, angle: float = 0.0):
    """A printed page: the text at ~11 pt, 150 dpi, slightly rotated, as a scanner gives it."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=24)
    img = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(textwrap.wrap(text, 70)):
        draw.text((110, 140 + 40 * i), line, fill=0, font=font)
    return img.rotate(angle, fillcolor=255)


def scanned_pdf(path: Path, pages: list[str], with_text_page: bool = False) -> Path:
    """An image-only PDF of ``pages`` (Pillow writes each image as a page), after the real
    text page of a LibreOffice PDF when ``with_text_page``."""
    from pypdf import PdfReader, PdfWriter

    images = [page_image(t, angle=1.5 if i % 2 else -1.0) for i, t in enumerate(pages)]
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=150, save_all=True, append_images=images[1:])
    writer = PdfWriter()
    if with_text_page:
        writer.add_page(PdfReader(FIXTURES / "report-libreoffice.pdf").pages[0])
    for page in PdfReader(io.BytesIO(buf.getvalue())).pages:
        writer.add_page(page)
    with path.open("wb") as f:
        writer.write(f)
    return path


@needs_ocr
def test_a_scanned_pdf_is_read_page_by_page_with_its_confidence(tmp_path):
    pdf = scanned_pdf(tmp_path / "manual.pdf", [PAGE_1, PAGE_2], with_text_page=True)
    loaded = load_file(SourceFile(pdf, tmp_path))
    (doc,) = loaded.docs
    assert loaded.ocr_pages == 2 and not loaded.warnings
    assert [p[1] for p in doc.pages] == [1, 2, 3]
    at2, at3 = doc.pages[1][0], doc.pages[2][0]
    assert "inner channel" in doc.text[at2:at3] and "north basin" in doc.text[at3:]
    assert doc.sections[0][0] == at2 and doc.sections[0][1].startswith(
        "page 2, read by OCR (confidence 0.")
    assert float(doc.sections[1][1].split("confidence ")[1].rstrip(")")) > 0.85


@needs_ocr
def test_a_scanned_page_is_found_by_its_words_on_its_page(tmp_path, settings):
    kb = tmp_path / "kb"
    kb.mkdir()
    scanned_pdf(kb / "manual.pdf", [PAGE_1, PAGE_2], with_text_page=True)
    page_image(f"{PAGE_1} {PAGE_2}").save(kb / "photo-of-a-page.png")
    page_image("Harbour Authority").save(kb / "logo.png")  # a picture, not a page of text
    report = index_paths(settings.index, [kb], KeywordEmbedder(), quiet=True)
    assert report.ocr_pages == 3
    ((skipped, why),) = report.skipped
    assert skipped == str(kb / "logo.png") and why.endswith(
        "characters of text found in the image: a picture (a logo, a chart), not a page of text")
    p = Pipeline(settings, embedder=KeywordEmbedder())
    hits = p.search("north basin dredged every April", k=3, mode=Mode.BM25).hits
    by_doc = {h.chunk.doc_id: h.chunk for h in reversed(hits)}  # each one's best
    pdf, png = by_doc["manual.pdf"], by_doc["photo-of-a-page.png"]
    assert pdf.page == 3 and "read by OCR" in pdf.section
    assert png.page == 1 and "read by OCR" in png.section
    # the span is exact over the recognised text, as for any other document
    doc = p.reader.document("manual.pdf")
    assert doc.text[pdf.start:pdf.end] == pdf.text and doc.format == "pdf"
    assert p.reader.document("photo-of-a-page.png").format == "image"
    catalog = Catalog.open(settings)
    status = catalog.status()
    catalog.close()
    assert status.ocr_pages == 3 and "3 pages read by OCR" in render_status(status)


@needs_ocr
def test_a_transparent_image_is_read_on_white(tmp_path):
    # Black text on a transparent background whose pixels keep the colour black, as an
    # exported diagram or a palette PNG may: read as it is stored, the page is all black.
    from PIL import Image, ImageOps

    ink = page_image(f"{PAGE_1} {PAGE_2}")
    png = Image.new("RGBA", ink.size, (0, 0, 0, 0))
    png.putalpha(ImageOps.invert(ink))  # the letters opaque, the paper transparent
    png.save(tmp_path / "diagram.png")
    (doc,) = load_file(SourceFile(tmp_path / "diagram.png", tmp_path)).docs
    assert "inner channel" in doc.text and "north basin" in doc.text


def test_a_palette_image_with_transparency_is_put_on_white_without_a_warning():
    import warnings

    from PIL import Image

    img = Image.new("P", (4, 2), 1)
    img.putpalette([255, 0, 0, 0, 0, 0] + [0] * 762)  # 0 red, 1 black
    img.putpixel((0, 0), 0)
    img.info["transparency"] = bytes([255, 0] + [255] * 254)  # index 1 transparent
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow warns when such an image goes to grey
        out = ocr.on_white(img)
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (255, 0, 0)
    assert out.getpixel((1, 0)) == (255, 255, 255)  # black underneath, transparent: paper
    opaque = Image.new("L", (2, 2), 0)
    assert ocr.on_white(opaque) is opaque


@needs_ocr
def test_ocr_stops_at_its_page_budget_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(ocr, "MAX_PAGES", 1)
    pdf = scanned_pdf(tmp_path / "long.pdf", [PAGE_1, PAGE_2])
    loaded = load_file(SourceFile(pdf, tmp_path))
    assert loaded.ocr_pages == 1 and "inner channel" in loaded.docs[0].text
    assert any("page 2 not read: OCR reads at most 1 pages" in w for w in loaded.warnings)


def test_without_the_extra_scans_and_images_are_skipped_with_the_install_line(
        tmp_path, settings, monkeypatch):
    # The one fake here: the extra is (said to be) missing.
    monkeypatch.setattr(ocr, "missing", lambda: f"reading scans needs the OCR extra: "
                                                f"{ocr.INSTALL}")
    kb = tmp_path / "kb"
    kb.mkdir()
    scanned_pdf(kb / "scan.pdf", [PAGE_1])
    scanned_pdf(kb / "mixed.pdf", [PAGE_2], with_text_page=True)
    page_image(PAGE_1).save(kb / "page.png")
    report = index_paths(settings.index, [kb], KeywordEmbedder(), quiet=True)
    skipped = dict(report.skipped)
    assert ocr.INSTALL in skipped[str(kb / "scan.pdf")]
    assert ocr.INSTALL in skipped[str(kb / "page.png")]
    assert report.added == 1 and report.ocr_pages == 0  # mixed.pdf: its text page
    assert any("mixed.pdf: 1 page(s) without a text layer (scanned?) not read" in w
               and ocr.INSTALL in w for w in report.warnings)
