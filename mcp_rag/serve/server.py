"""The MCP server: search, rerank, answer and index_status tools, document/chunk resources.

``build_server(pipeline)`` wires an already-loaded ``Pipeline`` (models load once, at
start-up) into an ``MCPServer``. Tool logic lives in plain functions on ``RagService``,
which tests call directly; the MCP layer validates parameters, runs model work on its own
bounded lane (``lanes``) and cheap work beside it, and turns every error into a tool
error the model can read: never a bare "Error executing tool", never a dead server.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.resources.templates import ResourceSecurity
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CallToolResult,
    Completion,
    ContentBlock,
    ResourceLink,
    ResourceTemplateReference,
    TextContent,
    ToolAnnotations,
)
from mcp_types import (
    INVALID_PARAMS,
    EmptyResult,
    ListResourcesResult,
    PaginatedRequestParams,
    Resource,
    SetLevelRequestParams,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcp_rag import __version__
from mcp_rag.errors import MCPRagError
from mcp_rag.index.watch import WatchSpec
from mcp_rag.ingest.safety import MAX_PATH_CHARS
from mcp_rag.retrieve.pipeline import MAX_QUERY_CHARS, Pipeline
from mcp_rag.serve.cache import QueryCache
from mcp_rag.serve.changes import Changes
from mcp_rag.serve.lanes import Lane
from mcp_rag.serve.render import (
    render_answer,
    render_chunk,
    render_collections,
    render_document,
    render_index,
    render_rerank,
    render_search,
    render_status,
)
from mcp_rag.serve.schemas import (
    CHUNK_TEMPLATE,
    DOCUMENT_TEMPLATE,
    DOCUMENTS,
    MAX_FILTER_CHARS,
    MAX_NEIGHBORS,
    MAX_PASSAGE_CHARS,
    MAX_PASSAGES,
    MAX_READ_CHARS,
    AnswerOutput,
    ChunkOutput,
    ChunkView,
    CollectionsOutput,
    DocumentOutput,
    IndexOutput,
    Passage,
    RerankOutput,
    RerankPassage,
    SearchOutput,
    StatusOutput,
    document_uri,
)
from mcp_rag.serve.service import RagService

if TYPE_CHECKING:
    from mcp_rag.index.backend import Generation

log = logging.getLogger(__name__)
T = TypeVar("T")

INSTRUCTIONS = """\
mcp-rag searches the user's own indexed documents (local, private). Use `search` to find
passages that answer a question and cite them by their source; use `answer` when you want
the passages that clear the relevance floor, ready to quote with citation markers; use
`rerank` to order passages you already have; use `get_chunk` to read around a passage and
`get_document` to read a whole document. When a result says no_answer / answered: false,
the documents do not contain the answer: say so instead of guessing.
"""
RESOURCE_PAGE = 100  # documents per resources/list page
MAX_LISTED_COLLECTIONS = 30


def instructions(svc: RagService) -> str:
    """INSTRUCTIONS, and the index's named collections with their document counts."""
    try:
        named = svc.collections().collections
    except MCPRagError:
        return INSTRUCTIONS
    if len(named) < 2:
        return INSTRUCTIONS
    shown = ", ".join(f"{c.name} ({c.documents} documents)"
                      for c in named[:MAX_LISTED_COLLECTIONS])
    more = f", and {len(named) - MAX_LISTED_COLLECTIONS} more (list_collections)" \
        if len(named) > MAX_LISTED_COLLECTIONS else ""
    return (INSTRUCTIONS + f"The documents are in named collections: {shown}{more}. To search "
            f"one, pass filters: {{collection: NAME}}.\n")


def _links(passages: Iterable[Passage | ChunkView]) -> list[ContentBlock]:
    """One resource_link per distinct document, in first-cited order."""
    seen: dict[str, ContentBlock] = {}
    for p in passages:
        if p.doc_id not in seen:
            seen[p.doc_id] = ResourceLink(
                type="resource_link", uri=p.document_uri, name=p.doc_id,
                title=p.title or p.source, mime_type="text/plain",
            )
    return list(seen.values())


