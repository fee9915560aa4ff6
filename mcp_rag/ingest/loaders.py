"""Files to Documents: discovery (globs, hidden and binary files) and one loader per format.

Every loader returns plain text plus where sections (and PDF pages) start in it, so that
a chunk's character span points into the text stored in the index.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path

from mcp_rag.errors import LoaderError
from mcp_rag.types import Document

TEXT_EXTS = {".txt", ".text", ".rst", ".log", ".csv"}
MD_EXTS = {".md", ".markdown", ".mdx"}
HTML_EXTS = {".html", ".htm", ".xhtml"}
PDF_EXTS = {".pdf"}
JSONL_EXTS = {".jsonl"}
SUPPORTED = TEXT_EXTS | MD_EXTS | HTML_EXTS | PDF_EXTS | JSONL_EXTS
MAX_FILE_BYTES = 100 * 1024 * 1024
# Bump when a loader turns the same file into different text (2: HTML table rows carry their
# column headers): indexes built before are re-read on the next run.
LOADER_VERSION = 2


@dataclass(frozen=True)
class SourceFile:
    """A file to index and the root it was found under (doc ids are relative to the root)."""

    path: Path
    root: Path


@dataclass
class Discovery:
    files: list[SourceFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def discover(
    paths: Iterable[str | Path],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Discovery:
    """Expand files and folders (recursively) into the files to index, and what was skipped.

    A folder is its own root; a file given directly has its parent folder as root, except a
    ``.jsonl`` corpus, which is the root of the documents it holds.
    """
    found = Discovery()
    for raw in paths:
        p = Path(raw).expanduser().resolve()
        if not p.exists():
            raise LoaderError(f"{raw}: no such file or folder")
        if p.is_file():
            if p.suffix.lower() not in SUPPORTED:
                found.skipped.append((str(p), f"unsupported file type {p.suffix or '(none)'}"))
            else:
                root = p if p.suffix.lower() in JSONL_EXTS else p.parent
                found.files.append(SourceFile(p, root))
            continue
        for dirpath, dirnames, filenames in os.walk(p, onerror=None):
            d = Path(dirpath)
            for name in sorted(dirnames):
                if name.startswith("."):
                    found.skipped.append((str(d / name), "hidden folder"))
            dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
            for name in sorted(filenames):
                f = d / name
                rel = f.relative_to(p).as_posix()
                if name.startswith("."):
                    found.skipped.append((str(f), "hidden file"))
                elif include and not _matches(rel, include) or exclude and _matches(rel, exclude):
                    continue
                elif f.suffix.lower() not in SUPPORTED:
                    found.skipped.append((str(f), f"unsupported file type {f.suffix or '(none)'}"))
                else:
                    found.files.append(SourceFile(f, p))
    return found


def doc_id_for(path: Path, root: Path) -> str:
    """The stable id of a file: its path relative to the root it was indexed from."""
    return path.relative_to(root).as_posix()


def content_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\x00{text}".encode()).hexdigest()


def read_text_file(path: Path) -> str:
    """Read a text file as str; raise LoaderError for binary, unreadable or undecodable files."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise LoaderError(f"{path}: {size} bytes is over the {MAX_FILE_BYTES} byte limit")
        data = path.read_bytes()
    except OSError as e:
        raise LoaderError(f"{path}: unreadable ({e.strerror or e})") from e
    if b"\x00" in data[:8192]:
        raise LoaderError(f"{path}: binary file (NUL bytes), not text")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - cp1252 leaves only 5 undefined bytes
        raise LoaderError(f"{path}: not UTF-8 or cp1252 text")
    if encoding == "cp1252" and _control_ratio(text) > 0.05:
        raise LoaderError(f"{path}: binary file (not valid UTF-8, many control characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    bad = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t\f")
    return bad / len(text)


# --- plain text -------------------------------------------------------------------------------


