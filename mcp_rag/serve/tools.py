"""The tools: search, answer, rerank, the read tools and (with allowed roots) indexing.

Each is registered by its own function against a ``ServerContext``; the logic lives in
``RagService``, the text each returns in ``render``. Model work runs on the model lane,
cache hits and reads beside it.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from mcp_rag.app.requests import AnswerRequest, SearchRequest
from mcp_rag.app.schemas import (
    MAX_FILTER_CHARS,
    MAX_NEIGHBORS,
    MAX_PASSAGE_CHARS,
    MAX_PASSAGES,
    MAX_READ_CHARS,
    AddedOutput,
    AnswerOutput,
    ChunkOutput,
    CollectionsOutput,
    DocumentOutput,
    IndexOutput,
    RerankOutput,
    RerankPassage,
    SearchOutput,
    StatusOutput,
)
from mcp_rag.ingest.safety import MAX_PATH_CHARS
from mcp_rag.limits import (
    ANSWER_PASSAGES,
    ANSWER_SENTENCES,
    MAX_ADDED_CHARS,
    MAX_QUERY_CHARS,
    MAX_SOURCE_CHARS,
    MAX_TITLE_CHARS,
    K,
)
from mcp_rag.serve.context import ServerContext, links, result
from mcp_rag.serve.render import (
    render_added,
    render_answer,
    render_chunk,
    render_collections,
    render_document,
    render_index,
    render_rerank,
    render_search,
    render_status,
)

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
# Adds or updates, never deletes what the caller did not name; the same call twice is one.
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                         open_world_hint=False)


class SearchFilters(BaseModel):
    """Which documents a search may return (all given conditions must hold)."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(
        None, min_length=1, max_length=MAX_FILTER_CHARS,
        description="A glob on the file path, e.g. '*/policies/*.md'.",
    )
    doc_id_prefix: str | None = Field(
        None, min_length=1, max_length=MAX_FILTER_CHARS,
        description="Documents whose id starts with this, e.g. 'policies/'.",
    )
    collection: str | None = Field(
        None, min_length=1, max_length=MAX_FILTER_CHARS,
        description="Only this named collection (list_collections lists them).",
    )


def register_tools(server: MCPServer, app: ServerContext) -> None:
    """Every tool of the server; indexing ones only when the server has allowed roots."""
    _search(server, app)
    _rerank(server, app)
    _answer(server, app)
    _read_tools(server, app)
    if app.svc.allow_roots:
        _index_tools(server, app)
    if app.svc.added is not None:
        _add_tools(server, app)


def _search(server: MCPServer, app: ServerContext) -> None:
    """The ``search`` tool."""

    @server.tool(title="Search your documents", annotations=READ_ONLY)
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS,
                                    description="The question or keywords, in plain words.")],
        k: Annotated[int, Field(ge=K.lo, le=K.hi, strict=True,
                                description="How many passages to return.")] = 5,
        filters: Annotated[SearchFilters | None, Field(
            description="Optional: only documents matching these.")] = None,
        rerank: Annotated[bool, Field(strict=True,
                                      description="Rerank with the cross-encoder.")] = True,
        no_cache: Annotated[bool, Field(strict=True,
                                        description="Recompute, skipping the cache.")] = False,
    ) -> Annotated[CallToolResult, SearchOutput]:
        """Search the user's indexed documents (hybrid keyword + semantic, then reranked).

        Use this to find passages that answer a question or mention exact terms, names or
        codes. Each result has its source, section, character span and a rag:// URI to
        cite. Results come page by page: each document's best passage first, then further
        passages of documents already listed and near copies of passages listed. If
        `no_answer` is true, the documents do not contain the answer: say so.
        """
        f = (filters.model_dump(exclude_none=True) or None) if filters else None
        req = SearchRequest(query, k, f, rerank)
        out = await app.cached_or(lambda: app.svc.lookup(req),
                                  lambda: app.svc.run(req, no_cache=True), no_cache)
        return result(out, render_search(out), links(out.results))


