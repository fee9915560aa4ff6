"""The open generation of one index, switched to the newest when another process writes one.

Shared by everything that reads an index for a while: the ``Pipeline`` (with models) and
the ``Catalog`` (without). Thread-safe; a reader in use is closed only when the last query
holding it ends.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mcp_rag.errors import IndexMismatchError, IndexNotFoundError, MCPRagError
from mcp_rag.index.backend import backend_for
from mcp_rag.index.store import missing_index
from mcp_rag.settings import Settings

if TYPE_CHECKING:
    from mcp_rag.index.backend import Generation

log = logging.getLogger(__name__)


def open_current(settings: Settings, require_index: bool) -> Generation | None:
    """The current generation at ``settings.index``; None (with a warning) if there is none.

    With ``require_index`` False a damaged index is logged and left for each query to
    report (with the command that repairs it), so a server starts on it and says so.
    """
    try:
        return backend_for(settings).open()
    except MCPRagError as e:
        if require_index:
            raise
        if isinstance(e, IndexNotFoundError):
            log.warning("no index at %s yet: searches say so until one exists", settings.index)
        else:
            log.error("%s", e)
        return None


class IndexHandle:
    """The open generation at ``settings.index``.

    ``embedder``: the name of the query embedder loaded in this process, or None (no
    model: the catalog); a generation built with another embedder is refused.
    """

    def __init__(self, settings: Settings, embedder: str | None = None,
                 reader: Generation | None = None, require_index: bool = True) -> None:
        self.settings = settings
        self.embedder = embedder
        self._lock = threading.Lock()
        self._reader = reader if reader is not None else open_current(settings, require_index)
        built = self._reader.manifest.embedder.name if self._reader is not None else None
        if embedder is not None and built is not None and built != embedder:
            raise IndexMismatchError(
                f"the index was built with embedder {built!r}, but {embedder!r} was given"
            )

    @property
    def reader(self) -> Generation:
        """The open index generation; IndexNotFoundError (naming the fix) if there is none."""
        if self._reader is None:
            self.refresh()
        if self._reader is None:
            raise missing_index(self.settings.index)
        return self._reader

    @contextlib.contextmanager
    def current(self) -> Iterator[Generation]:
        """The newest generation (switched to first if another process wrote one), held
        open for the block even if a newer one switches in meanwhile."""
        self.refresh()
        with self.reader.in_use() as reader:
            yield reader

    def close(self) -> None:
        """Close the open generation (a command that read it and is done)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def refresh(self) -> bool:
        """Switch to the newest generation if another process wrote one. True if it switched.

        Cheap (one small file read) when nothing changed, so it can run before every query.
        """
        current = self._reader
        if current is not None and current.is_current():
            return False
        with self._lock:
            if self._reader is not current:
                return True  # another thread switched already
            try:
                new = backend_for(self.settings).open()
            except IndexNotFoundError:
                return False
            want = new.manifest.embedder.name
            if self.embedder is not None and want != self.embedder:
                new.close()
                raise IndexMismatchError(
                    f"the index at {self.settings.index} was rebuilt with embedder {want!r}; "
                    f"this process has {self.embedder!r} loaded: restart it"
                )
            self._reader = new
            if current is not None:
                current.retire()  # closed now, or when the last query using it ends
            log.info("index generation %s -> %d",
                     current.generation if current else "none", new.generation)
            return True