def parse_text(raw: str, fallback_title: str) -> tuple[str, str, tuple[tuple[int, str], ...]]:
    """Plain text: the first line is the title when it is short and not a sentence."""
    first = raw.strip().split("\n", 1)[0].strip()
    title = first if 0 < len(first) <= 100 and not first.endswith((".", ",", ";")) else ""
    return raw, title or fallback_title, ()


# --- markdown ---------------------------------------------------------------------------------

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MD_RULE = re.compile(r"^ {0,3}([-*_])(\s*\1){2,}\s*$")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_MD_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_MD_LIST = re.compile(r"^(\s*)(?:[-*+]|\d{1,9}[.)])\s+(\[[ xX]\]\s+)?")
_MD_QUOTE = re.compile(r"^\s*(>\s?)+")
_MD_REFDEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S")
_MD_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # link -> text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference link -> text
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # autolink
    (re.compile(r"</?[A-Za-z][^>]*>"), ""),  # inline html tags
    (re.compile(r"(`+)(.+?)\1"), r"\2"),  # inline code
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *em*
    (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), r"\1"),  # _em_ (not snake_case)
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),  # strikethrough
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])"), r"\1"),  # backslash escapes
]


def _md_inline(line: str) -> str:
    for pattern, repl in _MD_INLINE:
        line = pattern.sub(repl, line)
    return line


def parse_markdown(raw: str, fallback_title: str) -> tuple[str, str, tuple[tuple[int, str], ...]]:
    """Markdown to plain text; headings stay in the text and become section metadata.

    A section is the heading path, e.g. ``Refund policy > Conditions``.
    """
    lines = raw.split("\n")
    title = ""
    i = 0
    if lines and lines[0].strip() == "---":  # YAML front matter
        for j in range(1, min(len(lines), 200)):
            if lines[j].strip() in ("---", "..."):
                for fm in lines[1:j]:
                    m = re.match(r"^title:\s*['\"]?(.*?)['\"]?\s*$", fm)
                    if m:
                        title = m.group(1)
                i = j + 1
                break
    out: list[str] = []
    pos = 0
    sections: list[tuple[int, str]] = []
    path: list[tuple[int, str]] = []  # (level, heading)
    fence: str | None = None

    def emit(text: str) -> None:
        nonlocal pos
        if text == "" and (not out or out[-1] == ""):
            return  # one blank line separates paragraphs; more add nothing
        out.append(text)
        pos += len(text) + 1

    def heading(level: int, text: str) -> None:
        nonlocal title
        text = _md_inline(text).strip()
        if not text:
            return
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, text))
        if level == 1 and not title:
            title = text
        if out and out[-1] != "":
            emit("")
        sections.append((pos, " > ".join(h for _, h in path)))
        emit(text)
        emit("")

    while i < len(lines):
        line = lines[i]
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            else:
                emit(line)
            i += 1
            continue
        m = _MD_FENCE.match(line)
        if m:
            fence = m.group(1)[0] * 3
            i += 1
            continue
        m = _MD_HEADING.match(line)
        if m:
            heading(len(m.group(1)), m.group(2))
            i += 1
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and _MD_SETEXT.match(nxt) and not _MD_LIST.match(line):
            heading(1 if nxt.strip().startswith("=") else 2, line.strip())
            i += 2
            continue
        if _MD_RULE.match(line) or _MD_TABLE_SEP.match(line) or _MD_REFDEF.match(line):
            i += 1
            continue
        line = _MD_QUOTE.sub("", line)
        line = _MD_LIST.sub(r"\1", line)
        if "|" in line and line.strip().startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            line = " | ".join(c for c in cells if c)
        emit(_md_inline(line).rstrip())
        i += 1
    return "\n".join(out).strip("\n"), title or fallback_title, tuple(sections)


# --- html -------------------------------------------------------------------------------------

