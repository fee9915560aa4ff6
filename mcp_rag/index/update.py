"""Incremental indexing: discover, load, chunk and embed what changed, write a generation."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mcp_rag.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, LoaderError
from mcp_rag.index.backend import Backend, Embedded
from mcp_rag.index.lexical import TOKENIZER_ID, tokenize
from mcp_rag.index.manifest import (
    BM25Params,
    BuildOptions,
    Counts,
    EmbedderInfo,
    Manifest,
    now,
)
from mcp_rag.index.scope import scope_calibrator
from mcp_rag.index.store import (
    DocInfo,
    NewGeneration,
    clean_stale,
    write_last_run,
    write_lock,
)
from mcp_rag.ingest import safety
from mcp_rag.ingest.chunking import chunk_document, index_text
from mcp_rag.ingest.discover import Discovery, SourceFile, discover
from mcp_rag.ingest.loaders import LOADER_VERSION, Loaded, load_file
from mcp_rag.models.embedding import token_counter
from mcp_rag.types import DEFAULT_COLLECTION, Chunk, Document, Embedder

if TYPE_CHECKING:
    from mcp_rag.index.backend import Generation

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What one indexing run did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    moved: int = 0  # unchanged documents moved to another collection
    embedded_chunks: int = 0
    generation: int | None = None
    changed: bool = False
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    finished_at: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["skipped"] = [{"path": p, "reason": r} for p, r in self.skipped]
        return d


def _progress(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="chunk",
        file=sys.stderr,
        disable=quiet or not sys.stderr.isatty(),
        leave=False,
    )


UNCHANGED = "unchanged"  # a plan's mark for a file whose stamp says it did not change
Loader = Callable[[list[SourceFile]], list["Loaded | LoaderError"]]


def load_here(files: list[SourceFile]) -> list[Loaded | LoaderError]:
    """Each file's documents, or why it cannot be read, in this process."""
    out: list[Loaded | LoaderError] = []
    for f in files:
        try:
            out.append(load_file(f))
        except LoaderError as e:
            out.append(e)
    return out


Chunker = Callable[[list[Document], Callable[[str], int], int, int], list[list[Chunk]]]


def chunk_here(docs: list[Document], count_tokens: Callable[[str], int], target: int,
               overlap: int) -> list[list[Chunk]]:
    """Each document's chunks, in this process."""
    return [chunk_document(d, count_tokens, target, overlap=overlap) for d in docs]


def _in_scope(source: str, scopes: Sequence[tuple[str, bool]]) -> bool:
    """True if ``source`` lies in a scanned scope: (folder, True) or an exact (file, False)."""
    for path, is_dir in scopes:
        if source == path or (is_dir and source.startswith(path.rstrip(os.sep) + os.sep)):
            return True
    return False


