"""The one entry into indexing: every caller (the CLI's index, watch, remove and demo, the
server's index and sync tools and its watch, ``mcp-rag eval``) indexes through an
``Indexer``, so where the index is, how it is built (``BuildOptions``) and which backend
stores it are decided here, once, from the settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_rag.index.backend import Backend, backend_for
from mcp_rag.index.manifest import BuildOptions
from mcp_rag.index.update import RunReport, Tally, index_paths, remove_docs
from mcp_rag.index.watch import WatchSpec, watch
from mcp_rag.settings import Settings
from mcp_rag.types import Embedder


@dataclass(frozen=True)
class Indexer:
    """Indexes into ``settings.index`` with ``embedder`` (None: only ``remove`` works).

    Example:
        >>> Indexer(Settings.load(index="notes"), embedder).index(["~/notes"]).added
        12
    """

    settings: Settings
    embedder: Embedder | None = None

    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index)

    def options(self) -> BuildOptions:
        return BuildOptions.from_settings(self.settings)

    def backend(self) -> Backend:
        return backend_for(self.settings)

    def _embedder(self) -> Embedder:
        if self.embedder is None:
            raise TypeError("this Indexer was made without an embedder: it can only remove")
        return self.embedder

    def index(
        self, paths: Sequence[str | Path], *, embedder: Embedder | None = None, **kw: Any
    ) -> RunReport:
        """Bring the index up to date with ``paths`` (``index_paths``'s keywords pass
        through: include, exclude, roots, rebuild, quiet, progress, collection, load,
        chunk). ``embedder`` replaces this Indexer's for the run (``index --ray``)."""
        return index_paths(self.index_dir, paths, embedder or self._embedder(),
                           options=self.options(), backend=self.backend(), **kw)

    def watch(
        self, spec: WatchSpec, *, stop: threading.Event | None = None,
        on_run: Callable[[RunReport], None] | None = None, tally: Tally | None = None,
        once: bool = False,
    ) -> None:
        """Index ``spec``'s paths now, then after every change, until ``stop`` is set
        (``once``: now only); ``tally`` counts each run's progress."""
        watch(self.index_dir, spec, self._embedder(), options=self.options(), stop=stop,
              on_run=on_run, backend=self.backend(), tally=tally, once=once)

    def remove(self, targets: Sequence[str]) -> RunReport:
        """Remove documents by id, id prefix ending in '/', or source path."""
        return remove_docs(self.index_dir, targets, backend=self.backend())