_BLOCK = {
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
    "footer", "main", "nav", "aside", "blockquote", "pre", "hr", "dl", "dt", "dd", "figure",
    "figcaption", "form", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "caption", "address",
}
_SKIP = {"script", "style", "noscript", "template", "svg", "iframe", "object", "canvas", "head"}


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.skip = 0
        self.pre = 0
        self.title = ""
        self.in_title = False
        self.heading_level: int | None = None
        self.heading_buf: list[str] = []
        self.path: list[tuple[int, str]] = []
        self.sections: list[tuple[int, str]] = []
        self.heading_start = 0
        self.table_depth = 0
        self.headers: list[str] | None = None  # header cells of the current table
        self.row: list[tuple[str, bool]] | None = None  # (text, is header cell)
        self.cell: list[str] | None = None
        self.cell_header = False
        self.table_rows = 0

    def _add(self, s: str) -> None:
        self.parts.append(s)
        self.length += len(s)

    def _break(self, n: int = 2) -> None:
        if self.cell is not None:  # inside a table cell: the row is emitted as one line
            self.cell.append(" ")
            return
        if self.parts and self.parts[-1].endswith(" "):
            last = self.parts[-1].rstrip(" ")
            self.length -= len(self.parts[-1]) - len(last)
            self.parts[-1] = last
        tail = "".join(self.parts[-3:])
        have = len(tail) - len(tail.rstrip("\n"))
        if self.length and have < n:
            self._add("\n" * (n - have))

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "title":
            self.in_title = True
        if tag in _SKIP:
            self.skip += 1
            return
        if tag == "pre":
            self.pre += 1
        if self._table_tag(tag, start=True):
            return
        if tag in _BLOCK:
            self._break(1 if tag in ("br", "li", "tr", "td", "th", "dt", "dd") else 2)
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456" and not self.skip:
            self.heading_level = int(tag[1])
            self.heading_buf = []
            self.heading_start = self.length

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if self._table_tag(tag, start=False):
            return
        if self.heading_level is not None and tag == f"h{self.heading_level}":
            text = " ".join("".join(self.heading_buf).split())
            if text:
                while self.path and self.path[-1][0] >= self.heading_level:
                    self.path.pop()
                self.path.append((self.heading_level, text))
                self.sections.append((self.heading_start, " > ".join(h for _, h in self.path)))
            self.heading_level = None
        if tag in _BLOCK:
            self._break(1 if tag in ("li", "tr", "td", "th", "dt", "dd") else 2)

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
            return
        if self.skip:
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
            if self.parts and self.parts[-1].endswith((" ", "\n")) or not self.length:
                data = data.lstrip(" ")
        if not data:
            return
        if self.cell is not None:
            self.cell.append(data)
            return
        if self.heading_level is not None:
            self.heading_buf.append(data)
        self._add(data)

    def _table_tag(self, tag: str, start: bool) -> bool:
        """Tables become one line per row with each cell labelled by its column header
        ("Enterprise — P1: 15 minutes; P2: 1 hour."), so a row still says what its
        numbers are when it is read, retrieved or quoted alone. True if ``tag`` was handled.
        Nested tables are flattened into the cell that holds them.
        """
        if tag == "table":
            if start:
                self.table_depth += 1
                if self.table_depth == 1:
                    self._break(2)
                    self.headers, self.table_rows = None, 0
                return True
            self.table_depth = max(0, self.table_depth - 1)
            if self.table_depth == 0:
                if self.headers and not self.table_rows:  # a header row and nothing else
                    self._emit(" | ".join(self.headers))
                self.headers = None
                self._break(2)
            return True
        if self.table_depth != 1 or tag not in ("tr", "td", "th"):
            return False
        if tag == "tr":
            if start:
                self.row = []
            elif self.row:
                self._end_row(self.row)
                self.row = None
        elif start:
            self.cell, self.cell_header = [], tag == "th"
        elif self.cell is not None:
            if self.row is None:
                self.row = []
            self.row.append((" ".join("".join(self.cell).split()), self.cell_header))
            self.cell = None
        return True

    def _end_row(self, row: list[tuple[str, bool]]) -> None:
        cells = [c for c, _ in row]
        if all(h for _, h in row) and self.headers is None:
            self.headers = cells
            return
        if self.headers and len(self.headers) == len(cells):
            pairs = [f"{h}: {c}" for h, c in zip(self.headers[1:], cells[1:], strict=True) if c]
            line = f"{cells[0]} — " + "; ".join(pairs) if pairs else cells[0]
        else:
            line = " | ".join(c for c in cells if c)
        if line:
            self.table_rows += 1
            self._emit(line if line.endswith((".", "!", "?")) else line + ".")

    def _emit(self, line: str) -> None:
        self._break(1)
        self._add(line)
        self._break(1)


