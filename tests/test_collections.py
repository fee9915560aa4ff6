"""Named collections: indexed with --collection, counted, searched one at a time, moved
without re-embedding, listed by the CLI and by a tool, and named in the server's
instructions; an index written before collections reads as one default collection."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from helpers import SAMPLE, KeywordEmbedder
from mcp import Client
from mcp.types import PromptReference

from mcp_rag.cli import cli
from mcp_rag.errors import QueryError
from mcp_rag.index.store import IndexReader
from mcp_rag.index.update import index_paths
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server


@pytest.fixture
def two(tmp_path, settings) -> tuple[Path, Path]:
    """The sample as collection 'kb', and a folder of notes as collection 'notes'."""
    kb = tmp_path / "kb"
    shutil.copytree(SAMPLE, kb)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "trip.md").write_text("# Trip\n\nWe saw quokkas and a storage quota sign.\n")
    (notes / "food.md").write_text("# Food\n\nThe refund desk sold pies.\n")
    emb = KeywordEmbedder()
    index_paths(settings.index, [kb], emb, quiet=True, collection="kb")
    index_paths(settings.index, [notes], emb, quiet=True, collection="notes")
    return kb, notes


def test_collections_are_counted(two, settings):
    r = IndexReader(settings.index)
    try:
        got = r.collections()
        assert set(got) == {"kb", "notes"} and got["notes"][0] == 2
        assert sum(d for d, _ in got.values()) == len(r.doc_ids)
        assert sum(c for _, c in got.values()) == r.n_chunks
        assert r.document("trip.md").collection == "notes"
    finally:
        r.close()


def test_a_search_stays_in_its_collection(two, settings):
    p = Pipeline(settings, embedder=KeywordEmbedder())
    everywhere = {h.chunk.doc_id for h in p.search("storage quota refund", k=10).hits}
    notes = {h.chunk.doc_id for h in
             p.search("storage quota refund", k=10, filters={"collection": "notes"}).hits}
    assert notes == {"trip.md", "food.md"} and everywhere > notes
    with pytest.raises(QueryError, match="no collection 'nope'; the collections are: kb, notes"):
        p.search("quota", filters={"collection": "nope"})


def test_moving_documents_to_another_collection_embeds_nothing(two, settings):
    kb, notes = two
    emb = KeywordEmbedder()
    rep = index_paths(settings.index, [notes], emb, quiet=True, collection="travel")
    assert (rep.moved, rep.embedded_chunks, rep.changed) == (2, 0, True)
    again = index_paths(settings.index, [notes], emb, quiet=True)  # no name: they stay
    assert (again.moved, again.changed) == (0, False)
    (notes / "new.md").write_text("# New\n\nA wombat.\n")
    index_paths(settings.index, [notes], emb, quiet=True)
    r = IndexReader(settings.index)
    try:
        assert r.collections()["travel"][0] == 2 and r.document("new.md").collection == "default"
    finally:
        r.close()


def test_an_index_from_before_collections_is_one_default_collection(settings, tmp_path):
    kb = tmp_path / "kb"
    shutil.copytree(SAMPLE, kb)
    index_paths(settings.index, [kb], KeywordEmbedder(), quiet=True)
    r = IndexReader(settings.index)
    meta = r.path / "meta.sqlite"
    r.close()
    db = sqlite3.connect(meta)
    db.execute("ALTER TABLE docs DROP COLUMN collection")  # as older versions wrote it
    db.commit()
    db.close()
    old = IndexReader(settings.index)
    try:
        assert set(old.collections()) == {"default"}
        assert old.document("support/error-codes.md").collection == "default"
    finally:
        old.close()
    (kb / "extra.md").write_text("# Extra\n\nNumbats.\n")
    index_paths(settings.index, [kb], KeywordEmbedder(), quiet=True, collection="kb")
    new = IndexReader(settings.index)
    try:
        assert set(new.collections()) == {"kb"}
    finally:
        new.close()


async def test_collections_over_mcp(two, settings):
    server = build_server(Pipeline(settings, embedder=KeywordEmbedder()))
    async with Client(server) as c:
        listed = await c.call_tool("list_collections", {})
        s = await c.call_tool("search", {"query": "storage quota", "k": 5, "rerank": False,
                                         "filters": {"collection": "notes"}})
        bad = await c.call_tool("search", {"query": "quota", "filters": {"collection": "x"}})
        a = await c.call_tool("answer", {"question": "storage quota",
                                         "filters": {"collection": "notes"}})
        status = await c.call_tool("index_status", {})
        names = await c.complete(PromptReference(type="ref/prompt", name="grounded-answer"),
                                 {"name": "collection", "value": "n"})
        prompt = await c.get_prompt("grounded-answer", {"question": "Q?", "collection": "kb"})
        instructions = c.instructions
    assert [(x["name"], x["documents"]) for x in listed.structured_content["collections"]] \
        == [("kb", 6), ("notes", 2)]
    assert {h["doc_id"] for h in s.structured_content["results"]} <= {"trip.md", "food.md"}
    assert bad.is_error and "the collections are: kb, notes" in bad.content[0].text
    assert {x["doc_id"] for x in a.structured_content["sources"]} <= {"trip.md", "food.md"}
    assert status.structured_content["collections"] == {"kb": 6, "notes": 2}
    assert names.completion.values == ["notes"]
    assert "collection: 'kb'" in prompt.messages[0].content.text
    assert "kb (6 documents), notes (2 documents)" in instructions


def test_collections_from_the_command_line(runner, settings, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# A\n\nQuokkas.\n")
    idx = str(settings.index)
    r = runner.invoke(cli, ["--index", idx, "index", str(SAMPLE), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--index", idx, "index", str(notes), "--collection", "notes", "-q"])
    assert r.exit_code == 0, r.output
    listed = runner.invoke(cli, ["--index", idx, "collections", "--json"])
    got = {c["name"]: c["documents"] for c in json.loads(listed.stdout)["collections"]}
    assert got == {"default": 6, "notes": 1}
    found = runner.invoke(cli, ["--index", idx, "search", "quokkas", "--collection", "notes",
                                "--no-rerank", "--json"])
    assert [h["doc_id"] for h in json.loads(found.stdout)["results"]] == ["a.md"]
