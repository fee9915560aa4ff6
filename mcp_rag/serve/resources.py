"""Resources, the prompt, completions and the health check; each reads through the service.

``rag://documents`` lists the documents; ``rag://documents/{+doc_id}`` is the text that
citation spans index; ``rag://chunks/{+chunk_id}`` one passage. ``resources/list`` pages
through every document (``list_resources_page``, served by ``RagMCPServer.install``).
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.resources.templates import ResourceSecurity
from mcp.shared.exceptions import MCPError
from mcp.types import Completion, ResourceTemplateReference
from mcp_types import INVALID_PARAMS, PaginatedRequestParams, Resource
from pydantic import Field

from mcp_rag.app.schemas import (
    CHUNK_TEMPLATE,
    DOCUMENT_TEMPLATE,
    DOCUMENTS,
    ChunkView,
    document_uri,
)
from mcp_rag.serve.context import ServerContext

RESOURCE_PAGE = 100  # documents per resources/list page
# Ids are looked up in the index, never opened as paths: a doc id may look like one.
IDS_AS_DATA = ResourceSecurity(exempt_params={"doc_id", "chunk_id"})


def register_resources(server: MCPServer, app: ServerContext) -> None:
    """The resources, the grounded-answer prompt, completions and /health."""
    _documents(server, app)
    _prompt(server)
    _completions(server, app)
    _health(server, app)


async def list_resources_page(
    app: ServerContext, params: PaginatedRequestParams, fixed: list[Resource]
) -> tuple[list[Resource], str | None]:
    """One page of ``resources/list``: ``fixed`` (on the first page), then each document.

    Returns the page and the cursor of the next one (None on the last).
    """
    after = None
    if params.cursor:
        try:
            after = base64.urlsafe_b64decode(params.cursor.encode()).decode()
        except ValueError as e:
            raise MCPError(INVALID_PARAMS, "invalid cursor: pass the nextCursor of the "
                                           "previous page") from e
    try:
        docs = await anyio.to_thread.run_sync(
            lambda: app.read(lambda: app.svc.catalog.documents(after, RESOURCE_PAGE + 1)))
    except ResourceError:  # no index yet: only the fixed resources
        docs = []
    page = docs[:RESOURCE_PAGE]
    resources = [] if after else list(fixed)
    resources += [
        Resource(uri=document_uri(d["doc_id"]), name=d["doc_id"],
                 title=d["title"] or d["source"], mime_type="text/plain",
                 description=f"{d['format']} document, {d['chunks']} passages: {d['source']}")
        for d in page
    ]
    more = len(docs) > RESOURCE_PAGE
    cursor = base64.urlsafe_b64encode(page[-1]["doc_id"].encode()).decode() if more else None
    return resources, cursor


def _documents(server: MCPServer, app: ServerContext) -> None:
    """``rag://documents`` and the document and passage templates."""

    @server.resource(
        "rag://documents",
        name="documents",
        title="Indexed documents",
        description="Every indexed document: id, source, title, format, chunk count.",
        mime_type="application/json",
    )
    def list_documents() -> str:
        docs = app.read(app.svc.catalog.documents)
        for d in docs:
            d["uri"] = document_uri(d["doc_id"])
        return json.dumps(docs, ensure_ascii=False)

    @server.resource(
        DOCUMENT_TEMPLATE,
        name="document",
        title="Document text",
        description="The extracted text of a document; citation spans index into it.",
        mime_type="text/plain",
        security=IDS_AS_DATA,
    )
    def read_document(doc_id: str) -> str:
        doc = app.read(lambda: app.svc.catalog.document(doc_id))
        if doc is None:
            raise ResourceNotFoundError(f"no document {doc_id!r}; list them at {DOCUMENTS}")
        return doc.text

    @server.resource(
        CHUNK_TEMPLATE,
        name="chunk",
        title="Passage",
        description="One indexed passage with its source, section, span and page.",
        mime_type="application/json",
        security=IDS_AS_DATA,
    )
    def read_chunk(chunk_id: str) -> str:
        c = app.read(lambda: app.svc.catalog.chunk(chunk_id))
        if c is None:
            raise ResourceNotFoundError(f"no passage {chunk_id!r}")
        return ChunkView.of(c).model_dump_json()


def _prompt(server: MCPServer) -> None:
    """The ``grounded-answer`` prompt, written for any corpus."""

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


def _completions(server: MCPServer, app: ServerContext) -> None:
    """Completions for the templates' ids and the prompt's collection."""

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        """Document ids for ``{+doc_id}``; for ``{+chunk_id}``, document ids, then (after
        ``#``) that document's passages."""
        value = argument.value or ""
        svc = app.svc
        if not isinstance(ref, ResourceTemplateReference):  # a prompt's argument
            if argument.name != "collection":
                return None  # the question is free text
            names, total = await anyio.to_thread.run_sync(
                lambda: svc.catalog.complete_collections(value))
            return Completion(values=names, total=total, has_more=total > len(names))
        if ref.uri == DOCUMENT_TEMPLATE and argument.name == "doc_id":
            got = await anyio.to_thread.run_sync(lambda: svc.catalog.complete_doc_ids(value))
        elif ref.uri == CHUNK_TEMPLATE and argument.name == "chunk_id":
            got = await anyio.to_thread.run_sync(lambda: svc.catalog.complete_chunk_ids(value))
        else:
            return None
        values, total = got
        return Completion(values=values, total=total, has_more=total > len(values))


def _health(server: MCPServer, app: ServerContext) -> None:
    """``GET /health`` over HTTP (no token needed): models loaded, index generation."""

    @server.custom_route("/health", methods=["GET"])
    async def health(request: Any) -> Any:
        """HTTP health check (no token needed): models loaded, index generation, 200 or 503."""
        from starlette.responses import JSONResponse

        body = await anyio.to_thread.run_sync(app.svc.health)
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)
