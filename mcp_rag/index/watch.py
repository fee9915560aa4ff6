"""Keep an index fresh: re-index the watched paths whenever files under them change.

watchfiles (file-system events from the OS: inotify, FSEvents, ReadDirectoryChangesW)
groups the events of a burst of edits (``debounce_ms``); each batch that touches a file
we index, or deletes anything, starts one incremental run of ``index_paths`` over all the
watched paths: unchanged files are skipped by size and mtime, changed ones re-embedded,
deleted ones pruned, and readers switch to the new generation when it is written. Writes
into the index's own folder are ignored, so an index kept inside a watched folder does
not wake the watcher.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mcp_rag.errors import MCPRagError
from mcp_rag.index.backend import Backend
from mcp_rag.index.manifest import BuildOptions
from mcp_rag.index.update import RunReport, Tally, index_paths
from mcp_rag.ingest import safety
from mcp_rag.ingest.discover import SUPPORTED, format_suffix
from mcp_rag.types import Embedder

log = logging.getLogger(__name__)


@dataclass
class WatchSpec:
    """What to keep indexed: paths (and the globs that narrow them), how long a burst is."""

    paths: Sequence[Path]
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    debounce_ms: int = 500
    roots: Sequence[Path] | None = None  # where files may come from (default: the paths)
    ignore: Sequence[Path] = field(default_factory=tuple)  # folders whose changes are ours
    collection: str | None = None  # the named collection they go in (None: keep each one's)


def relevant(change: object, path: str, watched: Sequence[Path], ignore: Sequence[Path]) -> bool:
    """Whether a file-system event can change what the index holds."""
    import watchfiles

    p = Path(path)
    if any(p == d or d in p.parents for d in ignore):
        return False
    for w in watched:
        if w in p.parents and any(part.startswith(".") for part in p.relative_to(w).parts):
            return False  # hidden files and folders are never indexed
    # A deleted folder has no suffix but takes its documents with it.
    return change == watchfiles.Change.deleted or format_suffix(p) in SUPPORTED


def watch(
    index_dir: Path,
    spec: WatchSpec,
    embedder: Embedder,
    *,
    options: BuildOptions | None = None,
    stop: threading.Event | None = None,
    on_run: Callable[[RunReport], None] | None = None,
    initial: bool = True,
    backend: Backend | None = None,
    tally: Tally | None = None,
    once: bool = False,
) -> None:
    """Index ``spec.paths`` now (``initial``), then after every batch of changes, until
    ``stop`` is set (a big first index stops between batches of vectors, and the next
    run goes on). A failing run is logged and the watch goes on. ``tally`` counts each
    run's progress; ``once``: the first run only, no watching."""
    import watchfiles

    paths = [safety.resolve(p) for p in spec.paths]
    ignore = [safety.resolve(p) for p in (index_dir, *spec.ignore)]

    def run() -> None:
        try:
            report = index_paths(index_dir, paths, embedder, options=options,
                                 include=spec.include, exclude=spec.exclude, roots=spec.roots,
                                 quiet=True, collection=spec.collection, backend=backend,
                                 stop=stop, tally=tally)
        except MCPRagError as e:
            log.error("re-indexing %s failed: %s", ", ".join(map(str, paths)), e)
            if tally is not None:
                tally.error = str(e)
            return
        finally:
            if tally is not None:
                tally.running = False
        if on_run is not None:
            on_run(report)

    if once:
        run()
        return

    started = False
    for changes in watchfiles.watch(
        *paths, debounce=spec.debounce_ms, step=50, stop_event=stop,
        watch_filter=lambda c, p: relevant(c, p, paths, ignore), raise_interrupt=False,
        rust_timeout=300, yield_on_timeout=True,
    ):
        if not started:  # the OS is watching now: a change during the first run is not lost
            started = True
            if initial:
                run()
            if not changes:
                continue
        if not changes:  # a timeout, so that `stop` is seen
            continue
        log.info("%d file change(s) under %s: re-indexing", len(changes),
                 ", ".join(map(str, paths)))
        run()
