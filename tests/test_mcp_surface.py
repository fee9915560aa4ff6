"""The MCP surface beyond the search tools, through a real client session: the read tools,
resource links, paged document resources, completions, subscriptions with notifications
when a new index generation switches in, and logging/setLevel."""

from __future__ import annotations

import anyio
import pytest
from helpers import KeywordEmbedder, KeywordReranker
from mcp import Client
from mcp.types import ResourceTemplateReference

from mcp_rag.app.schemas import DOCUMENTS, MAX_READ_CHARS, chunk_uri, document_uri
from mcp_rag.index.update import index_paths
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve import resources as resources_mod
from mcp_rag.serve.changes import affected, diff
from mcp_rag.serve.server import build_server

ERRORS = "support/error-codes.md"


@pytest.fixture
def pipeline(indexed):
    s = indexed.model_copy(update={"rerank": True, "relevance_floor": 0.0, "change_poll": 0.05})
    return Pipeline(s, embedder=KeywordEmbedder(), reranker=KeywordReranker())


@pytest.fixture
def live(settings, sample_dir):
    """An index of a folder the test edits, served with fast change polling."""
    index_paths(settings.index, [sample_dir], KeywordEmbedder(), quiet=True)
    s = settings.model_copy(update={"change_poll": 0.05})
    return Pipeline(s, embedder=KeywordEmbedder()), sample_dir


