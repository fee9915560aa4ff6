"""Reading a file as text (size limit, binary detection, encodings) and plain-text files."""

from __future__ import annotations

import hashlib
import re
import zlib
from bisect import bisect_left
from collections.abc import Callable
from pathlib import Path

from mcp_rag.errors import LoaderError
from mcp_rag.ingest.safety import MAX_FILE_BYTES, read_bytes

# Control characters other than newline and tab (C0, DEL, C1): terminal escapes and the
# like, which no reader wants quoted back. Each becomes one space, so offsets are kept.
_CONTROLS = {c: " " for c in [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]}


def strip_controls(text: str) -> str:
    """``text`` with each control character but newline and tab replaced by a space."""
    return text.translate(_CONTROLS)


# Characters that show nothing and join nothing: the soft hyphen, the zero-width space,
# the word joiner, and a byte-order mark inside the text. PostgreSQL's manual puts a
# zero-width space inside long identifiers where a line may break
# ("ddl_\u200bcommand_\u200bstart", 491 of them): left in, it cuts the identifier in two for
# BM25 and for the evidence check, and a quote copied from an answer carries it into the
# reader's SQL. Not the zero-width joiner and non-joiner: scripts and emoji need them.
INVISIBLE = re.compile("[\u00ad\u200b\u2060\ufeff]")


def drop_invisible(text: str) -> tuple[str, Callable[[int], int]]:
    """``text`` without its invisible characters (``INVISIBLE``), and where an offset into
    ``text`` (a section's or a page's start) falls in what remains."""
    cut = [m.start() for m in INVISIBLE.finditer(text)]
    if not cut:
        return text, lambda at: at
    return INVISIBLE.sub("", text), lambda at: at - bisect_left(cut, at)


# Bump when the same text is cut into different chunks (2: a term stays with its
# description and a sentence with the code block it introduces; 3: a full-width stop ends
# a Chinese or Japanese sentence; 4: a paragraph that stops mid-sentence keeps the lines
# that finish it; 5: a sentence that runs on past the code block it introduces, "For
# example, the code" / code / "will install ...", is one unit): every document's hash
# changes, so a run that reads it again re-chunks it (and embeds only the chunks whose
# text changed).
CHUNKING_VERSION = 5


def content_hash(title: str, text: str) -> str:
    """What a document's chunks are made of: its title, its text, and how text is cut."""
    return hashlib.sha256(f"{CHUNKING_VERSION}\x00{title}\x00{text}".encode()).hexdigest()


def read_text_file(path: Path) -> str:
    """Read a text file as str (gunzipped when it ends in ``.gz``); raise LoaderError for
    binary, unreadable or undecodable files, and for one that decompresses to more than a
    file may hold (``MAX_FILE_BYTES``)."""
    data = read_bytes(path)
    if path.suffix.lower() == ".gz":
        data = gunzipped(path, data)
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


def gunzipped(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> bytes:
    """``data`` (the gzip file at ``path``, one member or several in a row, as ``cat a.gz
    b.gz`` makes) decompressed, at most ``limit`` bytes of it."""
    out = bytearray()
    while True:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
        try:
            out += d.decompress(data, limit + 1 - len(out))
        except zlib.error as e:
            raise LoaderError(f"{path}: not a readable gzip file ({e})") from None
        if len(out) > limit:
            raise LoaderError(f"{path}: decompresses to more than {limit // (1 << 20)} MB, "
                              f"the most a file may hold")
        if not d.eof:
            raise LoaderError(f"{path}: a truncated gzip file")
        data = d.unused_data
        if not data.strip(b"\0"):  # trailing zeros: padding some tools write
            return bytes(out)


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    bad = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t\f")
    return bad / len(text)


def parse_text(raw: str, fallback_title: str) -> tuple[str, str, tuple[tuple[int, str], ...]]:
    """Plain text: the first line is the title when it is short and not a sentence."""
    first = raw.strip().split("\n", 1)[0].strip()
    title = first if 0 < len(first) <= 100 and not first.endswith((".", ",", ";")) else ""
    return raw, title or fallback_title, ()
