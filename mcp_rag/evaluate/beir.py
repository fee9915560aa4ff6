"""BEIR-layout datasets: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from mcp_rag.errors import MCPRagError


class DatasetError(MCPRagError, ValueError):
    """A BEIR file is missing or has a malformed line."""


def load_queries(dataset: Path) -> dict[str, str]:
    """Query id -> text from ``queries.jsonl`` (and ``queries_all.jsonl`` where present)."""
    dataset = Path(dataset)
    files = [f for f in (dataset / "queries.jsonl", dataset / "queries_all.jsonl") if f.exists()]
    if not files:
        raise DatasetError(f"{dataset}: no queries.jsonl")
    out: dict[str, str] = {}
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                q = json.loads(line)
                out[str(q["_id"])] = str(q["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise DatasetError(f'{f}:{n}: expected {{"_id", "text"}} ({e})') from e
    return out


def load_qrels(dataset: Path, split: str = "test") -> dict[str, dict[str, int]]:
    """Query id -> {doc id: graded relevance} from ``qrels/<split>.tsv`` (header line first)."""
    f = Path(dataset) / "qrels" / f"{split}.tsv"
    if not f.exists():
        raise DatasetError(f"{f}: no such qrels file (choose --split from the files in qrels/)")
    out: dict[str, dict[str, int]] = {}
    lines = f.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip() or (n == 1 and line.lower().startswith("query")):
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise DatasetError(f"{f}:{n}: expected query-id, corpus-id, score separated by tabs")
        try:
            score = int(parts[2])
        except ValueError as e:
            raise DatasetError(f"{f}:{n}: score {parts[2]!r} is not an integer") from e
        out.setdefault(parts[0], {})[parts[1]] = score
    return out


def judged_queries(
    texts: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]]
) -> list[tuple[str, str]]:
    """(query id, text) of every judged query that has a text, in query-id order."""
    return [(q, texts[q]) for q in sorted(qrels) if q in texts]
