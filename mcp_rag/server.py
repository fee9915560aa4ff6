"""The MCP server: search, rerank, answer and index_status tools, document/chunk resources.

``build_server(pipeline)`` wires an already-loaded ``Pipeline`` (models load once, at
start-up) into an ``MCPServer``. Tool logic lives in plain functions on ``RagService``,
which tests call directly; the MCP layer validates parameters, runs the CPU work off the
event loop and turns mcp-rag errors into tool errors the model can read.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from mcp_rag import __version__
from mcp_rag.errors import MCPRagError, QueryError
from mcp_rag.pipeline import MAX_QUERY_CHARS, Pipeline, SearchResult, validate_query
from mcp_rag.rerank import rank
from mcp_rag.types import Hit

log = logging.getLogger(__name__)

MAX_PASSAGES = 100
MAX_PASSAGE_CHARS = 20_000

INSTRUCTIONS = """\
mcp-rag searches the user's own indexed documents (local, private). Use `search` to find
passages that answer a question and cite them by their source; use `answer` when you want
the passages that clear the relevance floor, ready to quote with citation markers; use
`rerank` to order passages you already have. When a result says no_answer / answered:
false, the documents do not contain the answer: say so instead of guessing.
"""


def chunk_uri(chunk_id: str) -> str:
    return "rag://chunks/" + quote(chunk_id, safe="")


def document_uri(doc_id: str) -> str:
    return "rag://documents/" + quote(doc_id, safe="")


class Passage(BaseModel):
    """A retrieved chunk, with everything needed to cite it."""

    doc_id: str
    chunk_id: str
    uri: str = Field(description="rag://chunks/... resource with this passage.")
    document_uri: str = Field(description="rag://documents/... resource with the whole text.")
    source: str
    title: str
    section: str
    span: list[int] = Field(description="[start, end) character offsets in the document text.")
    page: int | None
    text: str
    score: float = Field(description="Final ranking score (higher is better).")
    rerank_score: float | None = Field(description="Cross-encoder logit.")
    relevance: float | None = Field(description="Calibrated 0..1 relevance (sigmoid of logit).")
    first_stage_rank: int | None
    bm25_rank: int | None
    dense_rank: int | None

    @classmethod
    def of(cls, h: Hit) -> Passage:
        c = h.chunk
        return cls(
            doc_id=c.doc_id,
            chunk_id=c.chunk_id,
            uri=chunk_uri(c.chunk_id),
            document_uri=document_uri(c.doc_id),
            source=c.source,
            title=c.title,
            section=c.section,
            span=[c.start, c.end],
            page=c.page,
            text=c.text,
            score=h.score,
            rerank_score=h.rerank_score,
            relevance=h.relevance,
            first_stage_rank=h.first_stage_rank,
            bm25_rank=h.bm25_rank,
            dense_rank=h.dense_rank,
        )


class SearchOutput(BaseModel):
    query: str
    results: list[Passage]
    no_answer: bool = Field(description="True when no passage cleared the relevance floor.")
    best_score: float | None = Field(description="Best cross-encoder logit seen.")
    reranked: bool
    rerank_reason: str | None
    cached: bool = False
    generation: int = Field(description="Index generation that served the query.")
    timings_ms: dict[str, float]


class RerankItem(BaseModel):
    id: str
    index: int = Field(description="Position of the passage in the request.")
    score: float = Field(description="Cross-encoder logit.")
    relevance: float = Field(description="Calibrated 0..1 relevance.")
    text: str


class RerankOutput(BaseModel):
    query: str
    reranker: str
    results: list[RerankItem]
    timings_ms: dict[str, float]


class AnswerOutput(BaseModel):
    question: str
    answered: bool
    answer: str = Field(description="The passages that answer, each followed by [n].")
    citations: list[Passage] = Field(description="citations[n-1] is what [n] points to.")
    confidence: float | None = Field(description="Top relevance (0..1).")
    mode: Literal["passages"] = "passages"
    cached: bool = False
    timings_ms: dict[str, float]


class StatusOutput(BaseModel):
    index: str
    docs: int
    chunks: int
    generation: int
    created_at: str
    embedder: str
    reranker: str | None
    reranker_error: str | None
    last_run: dict[str, Any]


class IndexOutput(BaseModel):
    added: int
    updated: int
    removed: int
    unchanged: int
    embedded_chunks: int
    generation: int | None
    skipped: list[dict[str, str]]


class RerankPassage(BaseModel):
    id: str | None = None
    text: str = Field(min_length=1, max_length=MAX_PASSAGE_CHARS)


def _render_passages(passages: Sequence[Passage]) -> str:
    lines = []
    for i, p in enumerate(passages, start=1):
        where = p.source + (f" § {p.section}" if p.section else "")
        where += f" p.{p.page}" if p.page else ""
        rel = f", relevance {p.relevance:.2f}" if p.relevance is not None else ""
        lines.append(f"[{i}] {p.title} — {where} (chars {p.span[0]}-{p.span[1]}{rel}; {p.uri})")
        lines.append(p.text.strip())
        lines.append("")
    return "\n".join(lines).strip()


def render_search(out: SearchOutput) -> str:
    if out.no_answer:
        return (
            f"No indexed document answers this: no passage cleared the relevance floor (best "
            f"cross-encoder score {out.best_score:.2f}). Say the documents do not contain it."
        )
    if not out.results:
        return "No matching passages in the indexed documents."
    head = f"{len(out.results)} passages for: {out.query}"
    if not out.reranked and out.rerank_reason:
        head += f" (not reranked: {out.rerank_reason})"
    return head + "\n\n" + _render_passages(out.results)


def render_answer(out: AnswerOutput) -> str:
    if not out.answered:
        return out.answer
    return out.answer + "\n\nSources:\n" + "\n".join(
        f"[{i}] {p.source}" + (f" § {p.section}" if p.section else "") + f" ({p.uri})"
        for i, p in enumerate(out.citations, start=1)
    )


def _result(model: BaseModel, text: str) -> CallToolResult:
    """Structured output and a self-sufficient text rendering (clients show one or the other)."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json"),
    )


