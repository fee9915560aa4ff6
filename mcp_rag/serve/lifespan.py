"""What runs beside the server while it serves: the look for new index generations (which
tells subscribed clients) and, with ``serve --watch``, re-indexing on every file change."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from mcp.server import MCPServer

from mcp_rag.errors import MCPRagError
from mcp_rag.index.update import RunReport
from mcp_rag.index.watch import WatchSpec
from mcp_rag.serve.context import ServerContext

log = logging.getLogger(__name__)


async def fetch_models(app: ServerContext) -> None:
    """Download the pack models ``app.fetching`` names and load them (a first start)."""
    from mcp_rag.models.pack import ensure

    p = app.svc.pipeline

    def fetch() -> None:
        ensure(app.fetching, p.settings.models, download=True, index_url=p.settings.pypi_url,
               progress=False)
        p.reload_models()

    try:
        await anyio.to_thread.run_sync(fetch, abandon_on_cancel=True)
        log.info("model pack downloaded and loaded")
    except MCPRagError as e:
        log.error("%s", e)
        app.fetch_error = str(e)
    finally:
        app.fetching = []


async def keep_fresh(app: ServerContext, spec: WatchSpec, once: bool = False) -> None:
    """Index ``spec``'s paths, then re-index them on every change (``once``: not), in a
    thread, telling clients at once."""
    stop = threading.Event()

    def on_run(report: RunReport) -> None:
        if report.changed:
            with contextlib.suppress(Exception):  # the server is shutting down
                anyio.from_thread.run(app.changes.check)

    if app.fetching:
        await fetch_models(app)
    try:
        await anyio.to_thread.run_sync(
            lambda: app.svc.pipeline.indexer().watch(spec, stop=stop, on_run=on_run,
                                                     tally=app.tally, once=once),
            abandon_on_cancel=True,
        )
    finally:
        stop.set()  # the thread ends within a second


def lifespan(
    app: ServerContext, watch: WatchSpec | None
) -> Callable[[MCPServer], AbstractAsyncContextManager[dict[str, Any]]]:
    """The server's lifespan: while it runs, look for new index generations every
    ``change_poll`` seconds and, with ``watch``, keep the index up to date with its paths."""
    poll = app.svc.pipeline.settings.change_poll

    @asynccontextmanager
    async def watching(_: MCPServer) -> AsyncIterator[dict[str, Any]]:
        async with anyio.create_task_group() as tg:
            await app.changes.check()  # the baseline, before any client can subscribe
            tg.start_soon(app.changes.watch, poll)
            if watch is not None:
                tg.start_soon(keep_fresh, app, watch, not app.svc.pipeline.settings.watch)
            try:
                yield {"changes": app.changes}
            finally:
                tg.cancel_scope.cancel()

    return watching