def _rerank(server: MCPServer, app: ServerContext) -> None:
    """The ``rerank`` tool."""

    @server.tool(title="Rerank passages", annotations=READ_ONLY)
    async def rerank(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS,
                                    description="What the passages should answer.")],
        passages: Annotated[
            list[Annotated[str, Field(min_length=1, max_length=MAX_PASSAGE_CHARS)] | RerankPassage],
            Field(min_length=1, max_length=MAX_PASSAGES,
                  description="Passages to score: strings, or objects {id, text}.")],
        top_k: Annotated[int | None, Field(
            ge=1, le=MAX_PASSAGES, strict=True,
            description="Return only the best top_k (default: all, best first).")] = None,
    ) -> Annotated[CallToolResult, RerankOutput]:
        """Score passages you already have against a query with the cross-encoder.

        For agents that retrieve elsewhere (web, another tool) and want the most relevant
        first. Returns each passage's relevance (0..1) and its position in your list.
        """
        out = await app.run(lambda: app.svc.rerank(query, passages, top_k), app.model_lane)
        return result(out, render_rerank(out))


def _answer(server: MCPServer, app: ServerContext) -> None:
    """The ``answer`` tool; its defaults are the served settings."""
    s = app.svc.pipeline.settings

    @server.tool(title="Answer from your documents", annotations=READ_ONLY)
    async def answer(
        question: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS,
                                       description="The question, in plain words.")],
        k: Annotated[int, Field(ge=ANSWER_PASSAGES.lo, le=ANSWER_PASSAGES.hi, strict=True,
                                description="Top passages to answer from.")] = s.answer_passages,
        max_sentences: Annotated[int, Field(
            ge=ANSWER_SENTENCES.lo, le=ANSWER_SENTENCES.hi, strict=True,
            description="Most sentences in an extractive answer.")] = s.answer_sentences,
        filters: Annotated[SearchFilters | None, Field(
            description="Optional: answer only from documents matching these.")] = None,
        no_cache: Annotated[bool, Field(strict=True,
                                        description="Recompute, skipping the cache.")] = False,
    ) -> Annotated[CallToolResult, AnswerOutput]:
        """Answer a question from the user's documents, with numbered citations.

        The answer quotes the sentences of the documents that answer it (or, when the
        server has a language model configured, is written from them), each followed by
        [n]; citations list the source, section, page, character span and exact quote of
        every [n]. answered=false means the documents do not contain the answer: say so,
        and never fill the gap from memory. Under a confidence of 0.5 the quoted passages
        may share only words with the question: check them before relying on them. `sources`
        are the passages drawn from.
        """
        f = (filters.model_dump(exclude_none=True) or None) if filters else None
        req = AnswerRequest(question, k, max_sentences, f)
        out = await app.cached_or(lambda: app.svc.lookup(req),
                                  lambda: app.svc.run(req, no_cache=True), no_cache)
        return result(out, render_answer(out), links(out.citations or out.sources))


def _read_tools(server: MCPServer, app: ServerContext) -> None:
    """``get_document``, ``get_chunk``, ``list_collections`` and ``index_status``."""

    @server.tool(title="Read a document", annotations=READ_ONLY)
    async def get_document(
        doc_id: Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS,
                                     description="The document's id (doc_id in results).")],
        start: Annotated[int, Field(ge=0, strict=True,
                                    description="First character to return.")] = 0,
        end: Annotated[int | None, Field(
            ge=0, strict=True,
            description=f"Character to stop before (default: the end; at most "
                        f"{MAX_READ_CHARS:,} characters come back per call).")] = None,
    ) -> Annotated[CallToolResult, DocumentOutput]:
        """Read a document's text, or the part of it from start to end.

        Citation spans index this text. A long document comes in pages: when next_start
        is set, call again with start=next_start for the rest.
        """
        out = await app.run(lambda: app.svc.catalog.get_document(doc_id, start, end))
        return result(out, render_document(out))

    @server.tool(title="Read a passage and its neighbours", annotations=READ_ONLY)
    async def get_chunk(
        chunk_id: Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS + 12,
                                       description="The passage's id (chunk_id in results).")],
        neighbors: Annotated[int, Field(
            ge=0, le=MAX_NEIGHBORS, strict=True,
            description="How many passages before and after it to include.")] = 1,
    ) -> Annotated[CallToolResult, ChunkOutput]:
        """Read one passage with the passages around it in its document.

        Use it when a search result is cut off mid-thought; `context` reads straight
        through from the first passage shown to the last.
        """
        out = await app.run(lambda: app.svc.catalog.get_chunk(chunk_id, neighbors))
        return result(out, render_chunk(out), links([out.chunk]))

    @server.tool(title="List collections", annotations=READ_ONLY)
    async def list_collections() -> Annotated[CallToolResult, CollectionsOutput]:
        """The named collections of documents, with their document and passage counts.

        Search or answer within one by passing filters: {collection: NAME} to search.
        """
        out = await app.run(app.svc.catalog.collections)
        return result(out, render_collections(out))

    @server.tool(title="Index status", annotations=READ_ONLY)
    async def index_status() -> Annotated[CallToolResult, StatusOutput]:
        """What is indexed: documents, chunks, models, index generation and the last run."""
        out = await app.run(app.svc.status)
        return result(out, render_status(out))


