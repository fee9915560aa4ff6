"""Exact-match query cache on disk (diskcache), keyed by what changes the result.

The key is the SHA-256 of a canonical JSON of: the tool name, the normalised query, the
call's parameters (k, filters, rerank, ...) and a fingerprint of everything else that
changes the result (model ids, every ranking setting, the relevance floor and the index
generation). It is never a nearest-neighbour lookup: "KB-ERR-2847" and "KB-ERR-2874" are
different keys. A new index generation or model makes old entries unreachable; they age
out under the size limit. A broken cache is bypassed with a warning, never an error.

Normalisation (applied to the query that is searched too, so a hit returns exactly what
a miss would compute): Unicode NFKC, case folding, runs of whitespace collapsed to one
space, and punctuation and symbols trimmed from both ends ("What is X?" == "what is x").
Punctuation inside the query is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import unicodedata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_SPACES = re.compile(r"\s+")


def normalize_query(query: str) -> str:
    """NFKC, casefold, collapse whitespace, trim punctuation and symbols at both ends.

    Example:
        >>> normalize_query("  What does  KB-ERR-2847 mean?? ")
        'what does kb-err-2847 mean'
    """
    q = _SPACES.sub(" ", unicodedata.normalize("NFKC", query).casefold()).strip()
    start, end = 0, len(q)
    while start < end and unicodedata.category(q[start])[0] in "PSZ":
        start += 1
    while end > start and unicodedata.category(q[end - 1])[0] in "PSZ":
        end -= 1
    return q[start:end]


def cache_key(tool: str, query: str, params: dict[str, Any], fingerprint: dict[str, Any]) -> str:
    """SHA-256 hex of everything that decides the result."""
    payload = {"tool": tool, "query": query, "params": params, "fingerprint": fingerprint}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class QueryCache:
    """A diskcache ``Cache`` shared safely by processes; any failure disables it, loudly."""

    def __init__(
        self, directory: Path, size_limit: int = 256 * 2**20, ttl: float | None = None
    ) -> None:
        self.directory = Path(directory)
        self.ttl = ttl
        self._cache = None
        self.error: str | None = None
        try:
            import diskcache

            self._cache = diskcache.Cache(str(self.directory), size_limit=size_limit)
            self._cache.stats(enable=True)
        except Exception as e:  # unwritable folder, corrupt database, ...
            self._disable("open", e)

    def _disable(self, what: str, e: Exception) -> None:
        self.error = f"cache {what} failed at {self.directory}: {type(e).__name__}: {e}"
        log.warning("%s; queries run uncached", self.error)
        if self._cache is not None:
            with contextlib.suppress(Exception):  # it is broken already
                self._cache.close()
        self._cache = None

    @property
    def enabled(self) -> bool:
        return self._cache is not None

    def get(self, key: str) -> Any | None:
        if self._cache is None:
            return None
        try:
            return self._cache.get(key)
        except Exception as e:
            self._disable("read", e)
            return None

    def set(self, key: str, value: Any) -> None:
        if self._cache is None:
            return
        try:
            self._cache.set(key, value, expire=self.ttl)
        except Exception as e:
            self._disable("write", e)

    def stats(self) -> dict[str, Any]:
        if self._cache is None:
            return {"enabled": False, "error": self.error, "directory": str(self.directory)}
        hits, misses = self._cache.stats()
        total = hits + misses
        return {
            "enabled": True,
            "directory": str(self.directory),
            "entries": len(self._cache),
            "size_bytes": self._cache.volume(),
            "hits": hits,
            "misses": misses,
            "hit_rate": round(hits / total, 4) if total else 0.0,
        }

    def clear(self) -> int:
        if self._cache is None:
            return 0
        n = self._cache.clear()
        self._cache.stats(reset=True)
        return n

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
