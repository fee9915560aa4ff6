"""The MCP server: search, rerank, answer and index_status tools, document/chunk resources.

``build_server(pipeline)`` wires an already-loaded ``Pipeline`` (models load once, at
start-up) into an ``MCPServer``. Tool logic lives in plain functions on ``RagService``,
which tests call directly; the MCP layer validates parameters, runs model work on its own
bounded lane (``lanes``) and cheap work beside it, and turns every error into a tool
error the model can read: never a bare "Error executing tool", never a dead server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from mcp_types import INVALID_PARAMS
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcp_rag import __version__
from mcp_rag.errors import MCPRagError
from mcp_rag.index.store import IndexReader
from mcp_rag.ingest.safety import MAX_PATH_CHARS
from mcp_rag.retrieve.pipeline import MAX_QUERY_CHARS, Pipeline
from mcp_rag.serve.cache import QueryCache
from mcp_rag.serve.lanes import Lane
from mcp_rag.serve.render import (
    render_answer,
    render_index,
    render_rerank,
    render_search,
    render_status,
)
from mcp_rag.serve.schemas import (
    MAX_FILTER_CHARS,
    MAX_PASSAGE_CHARS,
    MAX_PASSAGES,
    AnswerOutput,
    IndexOutput,
    RerankOutput,
    RerankPassage,
    SearchOutput,
    StatusOutput,
    document_uri,
)
from mcp_rag.serve.service import RagService

log = logging.getLogger(__name__)
T = TypeVar("T")

INSTRUCTIONS = """\
mcp-rag searches the user's own indexed documents (local, private). Use `search` to find
passages that answer a question and cite them by their source; use `answer` when you want
the passages that clear the relevance floor, ready to quote with citation markers; use
`rerank` to order passages you already have. When a result says no_answer / answered:
false, the documents do not contain the answer: say so instead of guessing.
"""


def _result(model: BaseModel, text: str) -> CallToolResult:
    """Structured output and a self-sufficient text rendering (clients show one or the other)."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json"),
    )


def _read(svc: RagService, fn: Callable[[IndexReader], T]) -> T:
    """``fn(current index)`` for a resource read; mcp-rag errors become resource errors."""
    try:
        svc.pipeline.refresh()
        with svc.pipeline.reader.in_use() as reader:
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


def _short(e: ValidationError) -> str:
    """A pydantic error as one line a model can act on (no documentation URLs)."""
    return "; ".join(
        f"{'.'.join(map(str, x['loc'])) or 'value'}: {x['msg']}" for x in e.errors()[:5]
    )


class RagMCPServer(MCPServer):
    """MCPServer with short argument errors and prompts/get's missing argument as -32602."""

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
    pipeline: Pipeline, allow_roots: Sequence[Path] = (), cache: QueryCache | None = None
) -> MCPServer:
    """An MCPServer over ``pipeline`` (loaded by the caller, once)."""
    svc = RagService(pipeline, allow_roots, cache)
    s = pipeline.settings
    model_lane = Lane("model", s.model_workers, s.max_queued)
    server = RagMCPServer(
        name="mcp-rag",
        title="mcp-rag: your documents",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
    )

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
        return _result(out, render_search(out))

    @server.tool(title="Rerank passages", annotations=READ_ONLY)
    async def rerank(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)],
        passages: Annotated[
            list[Annotated[str, Field(min_length=1, max_length=MAX_PASSAGE_CHARS)] | RerankPassage],
            Field(min_length=1, max_length=MAX_PASSAGES,
                  description="Passages to score: strings, or objects {id, text}.")],
        top_k: Annotated[int | None, Field(ge=1, le=MAX_PASSAGES, strict=True)] = None,
    ) -> Annotated[CallToolResult, RerankOutput]:
        """Score passages you already have against a query with the cross-encoder.

        For agents that retrieve elsewhere (web, another tool) and want the most relevant
        first. Returns each passage's relevance (0..1) and its position in your list.
        """
        out = await run(lambda: svc.rerank(query, passages, top_k), model_lane)
        return _result(out, render_rerank(out))

    @server.tool(title="Answer from your documents", annotations=READ_ONLY)
    async def answer(
        question: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)],
        k: Annotated[int | None, Field(
            ge=1, le=20, strict=True,
            description="Top passages to answer from (default 3).")] = None,
        max_sentences: Annotated[int | None, Field(
            ge=1, le=20, strict=True,
            description="Most sentences in an extractive answer (default 3).")] = None,
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
        out = await cached_or(lambda: svc.cached_answer(question, k, max_sentences),
                              lambda: svc.answer(question, k, max_sentences, no_cache=True),
                              no_cache)
        return _result(out, render_answer(out))

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
        ) -> Annotated[CallToolResult, IndexOutput]:
            """Add or update files and folders in the index (only under the allowed roots).

            Re-indexing is incremental: unchanged files are skipped.
            """

            def progress(done: int, total: int) -> None:
                anyio.from_thread.run(ctx.report_progress, done, total, "embedding chunks")

            out = await run(lambda: svc.index(paths, progress), model_lane)
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

    @server.resource(
        "rag://documents/{doc_id}",
        name="document",
        title="Document text",
        description="The extracted text of a document; citation spans index into it.",
        mime_type="text/plain",
    )
    def read_document(doc_id: str) -> str:
        doc = _read(svc, lambda r: r.document(doc_id))
        if doc is None:
            raise ResourceNotFoundError(f"no document {doc_id!r}; list them at rag://documents")
        return doc.text

    @server.resource(
        "rag://chunks/{chunk_id}",
        name="chunk",
        title="Passage",
        description="One indexed passage with its source, section, span and page.",
        mime_type="application/json",
    )
    def read_chunk(chunk_id: str) -> str:
        c = _read(svc, lambda r: r.chunk_by_id(chunk_id))
        if c is None:
            raise ResourceNotFoundError(f"no passage {chunk_id!r}")
        return json.dumps(
            {
                "doc_id": c.doc_id, "chunk_id": c.chunk_id, "source": c.source,
                "title": c.title, "section": c.section, "span": [c.start, c.end],
                "page": c.page, "text": c.text, "document_uri": document_uri(c.doc_id),
            },
            ensure_ascii=False,
        )

    @server.prompt(
        name="grounded-answer",
        title="Answer from my documents",
        description="Answer a question only from the indexed documents, with citations.",
    )
    def grounded_answer(question: str) -> str:
        return (
            "Answer the question below using only passages returned by the `search` tool of "
            "mcp-rag (call it first; call it again with other words if the first results miss).\n"
            "- Cite every claim with the passage's source and section, e.g. "
            "(support/error-codes.md § KB-ERR-2847), and quote exact codes and numbers.\n"
            "- Keep conditions and exceptions that the passages state; prefer the current "
            "policy over a superseded one.\n"
            "- If `search` returns no_answer: true, or the passages do not answer it, say "
            "plainly that the documents do not contain the answer. Do not guess.\n\n"
            f"Question: {question}"
        )

    return server