def _result(model: BaseModel, text: str, links: Sequence[ContentBlock] = ()) -> CallToolResult:
    """Structured output and a self-sufficient text rendering (clients show one or the
    other), then links to the documents it cites."""
    return CallToolResult(
        content=[TextContent(type="text", text=text), *links],
        structured_content=model.model_dump(mode="json"),
    )


def tidy_schema(schema: Any) -> Any:
    """A JSON schema without pydantic's generated titles ("No Cache"), which clients show
    in place of the description. Property names are kept, even one called "title"."""
    if isinstance(schema, list):
        return [tidy_schema(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: tidy_schema(v) for name, v in value.items()}
        else:
            out[key] = tidy_schema(value)
    return out


def _read(svc: RagService, fn: Callable[[Generation], T]) -> T:
    """``fn(current index)`` for a resource read; mcp-rag errors become resource errors."""
    try:
        with svc.pipeline.current() as reader:
            return fn(reader)
    except MCPRagError as e:
        raise ResourceError(str(e)) from e


READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


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


def _short(e: ValidationError) -> str:
    """A pydantic error as one line a model can act on (no documentation URLs)."""
    return "; ".join(
        f"{'.'.join(map(str, x['loc'])) or 'value'}: {x['msg']}" for x in e.errors()[:5]
    )


class RagMCPServer(MCPServer):
    """MCPServer with short argument errors, prompts/get's missing argument as -32602,
    schemas as a client should show them, paged document resources, subscriptions and
    logging/setLevel (``install``)."""

    changes: Changes | None = None  # set by install

    async def list_tools(self) -> list[Any]:
        tools = await super().list_tools()
        for t in tools:
            t.description = inspect.cleandoc(t.description or "")
            t.input_schema = tidy_schema(t.input_schema)
            if t.output_schema is not None:
                t.output_schema = tidy_schema(t.output_schema)
        return tools

    def install(self, svc: RagService, changes: Changes) -> None:
        """Serve what MCPServer leaves out: resources/list with one resource per document
        (paged), resources/subscribe and unsubscribe, logging/setLevel; remember each
        2025-era connection so it hears of new generations (``changes``)."""
        low = self._lowlevel_server
        self.changes = changes

        async def remember(ctx: Any, call_next: Any) -> Any:
            if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
                changes.peer(ctx.session)
            return await call_next(ctx)

        async def list_resources(ctx: Any, params: PaginatedRequestParams) -> ListResourcesResult:
            after = None
            if params.cursor:
                try:
                    after = base64.urlsafe_b64decode(params.cursor.encode()).decode()
                except ValueError as e:
                    raise MCPError(INVALID_PARAMS, "invalid cursor: pass the nextCursor of "
                                                   "the previous page") from e
            try:
                docs = await anyio.to_thread.run_sync(
                    lambda: _read(svc, lambda r: r.documents(after, RESOURCE_PAGE + 1)))
            except ResourceError:  # no index yet: only the fixed resources
                docs = []
            page = docs[:RESOURCE_PAGE]
            resources = [] if after else await super(RagMCPServer, self).list_resources()
            resources += [
                Resource(uri=document_uri(d["doc_id"]), name=d["doc_id"],
                         title=d["title"] or d["source"], mime_type="text/plain",
                         description=f"{d['format']} document, {d['chunks']} passages: "
                                     f"{d['source']}")
                for d in page
            ]
            more = len(docs) > RESOURCE_PAGE
            cursor = (base64.urlsafe_b64encode(page[-1]["doc_id"].encode()).decode()
                      if more else None)
            return ListResourcesResult(resources=resources, next_cursor=cursor)

        async def subscribe(ctx: Any, params: SubscribeRequestParams) -> EmptyResult:
            changes.peer(ctx.session).subscriptions.add(str(params.uri))
            return EmptyResult()

        async def unsubscribe(ctx: Any, params: UnsubscribeRequestParams) -> EmptyResult:
            changes.peer(ctx.session).subscriptions.discard(str(params.uri))
            return EmptyResult()

        async def set_level(ctx: Any, params: SetLevelRequestParams) -> EmptyResult:
            changes.peer(ctx.session).log_level = params.level
            return EmptyResult()

        self.middleware.append(remember)
        low.add_request_handler("resources/list", PaginatedRequestParams, list_resources)
        low.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
        low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
        low.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Any = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:
            if isinstance(e.__cause__, ValidationError):  # the arguments broke the schema
                raise ToolError(f"Error executing tool {name}: invalid arguments: "
                                f"{_short(e.__cause__)}") from e.__cause__
            raise

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Any = None
    ) -> Any:
        for p in await self.list_prompts():
            if p.name == name:
                given = arguments or {}
                missing = [a.name for a in p.arguments or []
                           if a.required and not str(given.get(a.name) or "").strip()]
                if missing:
                    raise MCPError(INVALID_PARAMS, f"prompt {name!r} needs the argument(s) "
                                                   f"{', '.join(missing)}")
        return await super().get_prompt(name, arguments, context)