def index_paths(
    index_dir: Path,
    paths: Sequence[str | Path],
    embedder: Embedder,
    *,
    options: BuildOptions | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    roots: Sequence[Path] | None = None,
    rebuild: bool = False,
    quiet: bool = False,
    progress: Callable[[int, int], None] | None = None,
    collection: str | None = None,
    backend: Backend | None = None,
    load: Loader | None = None,
    chunk: Chunker | None = None,
) -> RunReport:
    """Bring the index at ``index_dir`` up to date with ``paths``: plan, load, embed, write.

    ``collection`` puts every document found in that named collection (moving those that
    were in another); None keeps each document's collection (new ones: the default).
    ``load`` reads the files that changed (default ``load_here``; ``index --ray`` fans
    it out) and returns, in their order, each one's ``Loaded`` or its ``LoaderError``;
    ``chunk`` cuts the changed documents into chunks (default ``chunk_here``), in order.

    ``options`` (chunking, dense index kind; defaults when None) must match those of an
    existing index unless ``rebuild``. ``progress(done, total)`` is called as chunks are
    embedded (for MCP progress).

    New and changed documents are chunked and embedded; unchanged ones keep their
    vectors; documents that disappeared from the scanned folders (or files) are removed;
    documents indexed from other paths stay. Nothing is written when nothing changed.
    """
    started = time.perf_counter()
    index_dir = Path(index_dir)
    store = backend or Embedded(index_dir)
    opts = options or BuildOptions()
    report = RunReport()
    found: Discovery = discover(paths, include, exclude, roots)
    report.skipped.extend(found.skipped)
    scopes = [(str(p), p.is_dir()) for p in map(safety.resolve, paths)]

    with write_lock(index_dir):
        for name in clean_stale(index_dir):
            log.warning("removed %s, left by an interrupted build", name)
        current = _current(store, index_dir, embedder, opts, rebuild)
        existing = current.doc_infos() if current is not None and not rebuild else {}
        reparse = _loaders_changed(current, existing)
        plan = _Plan(existing, scopes, collection)
        # First which files to read (their stamps), then read them all (here, or fanned
        # out by ``load``), then take the results in the files' order, as one pass would.
        rows = plan.stamps(found.files, reparse)
        loaded = (load or load_here)([src for src, _, why in rows if why is None])
        changed_docs = plan.take(rows, loaded, report)
        removed = {d for d, i in existing.items() if _in_scope(i.source, scopes)
                   and d not in plan.seen}
        report.removed, report.moved = len(removed), len(plan.relabel)
        _log_skips(report)

        if not (report.added or report.updated or report.removed or plan.relabel or rebuild
                or reparse):
            report.generation = current.generation if current is not None else None
            return _finish(index_dir, report, started)
        new_chunks = [c for cs in (chunk or chunk_here)(
            changed_docs, token_counter(embedder), opts.chunking.target_tokens,
            opts.chunking.overlap) for c in cs]
        vectors = _embed(new_chunks, embedder, quiet, progress)
        report.embedded_chunks = len(new_chunks)
        keep_doc_ids = set(existing) - removed - {d.doc_id for d in changed_docs}
        report.generation = _write(
            store, current if not rebuild else None, opts, embedder, scopes, quiet,
            _Change(keep_doc_ids, changed_docs, new_chunks, vectors, plan.relabel,
                    recalibrate=bool(changed_docs or removed or rebuild or reparse)),
        )
        if current is not None:
            current.close()
        report.changed = True
        return _finish(index_dir, report, started)


def _loaders_changed(current: Generation | None, existing: dict[str, DocInfo]) -> bool:
    """True when the loaders changed since the index was built: then every file is re-read
    even when its stamp is unchanged (only those whose text changed are re-embedded)."""
    if current is None or not existing or current.manifest.loader_version == LOADER_VERSION:
        return False
    log.info("the loaders changed since this index was built: re-reading every file")
    return True


def _log_skips(report: RunReport) -> None:
    for skipped, why in report.skipped:
        log.warning("skipped %s: %s", skipped, why)
    for w in report.warnings:
        log.warning("%s", w)


def _current(store: Backend, index_dir: Path, embedder: Embedder, opts: BuildOptions,
             rebuild: bool) -> Generation | None:
    """The live generation this run builds on (None: there is none, or ``rebuild`` and it
    is damaged); an index built another way is refused unless ``rebuild``."""
    try:
        current = store.open()
    except IndexNotFoundError:
        return None
    except (IndexCorruptError, IndexMismatchError):
        if not rebuild:
            raise
        return None
    if rebuild:
        return current
    m = current.manifest
    if m.embedder.name != embedder.name:
        raise IndexMismatchError(
            f"the index at {index_dir} was built with embedder "
            f"{m.embedder.name!r}, not {embedder.name!r}. Re-embed "
            f"everything with --rebuild, or choose another --index."
        )
    if m.chunking != opts.chunking or m.dense_index != opts.dense_index:
        raise IndexMismatchError(
            f"the index at {index_dir} was built with chunking {asdict(m.chunking)} and "
            f"dense index {m.dense_index!r}; this run asks for {asdict(opts.chunking)} "
            f"and {opts.dense_index!r}. Pass --rebuild to rebuild it with the new "
            f"settings."
        )
    return current


