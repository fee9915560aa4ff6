"""Which files to index: folders walked (hidden entries skipped), globs, supported suffixes."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mcp_rag.errors import LoaderError
from mcp_rag.ingest import safety

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
    given = [safety.resolve(raw) for raw in paths]
    allowed = list(roots) if roots is not None else given
    found = Discovery()
    seen: set[Path] = set()

    def add(path: Path, root: Path) -> None:
        if path not in seen:
            seen.add(path)
            found.files.append(SourceFile(path, root))

    for raw, p in zip(paths, given, strict=True):
        if not safety.within(p, allowed):
            raise LoaderError(f"{raw} is outside the allowed roots "
                              f"({', '.join(map(str, allowed))})")
        try:
            st = p.stat()
        except FileNotFoundError:
            raise LoaderError(f"{raw}: no such file or folder") from None
        except OSError as e:
            raise LoaderError(f"{raw}: unreadable ({e.strerror or e})") from e
        if stat.S_ISDIR(st.st_mode):
            _walk(p, include, exclude, allowed, found, add)
        elif not stat.S_ISREG(st.st_mode):
            found.skipped.append((str(p), f"{safety.kind_of(st.st_mode)}, not a regular file"))
        elif p.suffix.lower() not in SUPPORTED:
            found.skipped.append((str(p), f"unsupported file type {p.suffix or '(none)'}"))
        else:
            add(p, p if p.suffix.lower() in JSONL_EXTS else p.parent)
    return found


def _walk(
    top: Path,
    include: Sequence[str],
    exclude: Sequence[str],
    allowed: Sequence[Path],
    found: Discovery,
    add: Callable[[Path, Path], None],
) -> None:
    """Walk ``top`` without recursion (deep trees cannot exhaust the stack), in name order."""
    stack: list[tuple[Path, int]] = [(top, 0)]
    while stack:
        d, depth = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            found.skipped.append((str(d), f"unreadable folder ({e.strerror or e})"))
            continue
        subdirs: list[Path] = []
        for entry in entries:
            f = Path(entry.path)
            if entry.name.startswith("."):
                found.skipped.append((str(f), "hidden folder" if entry.is_dir() else "hidden file"))
                continue
            try:
                if entry.is_symlink():
                    _link(f, top, include, exclude, allowed, found, add)
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if depth + 1 > MAX_DEPTH:
                        found.skipped.append((str(f), f"nested deeper than {MAX_DEPTH} folders"))
                    else:
                        subdirs.append(f)
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as err:
                found.skipped.append((str(f), f"unreadable ({err.strerror or err})"))
                continue
            rel = f.relative_to(top).as_posix()
            if include and not _matches(rel, include) or exclude and _matches(rel, exclude):
                continue
            if not stat.S_ISREG(mode):
                found.skipped.append((str(f), f"{safety.kind_of(mode)}, not a regular file"))
            elif f.suffix.lower() not in SUPPORTED:
                found.skipped.append((str(f), f"unsupported file type {f.suffix or '(none)'}"))
            else:
                add(f, top)
        stack.extend((s, depth + 1) for s in reversed(subdirs))


def _link(
    link: Path,
    top: Path,
    include: Sequence[str],
    exclude: Sequence[str],
    allowed: Sequence[Path],
    found: Discovery,
    add: Callable[[Path, Path], None],
) -> None:
    """A symbolic link met in a walk: followed only to a regular file under the roots."""
    try:
        target = link.resolve(strict=True)
        mode = target.stat().st_mode
    except (OSError, RuntimeError):
        found.skipped.append((str(link), "broken symbolic link"))
        return
    if stat.S_ISDIR(mode):
        found.skipped.append((str(link), "symbolic link to a folder (not followed)"))
    elif not safety.within(target, allowed):
        found.skipped.append((str(link), "symbolic link to a file outside the allowed roots"))
    elif not stat.S_ISREG(mode):
        found.skipped.append((str(link), f"symbolic link to {safety.kind_of(mode)}"))
    else:
        rel = link.relative_to(top).as_posix()
        if include and not _matches(rel, include) or exclude and _matches(rel, exclude):
            return
        if target.suffix.lower() not in SUPPORTED:
            found.skipped.append((str(link), f"unsupported file type {target.suffix or '(none)'}"))
            return
        root = top if target.is_relative_to(top) else next(r for r in allowed
                                                           if target.is_relative_to(r))
        add(target, root if root.is_dir() else root.parent)


def doc_id_for(path: Path, root: Path) -> str:
    """The stable id of a file: its path relative to the root it was indexed from."""
    return path.relative_to(root).as_posix()
