from __future__ import annotations

import re

import pytest

from mcp_rag.evaluate.beir import DatasetError, judged_queries, load_qrels, load_queries


def test_loaders_read_queries_and_graded_qrels(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "one"}\n\n{"_id": 2, "text": "two"}\n'
    )
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n2\td3\t1\n"
    )
    assert load_queries(tmp_path) == {"q1": "one", "2": "two"}
    assert load_qrels(tmp_path) == {"q1": {"d1": 2, "d2": 0}, "2": {"d3": 1}}


def test_bad_lines_say_file_and_line(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "one"}\n{"text": "no id"}\n')
    with pytest.raises(DatasetError, match=re.escape("queries.jsonl:2: expected")):
        load_queries(tmp_path)
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1 d1 1\n")
    with pytest.raises(DatasetError, match="test.tsv:2: expected query-id, corpus-id, score"):
        load_qrels(tmp_path)
    (tmp_path / "qrels" / "test.tsv").write_text("q1\td1\thigh\n")
    with pytest.raises(DatasetError, match="score 'high' is not an integer"):
        load_qrels(tmp_path)
    with pytest.raises(DatasetError, match="no such qrels file"):
        load_qrels(tmp_path, "dev")
    with pytest.raises(DatasetError, match="no queries.jsonl"):
        load_queries(tmp_path / "qrels")


def test_judged_queries_are_those_with_a_text_in_id_order():
    texts = {"2": "second", "1": "first", "9": "never judged"}
    qrels = {"2": {"d": 1}, "1": {"d": 2}, "3": {"d": 1}}  # "3" has no text
    assert judged_queries(texts, qrels) == [("1", "first"), ("2", "second")]