class _Plan:
    """Which documents a run keeps, re-reads and moves, as it goes through the files."""

    def __init__(self, existing: dict[str, DocInfo], scopes: Sequence[tuple[str, bool]],
                 collection: str | None) -> None:
        self.existing = existing
        self.collection = collection
        self.by_source: dict[str, list[DocInfo]] = defaultdict(list)
        for info in existing.values():
            self.by_source[info.source].append(info)
        # doc id -> the file that has it (documents of other paths keep theirs)
        self.claimed = {d: i.source for d, i in existing.items()
                        if not _in_scope(i.source, scopes)}
        self.seen: set[str] = set()
        self.relabel: dict[str, str] = {}

    def keep(self, i: DocInfo) -> None:
        """An unchanged document stays, in the collection this run names."""
        self.seen.add(i.doc_id)
        self.claimed[i.doc_id] = i.source
        if self.collection is not None and i.collection != self.collection:
            self.relabel[i.doc_id] = self.collection

    def stamps(self, files: Sequence[SourceFile], reparse: bool
               ) -> list[tuple[SourceFile, list[DocInfo], str | None]]:
        """Each file with its documents as indexed and why it is not read (``UNCHANGED``,
        unreadable), or None: it is read."""
        rows: list[tuple[SourceFile, list[DocInfo], str | None]] = []
        for src in files:
            infos = self.by_source.get(str(src.path), [])
            try:
                st = src.path.stat()
            except OSError as e:
                rows.append((src, infos, f"unreadable ({e.strerror})"))
                continue
            if not reparse and infos and all(
                i.mtime == st.st_mtime and i.size == st.st_size for i in infos
            ):
                rows.append((src, infos, UNCHANGED))
                continue
            rows.append((src, infos, None))
        return rows

    def take(self, rows: list[tuple[SourceFile, list[DocInfo], str | None]],
             loaded: list[Loaded | LoaderError], report: RunReport) -> list[Document]:
        """The documents to (re-)embed, from the files read (``loaded``, in ``rows``'
        order); counts the rest into ``report``."""
        results = iter(loaded)
        changed: list[Document] = []
        for src, infos, why in rows:
            if why == UNCHANGED:
                for i in infos:
                    self.keep(i)
                report.unchanged += len(infos)
                continue
            if why is not None:
                report.skipped.append((str(src.path), why))
                continue
            got = next(results)
            if isinstance(got, LoaderError):
                report.skipped.append((str(src.path), str(got).removeprefix(f"{src.path}: ")))
                for i in infos:  # keep what was indexed before rather than lose it
                    self.keep(i)
                continue
            report.warnings.extend(got.warnings)
            for doc in got.docs:
                claimed = self._claim(doc, report)
                if claimed is not None:
                    changed.append(claimed)
        return changed

    def _claim(self, doc: Document, report: RunReport) -> Document | None:
        """``doc`` as it will be indexed, or None: read already, its id taken, or unchanged."""
        if doc.doc_id in self.seen and self.claimed.get(doc.doc_id) == doc.source:
            return None  # this file was read already in this run
        if self.claimed.get(doc.doc_id, doc.source) != doc.source:
            alt = f"{Path(doc.root).name}/{doc.doc_id}"
            if self.claimed.get(alt, doc.source) != doc.source:
                report.warnings.append(
                    f"{doc.source}: doc id {doc.doc_id!r} is taken by "
                    f"{self.claimed[doc.doc_id]}; skipped"
                )
                return None
            doc = replace(doc, doc_id=alt)
        self.claimed[doc.doc_id] = doc.source
        self.seen.add(doc.doc_id)
        old = self.existing.get(doc.doc_id)
        if old is not None and old.content_hash == doc.content_hash:
            # Same text under a new file stamp: nothing to re-embed, and the content
            # (so the generation) has not changed. The file is re-read next time.
            self.keep(old)
            report.unchanged += 1
            return None
        if old is None:
            report.added += 1
        else:
            report.updated += 1
        return replace(doc, collection=self.collection or (
            old.collection if old is not None else DEFAULT_COLLECTION))


def _embed(chunks: list[Chunk], embedder: Embedder, quiet: bool,
           progress: Callable[[int, int], None] | None) -> np.ndarray:
    """The chunks' vectors, with a progress bar on stderr and ``progress(done, total)``."""
    bar = _progress(len(chunks), "embedding", quiet)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        bar.update(n)
        if progress is not None:
            progress(done, len(chunks))

    try:
        return embedder.embed_documents([index_text(c) for c in chunks], step)
    finally:
        bar.close()


