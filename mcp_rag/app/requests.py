"""What a caller asks of ``RagService``: typed requests, one per cached tool.

Each knows its tool's name and the parameters that, with the normalised query and the
pipeline's fingerprint, make its cache key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp_rag.types import Mode


@dataclass(frozen=True)
class SearchRequest:
    """The ``search`` tool's arguments."""

    query: str
    k: int = 5
    filters: dict[str, str] | None = None
    rerank: bool = True
    mode: Mode | str = Mode.HYBRID
    candidates: int | None = None

    tool = "search"

    @property
    def text(self) -> str:
        return self.query

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "filters": self.filters, "rerank": self.rerank,
                "mode": self.mode, "candidates": self.candidates}


@dataclass(frozen=True)
class AnswerRequest:
    """The ``answer`` tool's arguments (None: the served settings' values)."""

    question: str
    k: int | None = None
    max_sentences: int | None = None
    filters: dict[str, str] | None = None

    tool = "answer"

    @property
    def text(self) -> str:
        return self.question
