"""Which files to index: folders walked (hidden entries skipped), globs, supported suffixes."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mcp_rag.errors import LoaderError

TEXT_EXTS = {".txt", ".text", ".rst", ".log", ".csv"}
MD_EXTS = {".md", ".markdown", ".mdx"}
HTML_EXTS = {".html", ".htm", ".xhtml"}
PDF_EXTS = {".pdf"}
JSONL_EXTS = {".jsonl"}
SUPPORTED = TEXT_EXTS | MD_EXTS | HTML_EXTS | PDF_EXTS | JSONL_EXTS


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