@dataclass
class _Change:
    """What a run changes: documents kept, documents (re-)embedded, collections moved."""

    keep_doc_ids: set[str]
    new_docs: list[Document]
    new_chunks: list[Chunk]
    vectors: np.ndarray
    relabel: dict[str, str]
    recalibrate: bool  # the corpus changed (a move between collections alone does not)


def _write(store: Backend, current: Generation | None, opts: BuildOptions,
           embedder: Embedder, scopes: Sequence[tuple[str, bool]], quiet: bool,
           change: _Change) -> int:
    """Write the next generation (BM25 over every chunk, the manifest, the calibration)
    beside ``current`` (None: from scratch) and switch to it; its number."""
    keep_rows = (
        current.chunk_rows_for_docs(change.keep_doc_ids)
        if current is not None and change.keep_doc_ids
        else np.zeros(0, dtype=np.int64)
    )
    kept_chunks = current.chunks(keep_rows.tolist()) if current is not None and len(keep_rows) \
        else []
    all_chunks = kept_chunks + change.new_chunks
    bar = _progress(len(all_chunks), "BM25", quiet)
    bm25_tokens = []
    for c in all_chunks:
        bm25_tokens.append(tokenize(index_text(c)))
        bar.update(1)
    bar.close()
    generation = store.next_generation()
    prev_roots = set(current.manifest.roots) if current is not None else set()
    manifest = Manifest(
        generation=generation,
        created_at=now(),
        embedder=EmbedderInfo(embedder.name, embedder.dim),
        counts=Counts(docs=len(change.keep_doc_ids) + len(change.new_docs),
                      chunks=len(bm25_tokens)),
        chunking=opts.chunking,
        bm25=BM25Params(tokenizer=TOKENIZER_ID),
        dense_index=opts.dense_index,
        loader_version=LOADER_VERSION,
        roots=tuple(sorted(prev_roots | {p for p, _ in scopes})),
    )
    store.write(
        current,
        NewGeneration(
            keep_rows=keep_rows,
            keep_doc_ids=change.keep_doc_ids,
            new_docs=change.new_docs,
            new_chunks=change.new_chunks,
            new_vectors=change.vectors.reshape(-1, embedder.dim),
            manifest=manifest,
            calibrate=scope_calibrator([index_text(c) for c in all_chunks], embedder)
            if change.recalibrate else None,
            relabel=change.relabel,
        ),
        bm25_tokens,
        kept_chunks,
    )
    return generation


def _finish(index_dir: Path, report: RunReport, started: float) -> RunReport:
    report.seconds = round(time.perf_counter() - started, 3)
    report.finished_at = now()
    write_last_run(index_dir, report.to_dict())
    return report


def remove_docs(index_dir: Path, targets: Sequence[str], backend: Backend | None = None
                ) -> RunReport:
    """Remove documents by doc id, doc id prefix ending in '/', or source path (file or folder)."""
    started = time.perf_counter()
    index_dir = Path(index_dir)
    store = backend or Embedded(index_dir)
    report = RunReport()
    with write_lock(index_dir):
        current = store.open()
        infos = current.doc_infos()
        gone: set[str] = set()
        for t in targets:
            p = str(Path(t).expanduser().resolve()) if os.path.exists(t) or os.sep in t else None
            hit = {
                d for d, i in infos.items()
                if d == t or (t.endswith("/") and d.startswith(t))
                or (p is not None and _in_scope(i.source, [(p, True)]))
            }
            if not hit:
                report.warnings.append(f"{t}: matches no indexed document id or source")
            gone |= hit
        for w in report.warnings:
            log.warning("%s", w)
        if not gone:
            report.generation = current.generation
            return _finish(index_dir, report, started)
        keep = set(infos) - gone
        rows = current.chunk_rows_for_docs(keep) if keep else np.zeros(0, dtype=np.int64)
        kept_chunks = current.chunks(rows.tolist()) if len(rows) else []
        manifest = current.manifest.next(
            store.next_generation(), Counts(docs=len(keep), chunks=len(rows))
        )
        dim = manifest.dim
        store.write(
            current,
            NewGeneration(rows, keep, [], [], np.zeros((0, dim), np.float32), manifest),
            [tokenize(index_text(c)) for c in kept_chunks],
            kept_chunks,
        )
        current.close()
        report.removed = len(gone)
        report.generation = manifest.generation
        report.changed = True
        return _finish(index_dir, report, started)
