"""The MCP server: ``build_server(pipeline)`` wires an already-loaded ``Pipeline`` (models
load once, at start-up) into an ``MCPServer``.

The parts: ``tools`` (the tools), ``resources`` (resources, prompt, completions, health),
``lifespan`` (new generations and ``--watch`` while it serves), registered against one
``ServerContext`` (service, model lane, change tracker). Tool logic lives in plain methods
of ``RagService``, which tests call directly; every error becomes a tool error the model
can read: never a bare "Error executing tool", never a dead server.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    EmptyResult,
    ListResourcesResult,
    PaginatedRequestParams,
    SetLevelRequestParams,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from mcp_rag import __version__
from mcp_rag.app.cache import QueryCache
from mcp_rag.app.service import RagService
from mcp_rag.errors import MCPRagError
from mcp_rag.index.watch import WatchSpec
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.changes import Changes
from mcp_rag.serve.context import ServerContext, short
from mcp_rag.serve.lanes import Lane
from mcp_rag.serve.lifespan import lifespan
from mcp_rag.serve.resources import list_resources_page, register_resources
from mcp_rag.serve.tools import register_tools

INSTRUCTIONS = """\
mcp-rag searches the user's own indexed documents (local, private). Use `search` to find
passages that answer a question and cite them by their source; use `answer` when you want
the passages that clear the relevance floor, ready to quote with citation markers; use
`rerank` to order passages you already have; use `get_chunk` to read around a passage and
`get_document` to read a whole document. When a result says no_answer / answered: false,
the documents do not contain the answer: say so instead of guessing.
"""
MAX_LISTED_COLLECTIONS = 30


def instructions(svc: RagService) -> str:
    """INSTRUCTIONS, and the index's named collections with their document counts."""
    try:
        named = svc.catalog.collections().collections
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

    def install(self, app: ServerContext) -> None:
        """Serve what MCPServer leaves out: resources/list with one resource per document
        (paged), resources/subscribe and unsubscribe, logging/setLevel; remember each
        2025-era connection so it hears of new generations (``changes``).

        The SDK (2.3) offers no public way to serve these with their capabilities
        advertised, so this is the one place that uses its low-level server.
        """
        low = self._lowlevel_server
        changes = self.changes = app.changes

        async def remember(ctx: Any, call_next: Any) -> Any:
            if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
                changes.peer(ctx.session)
            return await call_next(ctx)

        async def list_resources(ctx: Any, params: PaginatedRequestParams) -> ListResourcesResult:
            fixed = await super(RagMCPServer, self).list_resources()
            page, cursor = await list_resources_page(app, params, fixed)
            return ListResourcesResult(resources=page, next_cursor=cursor)

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
                                f"{short(e.__cause__)}") from e.__cause__
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
    watch: WatchSpec | None = None, fetch: Sequence[str] | None = None,
) -> MCPServer:
    """An MCPServer over ``pipeline`` (loaded by the caller, once); with ``watch``, it also
    keeps the index up to date with those paths while it runs. ``fetch``: the pack models
    to download first, while it serves (then loaded, then the folders indexed)."""
    s = pipeline.settings
    svc = RagService(pipeline, allow_roots, cache, allow_add=s.allow_add)
    bus = InMemorySubscriptionBus()
    app = ServerContext(svc, Lane("model", s.model_workers, s.max_queued), Changes(pipeline, bus),
                        watching=[str(p) for p in watch.paths] if watch is not None else (),
                        fetching=list(fetch or ()))
    server = RagMCPServer(
        name="mcp-rag",
        title="mcp-rag: your documents",
        version=__version__,
        instructions=instructions(svc),
        log_level="WARNING",
        subscriptions=bus,
        lifespan=lifespan(app, watch),
    )
    server.install(app)
    register_tools(server, app)
    register_resources(server, app)
    return server