async def test_get_document_pages_through_a_long_document(settings, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    body = "".join(f"Paragraph {i} about quokkas and their burrows.\n\n" for i in range(900))
    (docs / "long.md").write_text("# Long\n\n" + body)
    index_paths(settings.index, [docs], KeywordEmbedder(), quiet=True)
    async with Client(build_server(Pipeline(settings, embedder=KeywordEmbedder()))) as c:
        text = (await c.read_resource(document_uri("long.md"))).contents[0].text
        pages, start = [], 0
        while start is not None:
            r = await c.call_tool("get_document", {"doc_id": "long.md", "start": start})
            assert not r.is_error
            out = r.structured_content
            pages.append(out["text"])
            start = out["next_start"]
        part = await c.call_tool("get_document", {"doc_id": "long.md", "start": 10, "end": 60})
    assert len(pages) == -(-len(text) // MAX_READ_CHARS) > 1
    assert "".join(pages) == text
    assert part.structured_content["text"] == text[10:60]
    assert part.structured_content["next_start"] is None
    assert "call get_document with start=" not in part.content[0].text


async def test_get_document_says_what_to_do_with_a_wrong_id(pipeline):
    async with Client(build_server(pipeline)) as c:
        r = await c.call_tool("get_document", {"doc_id": "nope.md"})
        bad = await c.call_tool("get_document", {"doc_id": ERRORS, "start": 50, "end": 10})
    assert r.is_error and "no document 'nope.md'" in r.content[0].text
    assert bad.is_error and "not a range" in bad.content[0].text


async def test_get_chunk_reads_a_passage_with_its_neighbours(settings, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "n.md").write_text("# N\n\n" + "".join(
        f"## Part {i}\n\n" + f"Part {i} says something about topic {i}. " * 40 + "\n\n"
        for i in range(6)))
    index_paths(settings.index, [docs], KeywordEmbedder(), quiet=True)
    async with Client(build_server(Pipeline(settings, embedder=KeywordEmbedder()))) as c:
        r = await c.call_tool("get_chunk", {"chunk_id": "n.md#2", "neighbors": 1})
        edge = await c.call_tool("get_chunk", {"chunk_id": "n.md#0", "neighbors": 2})
        doc = (await c.call_tool("get_document", {"doc_id": "n.md"})).structured_content
    out = r.structured_content
    assert [x["chunk_no"] for x in out["before"]] == [1]
    assert [x["chunk_no"] for x in out["after"]] == [3]
    a, b = out["context_span"]
    assert out["context"] == doc["text"][a:b]
    assert a == out["before"][0]["span"][0] and b == out["after"][0]["span"][1]
    assert edge.structured_content["before"] == [] and len(edge.structured_content["after"]) == 2
    links = [x for x in r.content if x.type == "resource_link"]
    assert [x.uri for x in links] == [document_uri("n.md")]


async def test_search_and_answer_link_the_documents_they_cite(pipeline):
    async with Client(build_server(pipeline)) as c:
        s = await c.call_tool("search", {"query": "KB-ERR-2847 storage quota", "k": 3})
        a = await c.call_tool("answer", {"question": "KB-ERR-2847 storage quota exceeded"})
        link = next(x for x in s.content if x.type == "resource_link")
        text = (await c.read_resource(link.uri)).contents[0].text
    uris = [x.uri for x in s.content if x.type == "resource_link"]
    assert len(uris) == len(set(uris)) == len({h["doc_id"] for h in
                                               s.structured_content["results"]})
    assert uris[0] == document_uri(ERRORS) and "KB-ERR-2847" in text
    cited = {x["document_uri"] for x in a.structured_content["citations"]}
    assert {x.uri for x in a.content if x.type == "resource_link"} == cited


async def test_resources_list_every_document_in_pages(pipeline, monkeypatch):
    monkeypatch.setattr(resources_mod, "RESOURCE_PAGE", 2)
    async with Client(build_server(pipeline)) as c:
        listed, cursor = [], None
        for _ in range(50):
            page = await c.list_resources(cursor=cursor)
            listed += page.resources
            cursor = page.next_cursor
            if not cursor:
                break
        listing = (await c.read_resource(DOCUMENTS)).contents[0].text
    uris = [str(r.uri) for r in listed]
    assert uris[0] == DOCUMENTS and len(uris) == len(set(uris))
    assert document_uri(ERRORS) in uris
    assert len(uris) - 1 == listing.count('"doc_id"')
    assert all(r.name and r.mime_type for r in listed)


async def test_completions_offer_document_and_passage_ids(pipeline):
    async with Client(build_server(pipeline)) as c:
        docs = await c.complete(ResourceTemplateReference(type="ref/resource",
                                                          uri="rag://documents/{+doc_id}"),
                                {"name": "doc_id", "value": "support/"})
        chunks = await c.complete(ResourceTemplateReference(type="ref/resource",
                                                            uri="rag://chunks/{+chunk_id}"),
                                  {"name": "chunk_id", "value": ERRORS + "#"})
        none = await c.complete(ResourceTemplateReference(type="ref/resource",
                                                          uri="rag://documents/{+doc_id}"),
                                {"name": "doc_id", "value": "zzz"})
    assert ERRORS in docs.completion.values
    assert all(v.startswith("support/") for v in docs.completion.values)
    assert docs.completion.total == len(docs.completion.values)
    assert chunks.completion.values[0] == ERRORS + "#0"
    assert none.completion.values == []


async def test_the_prompt_fits_any_corpus(pipeline):
    async with Client(build_server(pipeline)) as c:
        prompt = (await c.list_prompts()).prompts[0]
        msg = (await c.get_prompt("grounded-answer", {"question": "Q?"})).messages[0]
    assert prompt.arguments[0].description
    assert "KB-ERR" not in msg.content.text and "policy" not in msg.content.text


def test_what_a_new_generation_changed():
    assert diff({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == {"b", "c"}
    assert affected(DOCUMENTS, {"b"}) and not affected(DOCUMENTS, set())
    assert affected(document_uri("dir/b.md"), {"dir/b.md"})
    assert affected("rag://documents/dir%2Fb.md", {"dir/b.md"})
    assert affected(chunk_uri("dir/b.md#3"), {"dir/b.md"})
    assert not affected(document_uri("a.md"), {"dir/b.md"})
    assert not affected("test://elsewhere", {"dir/b.md"})


class Heard:
    """Notifications a client receives, by method."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict]] = []

    async def __call__(self, message) -> None:
        root = getattr(message, "root", message)
        method = getattr(root, "method", None)
        if method and method.startswith("notifications/"):
            params = getattr(root, "params", None)
            self.got.append((method, params.model_dump(mode="json") if params else {}))

    def methods(self) -> list[str]:
        return [m for m, _ in self.got]

    async def wait_for(self, method: str, n: int = 1) -> None:
        with anyio.fail_after(10):
            while self.methods().count(method) < n:
                await anyio.sleep(0.02)


# Clients on the 2025 protocols (most clients today) subscribe and set log levels; the SDK
# warns that the 2026-07-28 protocol drops both.
legacy = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


@legacy
async def test_subscribed_clients_hear_when_a_new_generation_changes_their_resources(live):
    pipeline, folder = live
    heard = Heard()
    async with Client(build_server(pipeline), mode="legacy", message_handler=heard) as c:
        assert c.server_capabilities.resources.subscribe
        await c.subscribe_resource(document_uri(ERRORS))
        await c.subscribe_resource(document_uri("policies/refund-policy.md"))
        await c.subscribe_resource(DOCUMENTS)
        await c.subscribe_resource(document_uri("quokkas.md"))
        await c.unsubscribe_resource(document_uri("quokkas.md"))
        await c.set_logging_level("info")
        text = (folder / "support/error-codes.md").read_text()
        (folder / "support/error-codes.md").write_text(text + "\n\nKB-ERR-9999: new.\n")
        (folder / "quokkas.md").write_text("# Quokkas\n\nQuokkas live on Rottnest Island.\n")
        await anyio.to_thread.run_sync(
            lambda: index_paths(pipeline.settings.index, [folder], KeywordEmbedder(), quiet=True))
        await heard.wait_for("notifications/resources/updated", 2)
        await heard.wait_for("notifications/message")
        r = await c.call_tool("search", {"query": "quokkas Rottnest", "k": 1})
    updated = {p["uri"] for m, p in heard.got if m == "notifications/resources/updated"}
    assert updated == {document_uri(ERRORS), DOCUMENTS}  # not the policy, not unsubscribed
    assert "notifications/resources/list_changed" in heard.methods()
    log = next(p for m, p in heard.got if m == "notifications/message")
    assert log["level"] == "info" and log["data"]["documents_changed"] == 2
    assert r.structured_content["results"][0]["doc_id"] == "quokkas.md"


@legacy
async def test_a_client_above_info_level_gets_no_log_messages(live):
    pipeline, folder = live
    heard = Heard()
    async with Client(build_server(pipeline), mode="legacy", message_handler=heard) as c:
        await c.set_logging_level("warning")
        (folder / "added.md").write_text("# Added\n\nA note about wombats.\n")
        await anyio.to_thread.run_sync(
            lambda: index_paths(pipeline.settings.index, [folder], KeywordEmbedder(), quiet=True))
        await heard.wait_for("notifications/resources/list_changed")
    assert "notifications/message" not in heard.methods()


async def test_listening_clients_get_the_changes_as_events(live):
    pipeline, folder = live
    async with Client(build_server(pipeline)) as c:
        assert c.protocol_version >= "2026"
        policy = document_uri("policies/refund-policy.md")
        async with c.listen(resources_list_changed=True, resource_subscriptions=[policy]) as sub:
            (folder / "policies/refund-policy.md").unlink()
            await anyio.to_thread.run_sync(lambda: index_paths(
                pipeline.settings.index, [folder], KeywordEmbedder(), quiet=True))
            events = []
            with anyio.fail_after(10):
                async for event in sub:
                    events.append(type(event).__name__)
                    if "ResourceUpdated" in events and "ResourcesListChanged" in events:
                        break
        assert {"ResourceUpdated", "ResourcesListChanged"} <= set(events)
        with pytest.raises(Exception, match="no document"):
            await c.read_resource(document_uri("policies/refund-policy.md"))