class RagService:
    """Tool logic as plain methods over one loaded Pipeline (thread-safe)."""

    def __init__(self, pipeline: Pipeline, allow_roots: Sequence[Path] = ()) -> None:
        self.pipeline = pipeline
        self.allow_roots = [Path(r).expanduser().resolve() for r in allow_roots]

    def search(
        self,
        query: str,
        k: int = 5,
        filters: dict[str, str] | None = None,
        rerank: bool = True,
    ) -> SearchOutput:
        self.pipeline.refresh()
        r: SearchResult = self.pipeline.search(query, k=k, filters=filters, rerank=rerank)
        return SearchOutput(
            query=r.query,
            results=[Passage.of(h) for h in r.hits],
            no_answer=r.no_answer,
            best_score=r.best_score,
            reranked=r.reranked,
            rerank_reason=r.rerank_reason,
            generation=r.generation,
            timings_ms=r.timings_ms,
        )

    def rerank(
        self, query: str, passages: Sequence[str | RerankPassage], top_k: int | None = None
    ) -> RerankOutput:
        query = validate_query(query)
        if not passages:
            raise QueryError("passages is empty: pass 1 to 100 passages to score")
        if len(passages) > MAX_PASSAGES:
            raise QueryError(f"{len(passages)} passages is over the limit of {MAX_PASSAGES}")
        items = [
            RerankPassage(id=str(i), text=p) if isinstance(p, str) else p
            for i, p in enumerate(passages)
        ]
        for i, p in enumerate(items):
            if not p.text.strip() or len(p.text) > MAX_PASSAGE_CHARS:
                raise QueryError(
                    f"passage {i} is empty or over {MAX_PASSAGE_CHARS} characters"
                )
        reranker = self.pipeline.reranker
        if reranker is None:
            raise QueryError(f"no reranker is available: {self.pipeline.rerank_error}")
        t = time.perf_counter()
        ranked = rank(reranker, query, [p.text for p in items], top_k)
        return RerankOutput(
            query=query,
            reranker=reranker.name,
            results=[
                RerankItem(
                    id=items[r["corpus_id"]].id or str(r["corpus_id"]),
                    index=r["corpus_id"],
                    score=r["score"],
                    relevance=r["relevance"],
                    text=r["text"],
                )
                for r in ranked
            ],
            timings_ms={"rerank": round((time.perf_counter() - t) * 1000, 3)},
        )

    def answer(self, question: str, k: int = 5) -> AnswerOutput:
        """The passages that clear the floor, numbered for citation, or a plain no-answer."""
        s = self.search(question, k=k, rerank=True)
        if s.no_answer or not s.results:
            best = ""
            if s.best_score is not None:
                best = f" (best cross-encoder score {s.best_score:.2f})"
            return AnswerOutput(
                question=s.query,
                answered=False,
                answer=(
                    "The indexed documents do not contain an answer to this question"
                    f"{best}. Do not answer it from memory as if it came from them."
                ),
                citations=[],
                confidence=None,
                timings_ms=s.timings_ms,
            )
        parts = [f"{p.text.strip()} [{i}]" for i, p in enumerate(s.results, start=1)]
        top = s.results[0].relevance
        return AnswerOutput(
            question=s.query,
            answered=True,
            answer="\n\n".join(parts),
            citations=s.results,
            confidence=top,
            timings_ms=s.timings_ms,
        )

    def status(self) -> StatusOutput:
        from mcp_rag.store import read_last_run

        self.pipeline.refresh()
        r = self.pipeline.reader
        last = read_last_run(r.index_dir) or {}
        return StatusOutput(
            index=str(r.index_dir),
            docs=r.manifest["counts"]["docs"],
            chunks=r.manifest["counts"]["chunks"],
            generation=r.generation,
            created_at=r.manifest["created_at"],
            embedder=self.pipeline.embedder.name,
            reranker=self.pipeline.reranker.name if self.pipeline.reranker else None,
            reranker_error=self.pipeline.rerank_error,
            last_run={k: v for k, v in last.items() if k != "skipped"},
        )

    def check_allowed(self, paths: Sequence[str]) -> list[Path]:
        """Resolve ``paths`` and refuse any outside the allowed roots."""
        if not self.allow_roots:
            raise QueryError("indexing from the client is off: start the server with --allow-root")
        out = []
        for raw in paths:
            p = Path(raw).expanduser().resolve()
            if not any(p == root or p.is_relative_to(root) for root in self.allow_roots):
                raise QueryError(
                    f"{raw} is outside the allowed roots ({', '.join(map(str, self.allow_roots))})"
                )
            out.append(p)
        return out

    def index(
        self, paths: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> IndexOutput:
        from mcp_rag.indexer import index_paths

        resolved = self.check_allowed(paths)
        s = self.pipeline.settings
        rep = index_paths(
            s.index, resolved, self.pipeline.embedder, target_tokens=s.chunk_tokens,
            overlap=s.chunk_overlap, dense_kind=s.dense_index, quiet=True, progress=progress,
        )
        self.pipeline.refresh()
        return IndexOutput(
            added=rep.added, updated=rep.updated, removed=rep.removed, unchanged=rep.unchanged,
            embedded_chunks=rep.embedded_chunks, generation=rep.generation,
            skipped=[{"path": p, "reason": why} for p, why in rep.skipped],
        )


def _reader(svc: RagService):
    """The current index for a resource read; mcp-rag errors become readable resource errors."""
    try:
        svc.pipeline.refresh()
        return svc.pipeline.reader
    except MCPRagError as e:
        raise ResourceError(str(e)) from e


READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


def build_server(pipeline: Pipeline, allow_roots: Sequence[Path] = ()) -> MCPServer:
    """An MCPServer over ``pipeline`` (loaded by the caller, once)."""
    svc = RagService(pipeline, allow_roots)
    server = MCPServer(
        name="mcp-rag",
        title="mcp-rag: your documents",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
    )

    async def run(fn: Callable[[], Any]) -> Any:
        try:
            return await anyio.to_thread.run_sync(fn)
        except MCPRagError as e:
            raise ToolError(str(e)) from e

    @server.tool(title="Search your documents", annotations=READ_ONLY)
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS,
                                    description="The question or keywords, in plain words.")],
        k: Annotated[int, Field(ge=1, le=50, description="How many passages to return.")] = 5,
        filters: Annotated[dict[str, str] | None, Field(
            description="Optional: {'source': glob on the file path, e.g. '*/policies/*'} "
                        "and/or {'doc_id_prefix': 'policies/'}.")] = None,
        rerank: Annotated[bool, Field(description="Rerank with the cross-encoder.")] = True,
    ) -> SearchOutput:
        """Search the user's indexed documents (hybrid keyword + semantic, then reranked).

        Use this to find passages that answer a question or mention exact terms, names or
        codes. Each result has its source, section, character span and a rag:// URI to
        cite. If `no_answer` is true, the documents do not contain the answer: say so.
        """
        out = await run(lambda: svc.search(query, k, filters, rerank))
        return _result(out, render_search(out))  # type: ignore[return-value]

    @server.tool(title="Rerank passages", annotations=READ_ONLY)
    async def rerank(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)],
        passages: Annotated[list[str | RerankPassage], Field(
            min_length=1, max_length=MAX_PASSAGES,
            description="Passages to score: strings, or objects {id, text}.")],
        top_k: Annotated[int | None, Field(ge=1, le=MAX_PASSAGES)] = None,
    ) -> RerankOutput:
        """Score passages you already have against a query with the cross-encoder.

        For agents that retrieve elsewhere (web, another tool) and want the most relevant
        first. Returns each passage's relevance (0..1) and its position in your list.
        """
        out = await run(lambda: svc.rerank(query, passages, top_k))
        text = "\n".join(
            f"{i}. [{r.id}] relevance {r.relevance:.3f}: {r.text[:200]}"
            for i, r in enumerate(out.results, start=1)
        )
        return _result(out, text)  # type: ignore[return-value]

    @server.tool(title="Answer from your documents", annotations=READ_ONLY)
    async def answer(
        question: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)],
        k: Annotated[int, Field(ge=1, le=20, description="Most passages to cite.")] = 5,
    ) -> AnswerOutput:
        """Answer a question from the user's documents, with numbered citations.

        Returns the passages that clear the relevance floor, each followed by [n], and
        citations[n-1] saying where [n] comes from; or answered=false with a plain
        statement that the documents do not contain the answer. Never fill the gap from
        memory when answered is false.
        """
        out = await run(lambda: svc.answer(question, k))
        return _result(out, render_answer(out))  # type: ignore[return-value]

    @server.tool(title="Index status", annotations=READ_ONLY)
    async def index_status() -> StatusOutput:
        """What is indexed: documents, chunks, models, index generation and the last run."""
        out = await run(svc.status)
        text = (
            f"{out.docs} documents, {out.chunks} chunks, generation {out.generation} "
            f"({out.created_at}); embedder {out.embedder}; reranker "
            f"{out.reranker or 'unavailable: ' + str(out.reranker_error)}; index {out.index}"
        )
        return _result(out, text)  # type: ignore[return-value]

    if svc.allow_roots:

        @server.tool(
            title="Index files",
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                open_world_hint=False,
            ),
        )
        async def index_paths(
            paths: Annotated[list[str], Field(min_length=1, max_length=50)],
            ctx: Context,
        ) -> IndexOutput:
            """Add or update files and folders in the index (only under the allowed roots).

            Re-indexing is incremental: unchanged files are skipped.
            """

            def progress(done: int, total: int) -> None:
                anyio.from_thread.run(ctx.report_progress, done, total, "embedding chunks")

            out = await run(lambda: svc.index(paths, progress))
            text = (
                f"added {out.added}, updated {out.updated}, removed {out.removed}, unchanged "
                f"{out.unchanged}, embedded {out.embedded_chunks} chunks; generation "
                f"{out.generation}; skipped {len(out.skipped)} files"
            )
            return _result(out, text)  # type: ignore[return-value]

    @server.resource(
        "rag://documents",
        name="documents",
        title="Indexed documents",
        description="Every indexed document: id, source, title, format, chunk count.",
        mime_type="application/json",
    )
    def list_documents() -> str:
        docs = _reader(svc).documents()
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
        doc = _reader(svc).document(doc_id)
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
        c = _reader(svc).chunk_by_id(chunk_id)
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