def build_server(
    pipeline: Pipeline, allow_roots: Sequence[Path] = (), cache: QueryCache | None = None,
    watch: WatchSpec | None = None,
) -> MCPServer:
    """An MCPServer over ``pipeline`` (loaded by the caller, once); with ``watch``, it also
    keeps the index up to date with those paths while it runs."""
    svc = RagService(pipeline, allow_roots, cache)
    s = pipeline.settings
    model_lane = Lane("model", s.model_workers, s.max_queued)
    bus = InMemorySubscriptionBus()
    changes = Changes(pipeline, bus)

    async def keep_fresh(spec: WatchSpec) -> None:
        """Re-index ``spec``'s paths on every change (in a thread), telling clients at once."""
        stop = threading.Event()

        def on_run(report: Any) -> None:
            if report.changed:
                with contextlib.suppress(Exception):  # the server is shutting down
                    anyio.from_thread.run(changes.check)

        try:
            await anyio.to_thread.run_sync(
                lambda: pipeline.indexer().watch(spec, stop=stop, on_run=on_run),
                abandon_on_cancel=True,
            )
        finally:
            stop.set()  # the thread ends within a second

    @asynccontextmanager
    async def watching(_: MCPServer) -> AsyncIterator[dict[str, Any]]:
        """While the server runs, look for new index generations (``changes``) and, with
        ``watch``, keep the index up to date with its paths."""
        async with anyio.create_task_group() as tg:
            await changes.check()  # the baseline, before any client can subscribe
            tg.start_soon(changes.watch, s.change_poll)
            if watch is not None:
                tg.start_soon(keep_fresh, watch)
            try:
                yield {"changes": changes}
            finally:
                tg.cancel_scope.cancel()

    server = RagMCPServer(
        name="mcp-rag",
        title="mcp-rag: your documents",
        version=__version__,
        instructions=instructions(svc),
        log_level="WARNING",
        subscriptions=bus,
        lifespan=watching,
    )
    server.install(svc, changes)

    async def run(fn: Callable[[], Any], lane: Lane | None = None) -> Any:
        """``fn()`` in a thread (on ``lane`` for model work); every error a readable one."""
        try:
            if lane is None:
                return await anyio.to_thread.run_sync(fn)
            return await lane.run(fn)
        except MCPRagError as e:
            raise ToolError(str(e)) from e
        except ValidationError as e:
            raise ToolError(f"invalid arguments: {_short(e)}") from e
        except Exception as e:  # a bug or an environment failure: say it, keep serving
            log.exception("tool call failed")
            raise ToolError(
                f"internal error ({type(e).__name__}: {e}); the server keeps running. "
                f"Retry, or report it with the server's log."
            ) from e

    async def cached_or(peek: Callable[[], Any], compute: Callable[[], Any],
                        no_cache: bool) -> Any:
        """A cache hit at once (cheap lane); otherwise ``compute`` on the model lane.

        ``compute`` skips the cache lookup (``no_cache=True``: the peek made it already, or
        the caller asked to recompute) and stores what it computes.
        """
        hit = None if no_cache else await run(peek)
        return hit if hit is not None else await run(compute, model_lane)

    @server.tool(title="Search your documents", annotations=READ_ONLY)
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS,
                                    description="The question or keywords, in plain words.")],
        k: Annotated[int, Field(ge=1, le=50, strict=True,
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
        cite. If `no_answer` is true, the documents do not contain the answer: say so.
        """
        f = (filters.model_dump(exclude_none=True) or None) if filters else None
        out = await cached_or(lambda: svc.cached_search(query, k, f, rerank),
                              lambda: svc.search(query, k, f, rerank, no_cache=True), no_cache)
        return _result(out, render_search(out), _links(out.results))

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
        out = await run(lambda: svc.rerank(query, passages, top_k), model_lane)
        return _result(out, render_rerank(out))

    @server.tool(title="Answer from your documents", annotations=READ_ONLY)
    async def answer(
        question: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS,
                                       description="The question, in plain words.")],
        k: Annotated[int, Field(ge=1, le=20, strict=True,
                                description="Top passages to answer from.")] = s.answer_passages,
        max_sentences: Annotated[int, Field(
            ge=1, le=20, strict=True,
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
        and never fill the gap from memory. `sources` are the passages drawn from.
        """
        f = (filters.model_dump(exclude_none=True) or None) if filters else None
        out = await cached_or(lambda: svc.cached_answer(question, k, max_sentences, f),
                              lambda: svc.answer(question, k, max_sentences, no_cache=True,
                                                 filters=f),
                              no_cache)
        return _result(out, render_answer(out), _links(out.citations or out.sources))

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
        out = await run(lambda: svc.get_document(doc_id, start, end))
        return _result(out, render_document(out))

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
        out = await run(lambda: svc.get_chunk(chunk_id, neighbors))
        return _result(out, render_chunk(out), _links([out.chunk]))

    @server.tool(title="List collections", annotations=READ_ONLY)
    async def list_collections() -> Annotated[CallToolResult, CollectionsOutput]:
        """The named collections of documents, with their document and passage counts.

        Search or answer within one by passing filters: {collection: NAME} to search.
        """
        out = await run(svc.collections)
        return _result(out, render_collections(out))

    @server.tool(title="Index status", annotations=READ_ONLY)
    async def index_status() -> Annotated[CallToolResult, StatusOutput]:
        """What is indexed: documents, chunks, models, index generation and the last run."""
        out = await run(svc.status)
        return _result(out, render_status(out))

    if svc.allow_roots:

        @server.tool(
            title="Index files",
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                open_world_hint=False,
            ),
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

            out = await run(lambda: svc.index(paths, progress, collection), model_lane)
            return _result(out, render_index(out))

        @server.tool(
            title="Sync the index with its files",
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                open_world_hint=False,
            ),
        )
        async def sync(ctx: Context) -> Annotated[CallToolResult, IndexOutput]:
            """Bring the index up to date with the files it was built from.

            Re-reads the indexed folders that lie under the allowed roots: new and changed
            files are indexed, deleted ones removed, unchanged ones skipped. Reports
            progress while it embeds.
            """

            def progress(done: int, total: int) -> None:
                anyio.from_thread.run(ctx.report_progress, done, total, "embedding chunks")

            out = await run(lambda: svc.sync(progress), model_lane)
            return _result(out, render_index(out))

    @server.custom_route("/health", methods=["GET"])
    async def health(request: Any) -> Any:
        """HTTP health check (no token needed): models loaded, index generation, 200 or 503."""
        from starlette.responses import JSONResponse

        body = await anyio.to_thread.run_sync(svc.health)
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @server.resource(
        "rag://documents",
        name="documents",
        title="Indexed documents",
        description="Every indexed document: id, source, title, format, chunk count.",
        mime_type="application/json",
    )
    def list_documents() -> str:
        docs = _read(svc, lambda r: r.documents())
        for d in docs:
            d["uri"] = document_uri(d["doc_id"])
        return json.dumps(docs, ensure_ascii=False)

    # Ids are looked up in the index, never opened as paths: a doc id may look like one.
    ids_as_data = ResourceSecurity(exempt_params={"doc_id", "chunk_id"})

    @server.resource(
        DOCUMENT_TEMPLATE,
        name="document",
        title="Document text",
        description="The extracted text of a document; citation spans index into it.",
        mime_type="text/plain",
        security=ids_as_data,
    )
    def read_document(doc_id: str) -> str:
        doc = _read(svc, lambda r: r.document(doc_id))
        if doc is None:
            raise ResourceNotFoundError(f"no document {doc_id!r}; list them at {DOCUMENTS}")
        return doc.text

    @server.resource(
        CHUNK_TEMPLATE,
        name="chunk",
        title="Passage",
        description="One indexed passage with its source, section, span and page.",
        mime_type="application/json",
        security=ids_as_data,
    )
    def read_chunk(chunk_id: str) -> str:
        c = _read(svc, lambda r: r.chunk_by_id(chunk_id))
        if c is None:
            raise ResourceNotFoundError(f"no passage {chunk_id!r}")
        return ChunkView.of(c).model_dump_json()

    @server.prompt(
        name="grounded-answer",
        title="Answer from my documents",
        description="Answer a question only from the indexed documents, with citations.",
    )
    def grounded_answer(
        question: Annotated[str, Field(description="The question to answer from the documents.")],
        collection: Annotated[str | None, Field(
            description="Optional: answer only from this named collection.")] = None,
    ) -> str:
        within = (f" Search only the collection {collection!r}: pass filters: {{collection: "
                  f"{collection!r}}} to `search`." if collection else "")
        return (
            "Answer the question below using only what the `search` tool of mcp-rag returns "
            "from the user's documents (call it first; call it again with other words if the "
            f"results miss; use `get_chunk` to read around a passage that is cut off).{within}\n"
            "- Cite every claim with the passage's source (and section or page when it has "
            "one), and quote names, numbers and codes exactly as written.\n"
            "- Keep the conditions and exceptions the passages state; where passages "
            "disagree, say so and cite both.\n"
            "- If `search` returns no_answer: true, or the passages do not answer it, say "
            "plainly that the documents do not contain the answer. Do not fill the gap from "
            "memory.\n\n"
            f"Question: {question}"
        )

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        """Document ids for ``{+doc_id}``; for ``{+chunk_id}``, document ids, then (after
        ``#``) that document's passages."""
        value = argument.value or ""
        if not isinstance(ref, ResourceTemplateReference):  # a prompt's argument
            if argument.name != "collection":
                return None  # the question is free text
            names, total = await anyio.to_thread.run_sync(
                lambda: svc.complete_collections(value))
            return Completion(values=names, total=total, has_more=total > len(names))
        if ref.uri == DOCUMENT_TEMPLATE and argument.name == "doc_id":
            got = await anyio.to_thread.run_sync(lambda: svc.complete_doc_ids(value))
        elif ref.uri == CHUNK_TEMPLATE and argument.name == "chunk_id":
            got = await anyio.to_thread.run_sync(lambda: svc.complete_chunk_ids(value))
        else:
            return None
        values, total = got
        return Completion(values=values, total=total, has_more=total > len(values))

    return server
