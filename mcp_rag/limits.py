"""The bounds a caller can meet, each defined once: the settings, the tools' schemas, the
CLI's options and the checks in code all read them from here."""

from __future__ import annotations

from dataclasses import dataclass

from mcp_rag.errors import QueryError

MAX_QUERY_CHARS = 2000  # a question or query, in characters


@dataclass(frozen=True)
class Range:
    """An inclusive range of whole numbers, and the error for a value outside it."""

    lo: int
    hi: int

    def check(self, value: object, name: str, unit: str = "") -> int:
        """``value`` if it is a whole number in range.

        Raises:
            QueryError: "k of 80 is out of range: choose 1..50".
        """
        if not isinstance(value, int) or not self.lo <= value <= self.hi:
            raise QueryError(f"{name} of {value} is out of range: choose {self.lo}..{self.hi}"
                             f"{unit}")
        return value


K = Range(1, 50)  # passages search returns
CANDIDATES = Range(1, 200)  # first-stage candidates the cross-encoder reads
ANSWER_PASSAGES = Range(1, 20)  # passages an answer is drawn from
ANSWER_SENTENCES = Range(1, 20)  # sentences an extractive answer quotes

# add_document: what one added document may hold, and how many there may be per index.
MAX_TITLE_CHARS = 200
MAX_ADDED_CHARS = 100_000  # ~25 pages; longer texts are split by the caller
MAX_SOURCE_CHARS = 500
MAX_ADDED_DOCS = 10_000