class BearerAuth:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import hmac

        if scope["type"] == "http":
            got = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(got, self.expected):
                from starlette.responses import JSONResponse

                response = JSONResponse(
                    {"error": "unauthorized", "message": "missing or wrong bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def http_app(
    server: MCPServer,
    host: str,
    port: int,
    token: str | None,
    allowed_hosts: Sequence[str] = (),
) -> Any:
    """The streamable HTTP app at /mcp: Host/Origin checked (DNS rebinding), optional token."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = {f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")}
    hosts |= {f"{h}:{port}" for h in allowed_hosts} | set(allowed_hosts)
    if host not in LOOPBACK:
        hosts.add(f"{host}:{port}")
    origins = {f"http://{h}" for h in hosts} | {f"https://{h}" for h in hosts}
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(hosts),
        allowed_origins=sorted(origins),
    )
    app = server.streamable_http_app(transport_security=security, host=host)
    return BearerAuth(app, token) if token else app


def run_http(server: MCPServer, host: str, port: int, token: str | None,
             allowed_hosts: Sequence[str] = ()) -> None:
    import uvicorn

    if host not in LOOPBACK and not token:
        raise QueryError(
            f"refusing to listen on {host} without a token: set MCP_RAG_TOKEN, or bind to "
            f"127.0.0.1"
        )
    app = http_app(server, host, port, token, allowed_hosts)
    log.warning("mcp-rag serving streamable HTTP at http://%s:%d/mcp%s", host, port,
                " (bearer token required)" if token else "")
    uvicorn.run(app, host=host, port=port, log_level="warning")