def parse_html(raw: str, fallback_title: str) -> tuple[str, str, tuple[tuple[int, str], ...]]:
    """HTML to text with the stdlib parser; scripts, styles and <head> are dropped."""
    p = _HTMLText()
    p.feed(raw)
    p.close()
    text = "".join(p.parts).rstrip()
    title = " ".join(p.title.split())
    if not title and p.sections:
        title = p.sections[0][1].split(" > ")[0]
    return text, title or fallback_title, tuple(p.sections)


# --- pdf --------------------------------------------------------------------------------------


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
        reader = PdfReader(str(path))
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


# --- BEIR jsonl -------------------------------------------------------------------------------


def parse_jsonl(path: Path, root: str) -> tuple[list[Document], list[str]]:
    """A BEIR corpus: one ``{"_id", "title", "text"}`` object a line; ids are kept."""
    docs: list[Document] = []
    warnings: list[str] = []
    seen: set[str] = set()
    raw = read_text_file(path)
    for n, line in enumerate(raw.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            warnings.append(f"{path}:{n}: not JSON ({e.msg}); line skipped")
            continue
        if not isinstance(obj, dict) or "_id" not in obj or not isinstance(
            obj.get("text"), str
        ):
            warnings.append(f'{path}:{n}: needs "_id" and a string "text"; line skipped')
            continue
        doc_id = str(obj["_id"])
        if doc_id in seen:
            warnings.append(f"{path}:{n}: duplicate _id {doc_id!r}; line skipped")
            continue
        seen.add(doc_id)
        title = str(obj.get("title") or "")
        text = obj["text"]
        docs.append(
            Document(
                doc_id=doc_id,
                source=str(path),
                title=title,
                text=text,
                root=root,
                format="jsonl",
                content_hash=content_hash(title, text),
            )
        )
    return docs, warnings


# --- dispatch ---------------------------------------------------------------------------------


@dataclass
class Loaded:
    docs: list[Document]
    warnings: list[str]


def load_file(src: SourceFile) -> Loaded:
    """Load one file into Documents. Raises LoaderError if the file cannot be used at all."""
    path, root = src.path, src.root
    ext = path.suffix.lower()
    try:
        st = path.stat()
    except OSError as e:
        raise LoaderError(f"{path}: unreadable ({e.strerror or e})") from e
    if ext in JSONL_EXTS:
        docs, warnings = parse_jsonl(path, str(root))
        return Loaded([replace(d, mtime=st.st_mtime, size=st.st_size) for d in docs], warnings)
    stem = path.stem
    pages: tuple[tuple[int, int], ...] = ()
    sections: tuple[tuple[int, str], ...] = ()
    if ext in PDF_EXTS:
        text, title, pages = parse_pdf(path, stem)
        fmt = "pdf"
    else:
        raw = read_text_file(path)
        if ext in MD_EXTS:
            text, title, sections = parse_markdown(raw, stem)
            fmt = "md"
        elif ext in HTML_EXTS:
            text, title, sections = parse_html(raw, stem)
            fmt = "html"
        else:
            text, title, sections = parse_text(raw, stem)
            fmt = "txt"
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
    return Loaded([doc], [])
