"""The documentation benchmark (benchmarks/docs.py) on a tiny docs set: four pages of
SQLite's manual as shipped, seven questions, the real model pack, through the service the
MCP tools call."""

from __future__ import annotations

import json

import pytest
from helpers import REPO

from benchmarks import docs
from mcp_rag.app.service import RagService
from mcp_rag.evaluate.metrics import wilson
from mcp_rag.index.indexer import Indexer
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

pytestmark = pytest.mark.slow
MINI = REPO / "tests" / "fixtures" / "third_party" / "sqlite-docs"
QUESTIONS = REPO / "tests" / "fixtures" / "docs-mini.jsonl"


def test_the_benchmark_reports_pages_keys_and_refusals(tmp_path, models_dir):
    s = Settings(index=tmp_path / "index", models=models_dir, cache_enabled=False)
    svc = RagService(Pipeline.from_settings(s, require_index=False))
    Indexer(s, svc.pipeline.embedder).index([MINI], quiet=True)
    out = docs.run(svc, docs.load_questions(QUESTIONS))
    summary = out["summary"]
    assert summary["in_scope"] == 4 and summary["same_field_questions"] == 1
    assert summary["hit@3"] == 1.0 and summary["answered"] == 1.0
    assert summary["other_field_refused"] == 1.0
    # this manual's task (savepoints), in another product: the steps are not Oracle's
    assert summary["same_task_questions"] == 1 and summary["same_task_refused"] == 1.0
    assert summary["ci95"]["answered"] == wilson(4, 4)  # each rate with its interval
    row = next(r for r in out["questions"] if r["id"] == "mini-01")
    assert row["rank"] == 1  # the page; whether the answer quotes VACUUM is what it measures
    assert row["holds_key"] == ("VACUUM" in row["answer"])
    json.dumps(out)  # what --json writes


def test_a_question_file_with_a_bad_line_names_it(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"kind": "in_scope", "question": "How?"}\n')
    with pytest.raises(ValueError, match=r"q.jsonl:1: an in-scope question needs pages"):
        docs.load_questions(bad)