def _index_tools(server: MCPServer, app: ServerContext) -> None:
    """``index_paths`` and ``sync``: only with allowed roots."""

    @server.tool(
        title="Index files",
        annotations=WRITES,
    )
    async def index_paths(
        paths: Annotated[
            list[Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS)]],
            Field(min_length=1, max_length=50,
                  description="Files and folders to index, under the allowed roots."),
        ],
        ctx: Context,
        collection: Annotated[str | None, Field(
            min_length=1, max_length=MAX_FILTER_CHARS,
            description="Put these documents in this named collection (default: keep "
                        "each one's; new ones go to 'default').")] = None,
    ) -> Annotated[CallToolResult, IndexOutput]:
        """Add or update files and folders in the index (only under the allowed roots).

        Re-indexing is incremental: unchanged files are skipped.
        """

        def progress(done: int, total: int) -> None:
            anyio.from_thread.run(ctx.report_progress, done, total, "embedding chunks")

        out = await app.run(lambda: app.svc.index(paths, progress, collection), app.model_lane)
        return result(out, render_index(out))

    @server.tool(
        title="Sync the index with its files",
        annotations=WRITES,
    )
    async def sync(ctx: Context) -> Annotated[CallToolResult, IndexOutput]:
        """Bring the index up to date with the files it was built from.

        Re-reads the indexed folders that lie under the allowed roots: new and changed
        files are indexed, deleted ones removed, unchanged ones skipped. Reports
        progress while it embeds.
        """

        def progress(done: int, total: int) -> None:
            anyio.from_thread.run(ctx.report_progress, done, total, "embedding chunks")

        out = await app.run(lambda: app.svc.sync(progress), app.model_lane)
        return result(out, render_index(out))


def _add_tools(server: MCPServer, app: ServerContext) -> None:
    """``add_document`` and ``remove_document``: with --allow-add (or allowed roots)."""

    @server.tool(
        title="Add a document",
        annotations=WRITES,
    )
    async def add_document(
        title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE_CHARS,
                                    description="The document's title; it names it: adding "
                                                "again with the same title replaces it.")],
        text: Annotated[str, Field(min_length=1, max_length=MAX_ADDED_CHARS,
                                   description="The text to keep, in plain words or Markdown.")],
        source: Annotated[str | None, Field(
            min_length=1, max_length=MAX_SOURCE_CHARS,
            description="Where the text came from (a URL, a conversation, a person); kept as "
                        "its last line.")] = None,
        collection: Annotated[str | None, Field(
            min_length=1, max_length=MAX_FILTER_CHARS,
            description="Put it in this named collection (default: 'default').")] = None,
    ) -> Annotated[CallToolResult, AddedOutput]:
        """Save text as a document of the index, searchable and citable like the user's files.

        Use it to keep what you learned or were told that the user wants to find again (a
        decision, a summary, a fact with its source). Its id is 'added/' and the title
        slugged; remove_document removes it.
        """
        out = await app.run(lambda: app.svc.add_document(title, text, source, collection),
                            app.model_lane)
        return result(out, render_added(out, "added"))

    @server.tool(
        title="Remove an added document",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=False,
            open_world_hint=False,
        ),
    )
    async def remove_document(
        doc_id: Annotated[str, Field(min_length=1, max_length=MAX_TITLE_CHARS + 10,
                                     description="The id add_document returned, "
                                                 "'added/...'.")],
    ) -> Annotated[CallToolResult, AddedOutput]:
        """Remove a document that add_document added (the user's own files are never
        removed through this tool)."""
        out = await app.run(lambda: app.svc.remove_document(doc_id), app.model_lane)
        return result(out, render_added(out, "removed"))
