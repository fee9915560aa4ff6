"""Word, PowerPoint, Excel, EPUB and Jupyter notebooks to text, through markitdown.

markitdown (optional extra ``[office]``) turns each into Markdown; ``parse_markdown`` then
makes the plain text we store, serve and cite, with its headings as sections, exactly as
for a ``.md`` file. Each format goes to its own converter: markitdown's catch-all would
otherwise "convert" a damaged ``.docx`` into its raw bytes.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mcp_rag.errors import LoaderError
from mcp_rag.ingest.markdown import parse_markdown
from mcp_rag.ingest.safety import read_bytes
from mcp_rag.types import Sections

if TYPE_CHECKING:
    from markitdown import DocumentConverterResult

log = logging.getLogger(__name__)
_warned = False  # the mammoth fallback is announced once a process

# suffix -> (markitdown converter class, our format name)
CONVERTERS = {
    ".docx": ("DocxConverter", "docx"),
    ".pptx": ("PptxConverter", "pptx"),
    ".xlsx": ("XlsxConverter", "xlsx"),
    ".epub": ("EpubConverter", "epub"),
    ".ipynb": ("IpynbConverter", "ipynb"),
}
OFFICE_EXTS = set(CONVERTERS)
INSTALL = "pip install 'mcp-rag-server[office]'"
# markitdown opens each slide with this comment, then the slide's title as "# Title".
_SLIDE = re.compile(r"^<!-- Slide number: (\d+) -->\n(?:# (.*)$)?", re.M)


def parse_office(path: Path, fallback_title: str) -> tuple[str, str, Sections, str]:
    """(text, title, sections, format) of an office document, ebook or notebook.

    Raises:
        LoaderError: markitdown is not installed, or the file is damaged or not what its
            suffix says.
    """
    ext = path.suffix.lower()
    name, fmt = CONVERTERS[ext]
    try:
        from markitdown import StreamInfo, converters
    except ImportError as e:
        raise LoaderError(f"{path}: {fmt} files need markitdown. Install it with: {INSTALL}") \
            from e
    data = read_bytes(path)
    try:
        converter = getattr(converters, name)()
        try:
            result = converter.convert(io.BytesIO(data), StreamInfo(extension=ext,
                                                                    filename=path.name))
        except Exception as e:
            if ext != ".docx":
                raise
            result = _docx_without_preprocessing(data, path, e)
    except ImportError as e:  # markitdown without this format's own dependency
        raise LoaderError(f"{path}: {fmt} support is not installed ({e}). Install it with: "
                          f"{INSTALL}") from e
    except Exception as e:  # whatever a damaged zip, XML or JSON makes the converter raise
        raise LoaderError(f"{path}: unreadable {fmt} file ({type(e).__name__}: {e})") from e
    md = _SLIDE.sub(lambda m: f"# Slide {m.group(1)}" + (f": {m.group(2)}" if m.group(2) else "")
                    + "\n", result.markdown or "")
    text, title, sections = parse_markdown(md, fallback_title)
    if fmt == "pptx":  # its first heading is "Slide 1: ...": the file names the deck better
        title = fallback_title
    if result.title and result.title.strip():
        title = result.title.strip()
    return text, title, sections, fmt


def _docx_without_preprocessing(data: bytes, path: Path, why: Exception) -> DocumentConverterResult:
    """A Word file converted by mammoth directly, as markitdown does after its pre-processing.

    markitdown first rewrites the document's XML with BeautifulSoup to turn equations into
    LaTeX. With lxml 6.2.0 that rewrite drops every XML namespace (lxml's parser-target
    interface changed under BeautifulSoup's "xml" builder), and mammoth then finds no
    ``w:body``: every Word file failed with "Could not find the body element". Skipping the
    rewrite loses only the equations' LaTeX. Raises ``why`` when mammoth cannot read the
    file either (a damaged file keeps markitdown's reason).
    """
    import mammoth
    from markitdown.converters import HtmlConverter

    try:
        html = mammoth.convert_to_html(io.BytesIO(data)).value
    except Exception:
        raise why from None
    global _warned
    if not _warned:
        _warned = True
        log.warning("markitdown could not convert %s (%s: %s); Word files are converted by "
                    "mammoth directly (equations are not kept as LaTeX)", path,
                    type(why).__name__, why)
    return HtmlConverter().convert_string(html)
