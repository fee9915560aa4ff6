"""Which files to index: folders walked (hidden entries skipped), globs, supported suffixes."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mcp_rag.errors import LoaderError
from mcp_rag.ingest import ocr, safety
from mcp_rag.ingest.code import CODE_EXTS
from mcp_rag.ingest.mail import MAIL_EXTS
from mcp_rag.ingest.ocr import IMAGE_EXTS
from mcp_rag.ingest.office import OFFICE_EXTS
from mcp_rag.ingest.rst import RST_EXTS

TEXT_EXTS = {".txt", ".text", ".log", ".csv"}
MD_EXTS = {".md", ".markdown", ".mdx"}
HTML_EXTS = {".html", ".htm", ".xhtml"}
PDF_EXTS = {".pdf"}
JSONL_EXTS = {".jsonl"}
SUPPORTED = (TEXT_EXTS | MD_EXTS | HTML_EXTS | PDF_EXTS | JSONL_EXTS | OFFICE_EXTS | MAIL_EXTS
             | RST_EXTS | CODE_EXTS | IMAGE_EXTS)
# Text formats also read gzip-compressed (``guide.md.gz``), as Debian ships documentation.
GZIP_EXTS = TEXT_EXTS | MD_EXTS | HTML_EXTS | RST_EXTS


def format_suffix(path: Path) -> str:
    """The suffix that says how ``path`` is read, lowercased: ``.md`` for ``guide.md``
    and for ``guide.md.gz`` (a compressed text format), else the last suffix (``.gz``
    alone is not a format)."""
    ext = path.suffix.lower()
    if ext == ".gz":
        inner = Path(path.stem).suffix.lower()
        if inner in GZIP_EXTS:
            return inner
    return ext


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


MAX_DEPTH = 64  # folders nested deeper than this are skipped (a loop of bind mounts, a trap)


def discover(
    paths: Iterable[str | Path],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    roots: Sequence[Path] | None = None,
) -> Discovery:
    """Expand files and folders (recursively) into the files to index, and what was skipped.

    A folder is its own root; a file given directly has its parent folder as root, except a
    ``.jsonl`` corpus, which is the root of the documents it holds. Every path goes through
    the gate in ``safety``: ``roots`` (resolved) are where files may come from; by default
    the paths given. A symbolic link in a folder is followed only to a regular file under
    those roots (and indexed as that file); links to folders are not followed; FIFOs,
    sockets and devices are skipped; a file reached twice is indexed once.

    Raises:
        LoaderError: a path is empty, holds NUL, does not exist or lies outside ``roots``.
    """
    paths = list(paths)  # walked twice below
    given = [safety.resolve(raw) for raw in paths]
    scan = _Scan(include, exclude, list(roots) if roots is not None else given)
    for raw, p in zip(paths, given, strict=True):
        if not safety.within(p, scan.allowed):
            raise LoaderError(f"{raw} is outside the allowed roots "
                              f"({', '.join(map(str, scan.allowed))})")
        try:
            st = p.stat()
        except FileNotFoundError:
            raise LoaderError(f"{raw}: no such file or folder") from None
        except OSError as e:
            raise LoaderError(f"{raw}: unreadable ({e.strerror or e})") from e
        if stat.S_ISDIR(st.st_mode):
            scan.walk(p)
        elif not stat.S_ISREG(st.st_mode):
            scan.skip(p, f"{safety.kind_of(st.st_mode)}, not a regular file")
        else:
            scan.accept(p, p, p if p.suffix.lower() in JSONL_EXTS else p.parent)
    return scan.found


class _Scan:
    """One discovery run: what it found, what it skipped, and which files it has seen."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str],
                 allowed: Sequence[Path]) -> None:
        self.include, self.exclude, self.allowed = include, exclude, allowed
        self.found = Discovery()
        self.seen: set[Path] = set()

    def skip(self, path: Path, why: str) -> None:
        self.found.skipped.append((str(path), why))

    def accept(self, shown: Path, path: Path, root: Path) -> None:
        """Index ``path`` (met as ``shown``) under ``root``, once, if its suffix is known."""
        ext = format_suffix(path)
        if ext not in SUPPORTED:
            what = "".join(path.suffixes[-2:]) if ext == ".gz" else ext  # .yaml.gz
            self.skip(shown, f"unsupported file type {what or '(none)'}")
        elif ext in IMAGE_EXTS and (why := ocr.missing()) is not None:
            self.skip(shown, why)
        elif path not in self.seen:
            self.seen.add(path)
            self.found.files.append(SourceFile(path, root))

    def _filtered_out(self, path: Path, top: Path) -> bool:
        rel = path.relative_to(top).as_posix()
        return bool(self.include and not _matches(rel, self.include)
                    or self.exclude and _matches(rel, self.exclude))

    def walk(self, top: Path) -> None:
        """Walk ``top`` without recursion (deep trees cannot exhaust the stack), in name order."""
        stack: list[tuple[Path, int]] = [(top, 0)]
        while stack:
            d, depth = stack.pop()
            try:
                with os.scandir(d) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as e:
                self.skip(d, f"unreadable folder ({e.strerror or e})")
                continue
            subdirs: list[Path] = []
            for entry in entries:
                f = Path(entry.path)
                if entry.name.startswith("."):
                    self.skip(f, "hidden folder" if entry.is_dir() else "hidden file")
                    continue
                try:
                    if entry.is_symlink():
                        self.link(f, top)
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        if depth + 1 > MAX_DEPTH:
                            self.skip(f, f"nested deeper than {MAX_DEPTH} folders")
                        else:
                            subdirs.append(f)
                        continue
                    mode = entry.stat(follow_symlinks=False).st_mode
                except OSError as err:
                    self.skip(f, f"unreadable ({err.strerror or err})")
                    continue
                if self._filtered_out(f, top):
                    continue
                if not stat.S_ISREG(mode):
                    self.skip(f, f"{safety.kind_of(mode)}, not a regular file")
                else:
                    self.accept(f, f, top)
            stack.extend((s, depth + 1) for s in reversed(subdirs))

    def link(self, link: Path, top: Path) -> None:
        """A symbolic link met in a walk: followed only to a regular file under the roots."""
        try:
            target = link.resolve(strict=True)
            mode = target.stat().st_mode
        except (OSError, RuntimeError):
            self.skip(link, "broken symbolic link")
            return
        if stat.S_ISDIR(mode):
            self.skip(link, "symbolic link to a folder (not followed)")
        elif not safety.within(target, self.allowed):
            self.skip(link, "symbolic link to a file outside the allowed roots")
        elif not stat.S_ISREG(mode):
            self.skip(link, f"symbolic link to {safety.kind_of(mode)}")
        elif not self._filtered_out(link, top):
            root = top if target.is_relative_to(top) else next(
                r for r in self.allowed if target.is_relative_to(r))
            self.accept(link, target, root if root.is_dir() else root.parent)


def doc_id_for(path: Path, root: Path) -> str:
    """The stable id of a file: its path relative to the root it was indexed from."""
    return path.relative_to(root).as_posix()
