"""Tell connected clients when a new index generation switches in.

The server checks the index's CURRENT file every ``change_poll`` seconds (one small read;
``serve --watch`` also checks right after it writes). When the generation changed, it
compares the documents' content hashes with the last generation it saw and sends:

- ``notifications/resources/list_changed`` to every client;
- ``notifications/resources/updated`` for each URI a client subscribed to whose content
  changed: ``rag://documents`` when anything changed, a document when its text changed or
  it went, a passage when its document did;
- ``notifications/message`` (level ``info``) saying what changed, to clients that set a
  log level with ``logging/setLevel`` at ``info`` or below.

Clients on the 2026-07-28 protocol get the list change and the updated documents as events
on their ``subscriptions/listen`` stream instead (the SDK's bus).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import anyio
from mcp.server.subscriptions import ResourcesListChanged, ResourceUpdated, SubscriptionBus

from mcp_rag.app.schemas import DOCUMENTS, document_uri
from mcp_rag.errors import MCPRagError
from mcp_rag.retrieve.pipeline import Pipeline

log = logging.getLogger(__name__)

LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
DOC_PREFIX = DOCUMENTS + "/"
CHUNK_PREFIX = "rag://chunks/"


@dataclass
class Peer:
    """What one client connection asked for."""

    subscriptions: set[str] = field(default_factory=set)
    log_level: str | None = None

    def wants_log(self, level: str) -> bool:
        return self.log_level is not None and LEVELS.index(level) >= LEVELS.index(self.log_level)


def affected(uri: str, changed: set[str]) -> bool:
    """Whether the resource at ``uri`` reads differently now that ``changed`` docs did."""
    if not changed:
        return False
    if uri == DOCUMENTS:
        return True
    if uri.startswith(DOC_PREFIX):
        return unquote(uri[len(DOC_PREFIX):]) in changed
    if uri.startswith(CHUNK_PREFIX):
        return unquote(uri[len(CHUNK_PREFIX):]).rpartition("#")[0] in changed
    return False


def diff(old: dict[str, str], new: dict[str, str]) -> set[str]:
    """Ids of documents added, removed or whose content hash changed."""
    return {d for d in old.keys() | new.keys() if old.get(d) != new.get(d)}


class Changes:
    """Subscriptions and log levels of connected clients, and the generation they last saw."""

    def __init__(self, pipeline: Pipeline, bus: SubscriptionBus | None = None) -> None:
        self.pipeline = pipeline
        self.bus = bus
        self.peers: weakref.WeakKeyDictionary[Any, Peer] = weakref.WeakKeyDictionary()
        self.generation: int | None = None
        self.hashes: dict[str, str] | None = None  # None: not looked yet
        self._lock = anyio.Lock()

    def peer(self, session: Any) -> Peer:
        """The record of the connection a request came on (created on its first request).

        The SDK makes a ServerSession per request; the connection it wraps lives as long
        as the client stays connected, and can send notifications outside any request.
        """
        conn = getattr(session, "_connection", session)
        got = self.peers.get(conn)
        if got is None:
            got = self.peers[conn] = Peer()
        return got

    def _look(self) -> tuple[int | None, dict[str, str] | None]:
        """The served generation, and its documents' hashes if it is not the one last seen."""
        try:
            with self.pipeline.current() as r:
                if self.hashes is not None and r.generation == self.generation:
                    return r.generation, None
                return r.generation, r.doc_hashes()
        except MCPRagError:  # no index yet, or a damaged one: nothing new to tell
            return self.generation, {} if self.hashes is None else None

    async def check(self) -> set[str] | None:
        """Notify clients if a new generation switched in; the ids of changed documents."""
        async with self._lock:
            generation, hashes = await anyio.to_thread.run_sync(self._look)
            if hashes is None:
                return None
            first = self.hashes is None
            changed = diff(self.hashes or {}, hashes)
            self.generation, self.hashes = generation, hashes
            if first:
                return None  # the baseline: what the clients find when they connect
            await self._notify(generation, changed)
            return changed

    async def watch(self, every: float) -> None:
        """Check every ``every`` seconds until cancelled."""
        while True:
            try:
                await self.check()
            except Exception:  # keep watching: the next look may succeed
                log.exception("checking the index for a new generation failed")
            await anyio.sleep(every)

    async def _notify(self, generation: int | None, changed: set[str]) -> None:
        log.info("index generation %s: %d document(s) changed", generation, len(changed))
        message = {"event": "index_generation", "generation": generation,
                   "documents_changed": len(changed)}
        for conn, peer in list(self.peers.items()):
            try:  # best effort: a closed connection drops what is sent to it
                await conn.send_resource_list_changed()
                for uri in sorted(peer.subscriptions):
                    if affected(uri, changed):
                        await conn.send_resource_updated(uri)
                if peer.wants_log("info"):
                    await conn.notify("notifications/message",
                                      {"level": "info", "logger": "mcp-rag", "data": message})
            except Exception as e:
                log.debug("dropping a client that cannot be notified: %s", e)
                self.peers.pop(conn, None)
        if self.bus is not None:
            await self.bus.publish(ResourcesListChanged())
            if changed:
                await self.bus.publish(ResourceUpdated(uri=DOCUMENTS))
            for d in sorted(changed):
                await self.bus.publish(ResourceUpdated(uri=document_uri(d)))
