"""Files to Documents: one loader per format, chosen by suffix.

Every loader returns plain text plus where sections (and PDF pages) start in it, so that
a chunk's character span points into the text stored in the index.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mcp_rag.errors import LoaderError, NotIndexed
from mcp_rag.ingest import ocr
from mcp_rag.ingest.code import CODE_EXTS, parse_code
from mcp_rag.ingest.discover import (
    HTML_EXTS,
    JSONL_EXTS,
    MD_EXTS,
    PDF_EXTS,
    TEXT_EXTS,
    SourceFile,
    doc_id_for,
    format_suffix,
)
from mcp_rag.ingest.html import parse_html, source_listing, sphinx_finder, sphinx_source_copy
from mcp_rag.ingest.jsonl import parse_jsonl
from mcp_rag.ingest.mail import MAIL_EXTS, parse_mail
from mcp_rag.ingest.markdown import parse_markdown
from mcp_rag.ingest.office import OFFICE_EXTS, parse_office
from mcp_rag.ingest.pdf import PageText, parse_image, parse_pdf
from mcp_rag.ingest.rst import RST_EXTS, parse_rst
from mcp_rag.ingest.text import (
    INVISIBLE,
    content_hash,
    drop_invisible,
    parse_text,
    read_text_file,
    strip_controls,
)
from mcp_rag.types import Document

# Bump when a loader turns the same file into different text (2: HTML table rows carry their
# column headers; 3: control characters become spaces; 4: lowercase " . " text is split into
# sentences, so its chunks change; 5: .rst has sections; 6: code blocks are indented, a
# <dt> sits on the line above its <dd>, Sphinx's "¶" is gone, minified code is skipped; 7: a
# JSONL record with a title and no text is its title; 8: PDF pages without a text layer
# and images are read by OCR where the extra is installed; 9: Markdown's inline markup is
# read by a CommonMark parser: code spans keep `<placeholders>`, entities are decoded, and
# Sphinx's generated source listings and its copies of page sources are left out; 10:
# HTML's page chrome is left out; 11: the label of a diagram HTML shows behind a
# show/hide button, as SQLite's syntax diagrams are, is left out with the diagram; 12:
# XHTML 2's unnumbered <h> is a heading, as SQLite's pragma page heads each PRAGMA; 13: a
# table cell keeps the space between two inline elements, "attrelid oid"; 14: chunking
# version 4, a paragraph that stops mid-sentence keeps the lines that finish it; 15: an HTML
# description's (<dd>) later paragraphs follow its first line by line, under its term; 16:
# XHTML's <br /> is a line break, not a paragraph's, and inside a term it separates the
# names of one option on one line, "-j njobs, --jobs=njobs"; 17: a heading's link to
# itself is left out, Apache httpd's "¶", and a paragraph that is one code element is a
# code block; 18: a description's prose after a code block of its own stands under its
# term again; 19: a link within the page hidden from screen readers is left out, FFmpeg's
# "#" and "TOC", and so are Texinfo's node bars; 20: the pages Sphinx generates to find the
# others, its general index, module indexes and search page, are left out; 21: an image's
# transparent pixels are read as white paper, not as the colour they keep; 22: soft
# hyphens, zero-width spaces, word joiners and byte-order marks are dropped from the text
# (not PDFs'); HTML's line numbers beside code are left out and Pygments' table of numbers
# and code is a code block; the admonitions and content tabs of Markdown (MkDocs, MyST)
# and reStructuredText read as their title over their content, not as code; an HTML
# admonition titled by a heading (DocBook's and Apache httpd's notes) starts no section,
# and DocBook's and AsciiDoc's tables of a title and a note are no tables; 23: a code block
# Sphinx anchors that is one call (CMake's "list(APPEND <list> [<element> ...])") is a
# signature, a term over the paragraph after it; 24: a link to itself that is a glyph
# (Node.js's "#" after each heading) is left out, and so are the sidebar and header of
# pickers Node.js's API reference opens each page with; 25: chunking version 5, a
# sentence that runs on past the code block it introduces is one unit with it): indexes
# built before are re-read on the next run.
LOADER_VERSION = 25
# The formats each version from 9 on reads differently: an index built by version 8 or
# later re-reads only those files (not its PDFs, whose OCR is slow); None: every format.
CHANGED_FORMATS: dict[int, frozenset[str] | None] = {
    # Markdown's inline markup (office files become Markdown first); Sphinx's source
    # listings and the page sources it copies under _sources/
    9: frozenset(MD_EXTS | OFFICE_EXTS | HTML_EXTS | {".txt"}),
    # HTML's page chrome (navigation, search boxes, sidebars, footers) is left out
    10: frozenset(HTML_EXTS | MAIL_EXTS),
    # the labels of diagrams behind show/hide buttons
    11: frozenset(HTML_EXTS | MAIL_EXTS),
    # XHTML 2's unnumbered <h> headings
    12: frozenset(HTML_EXTS | MAIL_EXTS),
    # the space between two inline elements in a table cell ("attrelid oid", "a AND b")
    13: frozenset(HTML_EXTS | MAIL_EXTS),
    # text cut differently (CHUNKING_VERSION 4): the formats read as text, not PDFs and
    # images (OCR), JSONL records or code
    14: frozenset(TEXT_EXTS | MD_EXTS | RST_EXTS | HTML_EXTS | MAIL_EXTS | OFFICE_EXTS),
    # a description's later paragraphs (<dd>) under its term
    15: frozenset(HTML_EXTS | MAIL_EXTS),
    # XHTML's <br /> a line break; in a term, a comma between the names
    16: frozenset(HTML_EXTS | MAIL_EXTS),
    # a heading's link to itself ("¶" in Apache httpd's manual); a paragraph of code
    17: frozenset(HTML_EXTS | MAIL_EXTS),
    # a description's prose after its code block under its term again
    18: frozenset(HTML_EXTS | MAIL_EXTS),
    # a heading's link hidden from screen readers (aria-hidden: FFmpeg's "#" and "TOC");
    # Texinfo's node bars, section lists and "¶" after a definition
    19: frozenset(HTML_EXTS | MAIL_EXTS),
    # Sphinx's general index, module indexes and search page
    20: frozenset(HTML_EXTS),
    # an image file's transparent pixels read on white (PDF pages render opaque)
    21: frozenset(ocr.IMAGE_EXTS),
    # invisible characters dropped (PostgreSQL's zero-width spaces inside identifiers),
    # HTML's notes and line numbers, Markdown's and reStructuredText's admonitions: every
    # format read as text, JSONL records and code; not PDFs and images
    22: frozenset(TEXT_EXTS | MD_EXTS | RST_EXTS | HTML_EXTS | MAIL_EXTS | OFFICE_EXTS
                  | JSONL_EXTS | CODE_EXTS),
    # an anchored code block that is one call: a signature over its description
    23: frozenset(HTML_EXTS | MAIL_EXTS),
    # a link to itself that is a glyph; Node.js's sidebar and header
    24: frozenset(HTML_EXTS | MAIL_EXTS),
    # text cut differently (CHUNKING_VERSION 5), as for version 14
    25: frozenset(TEXT_EXTS | MD_EXTS | RST_EXTS | HTML_EXTS | MAIL_EXTS | OFFICE_EXTS),
}


def loader_version() -> int:
    """What an index records of the loaders that read it: ``LOADER_VERSION``, and whether
    OCR could run (installing the extra later re-reads every file once, so the scans in
    them are read; only what reads differently is embedded again)."""
    return LOADER_VERSION * 2 + (ocr.missing() is None)


def read_differently(recorded: int) -> frozenset[str] | None:
    """The formats (``format_suffix``) the loaders now read differently from those that
    built an index recording ``recorded`` (its ``loader_version()``): empty when nothing
    changed, None when every format did (OCR became possible or went away, or the index is
    older than the record of changes)."""
    if recorded == loader_version():
        return frozenset()
    version, could_ocr = divmod(recorded, 2)
    if could_ocr != (ocr.missing() is None) or version < min(CHANGED_FORMATS) - 1:
        return None
    changed: set[str] = set()
    for v in range(version + 1, LOADER_VERSION + 1):
        formats = CHANGED_FORMATS.get(v)
        if formats is None:
            return None
        changed |= formats
    return frozenset(changed)


@dataclass
class Loaded:
    docs: list[Document]
    warnings: list[str]
    ocr_pages: int = 0  # pages read by OCR


def load_file(src: SourceFile) -> Loaded:
    """Load one file into Documents. Raises LoaderError if the file cannot be used at all."""
    path, root = src.path, src.root
    ext = format_suffix(path)
    try:
        st = path.stat()
    except OSError as e:
        raise LoaderError(f"{path}: unreadable ({e.strerror or e})") from e
    if ext in JSONL_EXTS:
        docs, warnings = parse_jsonl(path, str(root))
        return Loaded([replace(d, mtime=st.st_mtime, size=st.st_size) for d in docs], warnings)
    stem = path.stem if ext == path.suffix.lower() else Path(path.stem).stem  # guide.md.gz
    pages: tuple[tuple[int, int], ...] = ()
    sections: tuple[tuple[int, str], ...] = ()
    paged: PageText | None = None
    if ext in PDF_EXTS or ext in ocr.IMAGE_EXTS:
        if ext in PDF_EXTS:
            paged, title = parse_pdf(path, stem)
            fmt = "pdf"
        else:
            paged, title, fmt = parse_image(path), stem, "image"
        text, pages, sections = paged.text, tuple(paged.pages), tuple(paged.sections)
    elif ext in OFFICE_EXTS:
        text, title, sections, fmt = parse_office(path, stem)
    elif ext in MAIL_EXTS:
        text, title, sections = parse_mail(path, stem)
        fmt = "eml"
    else:
        page = sphinx_source_copy(path)
        if page is not None:
            raise NotIndexed(f"{path}: the source Sphinx copied beside its page ({page.name}, "
                             "indexed), not indexed twice")
        raw = read_text_file(path)
        if ext in MD_EXTS:
            text, title, sections = parse_markdown(raw, stem)
            fmt = "md"
        elif ext in HTML_EXTS:
            if source_listing(path, raw):
                raise NotIndexed(f"{path}: a source-code listing Sphinx generated (viewcode), "
                                 "not indexed: the documentation's pages describe the code")
            if (finder := sphinx_finder(raw)) is not None:
                raise NotIndexed(f"{path}: {finder}, a page Sphinx generated to find the "
                                 "others, not indexed: the pages it links to are")
            text, title, sections = parse_html(raw, stem)
            fmt = "html"
        elif ext in RST_EXTS:
            text, title, sections = parse_rst(raw, stem)
            fmt = "rst"
        elif ext in CODE_EXTS:
            try:
                text, title, sections = parse_code(raw, ext, path.name)
            except LoaderError as e:
                raise type(e)(f"{path}: {e}") from None
            fmt = "code"
        else:
            text, title, sections = parse_text(raw, stem)
            fmt = "txt"
    text, title = strip_controls(text), strip_controls(title)  # same length: offsets hold
    if paged is None:  # a PDF's pages and OCR's text are as read (re-reading them is slow)
        text, at = drop_invisible(text)
        sections = tuple((at(o), INVISIBLE.sub("", name)) for o, name in sections)
        pages = tuple((at(o), page) for o, page in pages)
        title = INVISIBLE.sub("", title)
    if not text.strip():
        raise LoaderError(f"{path}: no text in it")
    doc = Document(
        doc_id=doc_id_for(path, root),
        source=str(path),
        title=title,
        text=text,
        root=str(root),
        format=fmt,
        sections=sections,
        pages=pages,
        content_hash=content_hash(title, text),
        mtime=st.st_mtime,
        size=st.st_size,
    )
    if paged is not None:
        return Loaded([doc], [f"{path}: {w}" for w in paged.warnings], paged.ocr_pages)
    return Loaded([doc], [])
