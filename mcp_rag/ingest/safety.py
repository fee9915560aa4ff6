"""The one gate every file read goes through, for `index`, `index_paths` and the loaders alike.

- A path argument is refused early when it is empty, holds a NUL byte or is absurdly long.
- Paths are resolved (symbolic links followed) and then checked against the allowed roots,
  so a link inside a root cannot lead out of it.
- Only regular files are read: FIFOs, sockets and devices are refused after an ``open``
  that cannot block (``O_NONBLOCK``) and does not follow a link swapped in since
  (``O_NOFOLLOW``), checked with ``fstat`` on the open descriptor.
- Reads stop at a byte limit counted while reading, never trusting ``st_size`` (0 for
  ``/dev/zero`` and for files in ``/proc``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from mcp_rag.errors import LoaderError

MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
}


def kind_of(mode: int) -> str:
    """What a file that is not regular is, in words."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def check_path_text(raw: str | Path) -> str:
    """``raw`` as text, or LoaderError when it cannot be a path anyone meant."""
    text = str(raw)
    if not text.strip():
        raise LoaderError("an empty path was given: name a file or folder")
    if "\x00" in text:
        raise LoaderError(f"{text[:80]!r}... holds a NUL byte, which no path can")
    if len(text) > MAX_PATH_CHARS:
        raise LoaderError(
            f"a path of {len(text)} characters is over the limit of {MAX_PATH_CHARS}"
        )
    return text


def resolve(raw: str | Path) -> Path:
    """The real path of ``raw`` (``~`` expanded, links followed); LoaderError if unusable."""
    text = check_path_text(raw)
    try:
        return Path(text).expanduser().resolve()
    except (OSError, RuntimeError) as e:  # a link loop, a name too long
        raise LoaderError(f"{text}: cannot be resolved ({type(e).__name__}: {e})") from e


def within(path: Path, roots: Iterable[Path]) -> bool:
    """True if the resolved ``path`` is one of ``roots`` or lies under one."""
    return any(path == r or path.is_relative_to(r) for r in roots)


def read_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    Raises:
        LoaderError: not a regular file, unreadable, or larger than ``limit``.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise LoaderError(f"{path}: unreadable ({e.strerror or e})") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LoaderError(f"{path}: {kind_of(st.st_mode)}, not a regular file")
        os.set_blocking(fd, True)
        parts: list[bytes] = []
        got = 0
        while got <= limit:
            block = os.read(fd, min(1 << 20, limit + 1 - got))
            if not block:
                break
            parts.append(block)
            got += len(block)
        if got > limit:
            raise LoaderError(f"{path}: over the {limit} byte limit")
        return b"".join(parts)
    except OSError as e:
        raise LoaderError(f"{path}: unreadable ({e.strerror or e})") from e
    finally:
        os.close(fd)
