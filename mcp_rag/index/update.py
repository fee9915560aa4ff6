"""Incremental indexing: discover, load, chunk and embed what changed, write a generation."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mcp_rag.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    LoaderError,
    NotIndexed,
)
from mcp_rag.index.backend import Backend, Embedded
from mcp_rag.index.lexical import TOKENIZER_ID, analyse
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
    write_vectors,
)
from mcp_rag.ingest import safety
from mcp_rag.ingest.chunking import chunk_document, index_text
from mcp_rag.ingest.discover import Discovery, SourceFile, discover, format_suffix
from mcp_rag.ingest.loaders import Loaded, load_file, loader_version, read_differently
from mcp_rag.ingest.ocr import is_label as ocr_label
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
    embedded_chunks: int = 0  # chunks the model embedded in this run
    reused_chunks: int = 0  # chunks that took the vector of the same text, embedded before
    ocr_pages: int = 0  # pages of the files read in this run that were read by OCR
    generation: int | None = None
    coverage: float = 1.0  # share of the index's chunks with a vector when the run ended
    changed: bool = False
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    finished_at: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["skipped"] = [{"path": p, "reason": r} for p, r in self.skipped]
        return d


@dataclass
class Tally:
    """How far the run under way has got, for another thread to read (a server that says
    "reading file 120 of 3,000" while it builds its first index). Each field is written by
    the indexing thread alone; a reader may see one step stale, never a torn value."""

    files: int | None = None  # files this run reads (changed or new), once it knows
    files_read: int = 0
    chunks: int | None = None  # chunks this run embeds, once they are cut
    chunks_embedded: int = 0
    running: bool = False
    error: str | None = None  # why the last run failed

    def start(self) -> None:
        self.files = self.chunks = None
        self.files_read = self.chunks_embedded = 0
        self.running, self.error = True, None

    def line(self) -> str:
        """Where the run is, in words: "reading file 120 of 3,000" or "... embedding"."""
        if self.error is not None:
            return f"the last indexing run failed: {self.error}"
        if not self.running:
            return "starting"
        if self.files is None:
            return "looking for files"
        if self.chunks is None:
            return f"reading file {self.files_read:,} of {self.files:,}"
        return (f"read {self.files:,} files; embedding passage {self.chunks_embedded:,} of "
                f"{self.chunks:,}")


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


FIRST_BATCH = 1024  # chunks embedded before a big run's first vectors are switched in
MAX_BATCH = 8192  # ... then batches double up to this (~4 min of bge-small on 2 cores)


UNCHANGED = "unchanged"  # a plan's mark for a file whose stamp says it did not change
Loader = Callable[[list[SourceFile]], list["Loaded | LoaderError"]]


def load_here(files: list[SourceFile], tally: Tally | None = None) -> list[Loaded | LoaderError]:
    """Each file's documents, or why it cannot be read, in this process (counted in
    ``tally`` as they are read)."""
    out: list[Loaded | LoaderError] = []
    for f in files:
        try:
            out.append(load_file(f))
        except LoaderError as e:
            out.append(e)
        if tally is not None:
            tally.files_read += 1
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
    progressive: bool = True,
    first_batch: int = FIRST_BATCH,
    stop: threading.Event | None = None,
    tally: Tally | None = None,
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

    A chunk whose text (as the retrievers read it: ``index_text``) was embedded before,
    in the live generation or earlier in this run, takes that vector: copies, moved files
    and the unchanged parts of an edited document are not embedded again.

    ``progressive`` (the embedded backend): when more than ``first_batch`` chunks are to
    be embedded, the new generation is written first with the vectors it already has
    (searchable by BM25 everywhere, by vectors where they exist), then the rest arrive
    in batches of ``first_batch``, doubling, each switched in as a generation with the
    vectors appended. ``stop`` ends a run between batches; the next run goes on where
    it stopped (an index whose dense side is partial is completed by any run).
    ``tally`` counts the files read and the chunks embedded as the run goes.
    """
    started = time.perf_counter()
    if tally is not None:
        tally.start()
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
        plan, changed_docs, removed, reread = _read_files(
            current, existing, found, scopes, collection, load, tally, report)

        partial = current is not None and not rebuild and current.n_embedded < current.n_chunks
        if not (report.added or report.updated or report.removed or plan.relabel or rebuild
                or reread or partial):
            report.generation = current.generation if current is not None else None
            return _finish(index_dir, report, started)
        new_chunks = [c for cs in (chunk or chunk_here)(
            changed_docs, token_counter(embedder), opts.chunking.target_tokens,
            opts.chunking.overlap) for c in cs]
        keep_doc_ids = set(existing) - removed - {d.doc_id for d in changed_docs}
        base = current if not rebuild else None
        kept = _Kept.of(base, keep_doc_ids)
        pending = _Pending(kept.without_vectors + new_chunks, embedder.dim,
                           _known(base, kept, removed | {d.doc_id for d in changed_docs}))
        report.reused_chunks = pending.reused
        change = _Change(keep_doc_ids, changed_docs, new_chunks, pending, plan.relabel,
                         recalibrate=bool(changed_docs or removed or rebuild or reread
                                          or partial), kept=kept)
        batches = _batches(len(pending.todo), first_batch
                           if progressive and store.name == "embedded" else None)
        if len(batches) > 1:  # the first generation before the model has run
            batches.insert(0, 0)
        if tally is not None:
            tally.chunks = len(pending.todo)
        embed = _Embedding(pending, embedder, quiet, progress, tally)
        try:
            _embed_and_write(store, base, opts, embedder, scopes, quiet, change, embed,
                             batches, stop, report)
        finally:
            embed.close()
            change.close()
            if current is not None:
                current.close()
        report.coverage = change.coverage
        report.changed = True
        return _finish(index_dir, report, started)


def _read_files(
    current: Generation | None, existing: dict[str, DocInfo], found: Discovery,
    scopes: list[tuple[str, bool]], collection: str | None, load: Loader | None,
    tally: Tally | None, report: RunReport,
) -> tuple[_Plan, list[Document], set[str], bool]:
    """``index_paths``'s plan and load: the plan, the documents that are new or changed,
    the ids of those gone from the scanned scopes, and whether formats are read again.

    First which files to read (their stamps), then read them all (here, or fanned out by
    ``load``), then take the results in the files' order, as one pass would."""
    reparse = _loaders_changed(current, existing)  # formats read again (None: all)
    plan = _Plan(existing, scopes, collection)
    rows = plan.stamps(found.files, reparse)
    to_read = [src for src, _, why in rows if why is None]
    if tally is not None:
        tally.files = len(to_read)
    loaded = load(to_read) if load is not None else load_here(to_read, tally)
    changed_docs = plan.take(rows, loaded, report)
    removed = {d for d, i in existing.items() if _in_scope(i.source, scopes)
               and d not in plan.seen}
    report.removed, report.moved = len(removed), len(plan.relabel)
    _log_skips(report)
    return plan, changed_docs, removed, reparse is None or bool(reparse)


def _embed_and_write(
    store: Backend, base: Generation | None, opts: BuildOptions, embedder: Embedder,
    scopes: list[tuple[str, bool]], quiet: bool, change: _Change, embed: _Embedding,
    batches: list[int], stop: threading.Event | None, report: RunReport,
) -> None:
    """``index_paths``'s embed and write: each batch embedded, the first written as a new
    generation and the rest appended to it, until done or ``stop`` is set between two."""
    todo = len(embed.pending.todo)
    for i, n in enumerate(batches):
        embed.next(n)
        if i == 0:
            report.generation = _write(store, base, opts, embedder, scopes, quiet, change)
        else:
            report.generation = _append(store, change, embedder)
        report.embedded_chunks = embed.done
        if stop is not None and stop.is_set() and i < len(batches) - 1:
            log.info("indexing stopped with %d of %d chunks still to embed; the next run "
                     "goes on", todo - embed.done, todo)
            break


def _loaders_changed(current: Generation | None, existing: dict[str, DocInfo]
                     ) -> frozenset[str] | None:
    """The formats whose files are re-read even when their stamps are unchanged, because
    the loaders read them differently since the index was built (only those whose text
    changed are re-embedded): empty for none, None for every file."""
    if current is None or not existing:
        return frozenset()
    formats = read_differently(current.manifest.loader_version)
    if formats is None:
        log.info("the loaders changed since this index was built: re-reading every file")
    elif formats:
        log.info("the loaders read %s files differently since this index was built: "
                 "re-reading them", ", ".join(sorted(formats)))
    return formats


# What OCR says of an image without a page of text, its count of characters set aside:
# the same reason for every such picture.
_PICTURE = re.compile(r"^\d+ characters of text found in the image")
SHOWN_SKIPS = 3  # files named in the line for a reason many share


def _log_skips(report: RunReport) -> None:
    """One warning a reason. A reason of one file's own (it could not be read) names the
    file; a reason several share (a type the loaders do not read, a picture without a page
    of text, the OCR extra missing) says how many and names the first ``SHOWN_SKIPS``,
    each file logged at INFO: a documentation folder's 67 icons and 9 style sheets and
    drawings were 76 warnings. The run's report (``--json``) lists every file."""
    by_reason: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for skipped, why in report.skipped:
        by_reason[_PICTURE.sub("little or no text found in the image", why)].append(
            (skipped, why))
    for reason, files in by_reason.items():
        if len(files) == 1:
            log.warning("skipped %s: %s", *files[0])
            continue
        for skipped, why in files:
            log.info("skipped %s: %s", skipped, why)
        shown = ", ".join(f for f, _ in files[:SHOWN_SKIPS])
        log.warning("skipped %d files: %s (%s%s)", len(files), reason, shown,
                    ", ..." if len(files) > SHOWN_SKIPS else "")
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

    def stamps(self, files: Sequence[SourceFile], reparse: frozenset[str] | None
               ) -> list[tuple[SourceFile, list[DocInfo], str | None]]:
        """Each file with its documents as indexed and why it is not read (``UNCHANGED``,
        unreadable), or None: it is read (also when unchanged, in a format of ``reparse``,
        or any format when it is None)."""
        rows: list[tuple[SourceFile, list[DocInfo], str | None]] = []
        for src in files:
            infos = self.by_source.get(str(src.path), [])
            try:
                st = src.path.stat()
            except OSError as e:
                rows.append((src, infos, f"unreadable ({e.strerror})"))
                continue
            again = reparse is None or format_suffix(src.path) in reparse
            if not again and infos and all(
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
                if not isinstance(got, NotIndexed):  # unreadable now: keep what was indexed
                    for i in infos:
                        self.keep(i)
                continue
            report.warnings.extend(got.warnings)
            report.ocr_pages += got.ocr_pages
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


def _batches(todo: int, first: int | None) -> list[int]:
    """How many chunks each batch embeds: all at once (``first`` None, or no more than
    ``first``), else ``first``, doubling up to ``MAX_BATCH``."""
    if first is None or todo <= first:
        return [todo]
    out, size = [], max(1, first)
    while todo > 0:
        out.append(min(size, todo))
        todo -= out[-1]
        size = min(2 * size, max(MAX_BATCH, first))
    return out


def text_key(text: str) -> bytes:
    """What identifies a chunk's vector within an index (one embedder): its text's hash."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


@dataclass
class _Kept:
    """The live generation's rows that the next one keeps, and which of them have a
    vector (a prefix: rows below the live generation's ``n_embedded``)."""

    rows: np.ndarray
    chunks: list[Chunk]
    n_with_vectors: int

    @classmethod
    def of(cls, current: Generation | None, doc_ids: set[str]) -> _Kept:
        if current is None or not doc_ids:
            return cls(np.zeros(0, dtype=np.int64), [], 0)
        rows = current.chunk_rows_for_docs(doc_ids)
        chunks = current.chunks(rows.tolist()) if len(rows) else []
        return cls(rows, chunks, int((rows < current.n_embedded).sum()))

    @property
    def without_vectors(self) -> list[Chunk]:
        return self.chunks[self.n_with_vectors:]


def _known(current: Generation | None, kept: _Kept, gone: set[str]
           ) -> tuple[Generation | None, dict[bytes, int]]:
    """The live generation and the row of each text it has a vector for: kept chunks and
    the old chunks of documents that changed, moved or went (a moved file's text)."""
    if current is None:
        return None, {}
    known: dict[bytes, int] = {}
    old_rows = [int(r) for r in (current.chunk_rows_for_docs(gone & set(current.doc_ids))
                                 if gone else []) if r < current.n_embedded]
    pairs = [*zip(kept.rows[:kept.n_with_vectors].tolist(), kept.chunks, strict=False),
             *zip(old_rows, current.chunks(old_rows) if old_rows else [], strict=True)]
    for row, c in pairs:
        known.setdefault(text_key(index_text(c)), int(row))
    return current, known


class _Pending:
    """The vectors the new generation still needs (rows after the kept ones that have
    one): taken from the live generation where it embedded the same text, from the first
    chunk of the run with the same text, or embedded (``todo``, in row order)."""

    def __init__(self, chunks: list[Chunk], dim: int,
                 known: tuple[Generation | None, dict[bytes, int]]) -> None:
        current, rows = known
        self.chunks = chunks
        self.vectors = np.zeros((len(chunks), dim), dtype=np.float32)
        self.ready = np.zeros(len(chunks), dtype=bool)
        self.todo: list[int] = []
        self.copies: dict[int, list[int]] = defaultdict(list)
        first: dict[bytes, int] = {}
        taken: list[tuple[int, int]] = []
        for i, c in enumerate(chunks):
            key = text_key(index_text(c))
            if key in rows:
                taken.append((i, rows[key]))
            elif key in first:
                self.copies[first[key]].append(i)
            else:
                first[key] = i
                self.todo.append(i)
        if taken and current is not None:
            at = [i for i, _ in taken]
            self.vectors[at] = current.vectors([r for _, r in taken])
            self.ready[at] = True
        self.reused = len(chunks) - len(self.todo)

    def fill(self, at: list[int], vectors: np.ndarray) -> None:
        for i, v in zip(at, vectors, strict=True):
            for j in (i, *self.copies.get(i, ())):
                self.vectors[j] = v
                self.ready[j] = True

    def prefix(self) -> int:
        """How many leading chunks have their vector."""
        missing = np.flatnonzero(~self.ready)
        return int(missing[0]) if len(missing) else len(self.chunks)


class _Embedding:
    """Embeds a run's ``todo`` chunks batch by batch, with a progress bar on stderr and
    ``progress(done, total)``."""

    def __init__(self, pending: _Pending, embedder: Embedder, quiet: bool,
                 progress: Callable[[int, int], None] | None,
                 tally: Tally | None = None) -> None:
        self.pending, self.embedder, self.progress, self.tally = (pending, embedder, progress,
                                                                  tally)
        self.bar = _progress(len(pending.todo), "embedding", quiet)
        self.done = 0
        self._shown = 0

    def _step(self, n: int) -> None:
        self._shown += n
        self.bar.update(n)
        if self.tally is not None:
            self.tally.chunks_embedded = self._shown
        if self.progress is not None:
            self.progress(self._shown, len(self.pending.todo))

    def next(self, n: int) -> None:
        at = self.pending.todo[self.done:self.done + n]
        if at:
            texts = [index_text(self.pending.chunks[i]) for i in at]
            self.pending.fill(at, self.embedder.embed_documents(texts, self._step))
        self.done += len(at)

    def close(self) -> None:
        self.bar.close()


@dataclass
class _Change:
    """What a run changes: documents kept, documents (re-)embedded, collections moved;
    which vectors the generation written last holds (``written``: after the kept ones)."""

    keep_doc_ids: set[str]
    new_docs: list[Document]
    new_chunks: list[Chunk]
    pending: _Pending
    relabel: dict[str, str]
    recalibrate: bool  # the corpus changed (a move between collections alone does not)
    kept: _Kept = field(default_factory=lambda: _Kept(np.zeros(0, np.int64), [], 0))
    written: int = 0
    texts: list[str] = field(default_factory=list)  # every chunk's index_text, in row order
    languages: dict[str, int] | None = None  # passages by language, as BM25 analysed them
    ocr_pages: int | None = None  # pages read by OCR, of every document in the generation

    @property
    def n_chunks(self) -> int:
        return len(self.kept.chunks) + len(self.new_chunks)

    @property
    def n_embedded(self) -> int:
        return self.kept.n_with_vectors + self.written

    @property
    def coverage(self) -> float:
        return self.n_embedded / self.n_chunks if self.n_chunks else 1.0

    def counts(self) -> Counts:
        embedded = self.n_embedded
        return Counts(docs=len(self.keep_doc_ids) + len(self.new_docs), chunks=self.n_chunks,
                      embedded=None if embedded == self.n_chunks else embedded,
                      languages=self.languages, ocr_pages=self.ocr_pages)

    def calibrator(self, embedder: Embedder) -> Callable | None:
        """What calibrates the answerability decision on the generation about to be
        written, once every chunk has a vector; None keeps the live calibration (nothing
        changed, or vectors still to come: a first index then decides on the default
        one). Calibrated on the embedded part, the scale drifted with what came first
        (CACM at 30 %: dense_high 0.84 against 0.77 complete, 15 of 52 own questions
        refused against 4; research/partial_coverage.py)."""
        if not self.recalibrate or self.n_embedded < self.n_chunks:
            return None
        return scope_calibrator(self.texts, embedder)

    def close(self) -> None:
        self.texts.clear()


def _append(store: Backend, change: _Change, embedder: Embedder) -> int:
    """Switch in a generation that is the live one with the vectors embedded since it
    was written appended (calibrated anew once every chunk has one); its number."""
    assert isinstance(store, Embedded)  # progressive runs are the embedded backend's
    end = change.pending.prefix()
    fresh = change.pending.vectors[change.written:end]
    change.written = end
    current = store.open()
    try:
        generation = store.next_generation()
        write_vectors(store.index_dir, current, fresh,
                      current.manifest.next(generation, change.counts()),
                      change.calibrator(embedder))
    finally:
        current.close()
    return generation


def _analysed(texts: list[str], bar=None) -> tuple[list[list[str]], dict[str, int]]:
    """Each passage's BM25 tokens, analysed by its language, and the passages by language."""
    tokens: list[list[str]] = []
    languages: Counter[str] = Counter()
    for text in texts:
        lang, toks = analyse(text)
        tokens.append(toks)
        languages[lang] += 1
        if bar is not None:
            bar.update(1)
    return tokens, dict(languages)


def _ocr_pages(chunks: list[Chunk]) -> int | None:
    """How many pages of these chunks' documents were read by OCR (None: none)."""
    return len({(c.doc_id, c.section) for c in chunks if ocr_label(c.section)}) or None


def _write(store: Backend, current: Generation | None, opts: BuildOptions,
           embedder: Embedder, scopes: Sequence[tuple[str, bool]], quiet: bool,
           change: _Change) -> int:
    """Write the next generation (BM25 over every chunk, the manifest, the calibration)
    beside ``current`` (None: from scratch) and switch to it; its number."""
    keep_rows = change.kept.rows
    kept_chunks = change.kept.chunks
    all_chunks = kept_chunks + change.new_chunks
    change.texts = [index_text(c) for c in all_chunks]
    bar = _progress(len(all_chunks), "BM25", quiet)
    bm25_tokens, languages = _analysed(change.texts, bar)
    change.languages, change.ocr_pages = languages, _ocr_pages(all_chunks)
    bar.close()
    change.written = change.pending.prefix()
    generation = store.next_generation()
    prev_roots = set(current.manifest.roots) if current is not None else set()
    manifest = Manifest(
        generation=generation,
        created_at=now(),
        embedder=EmbedderInfo(embedder.name, embedder.dim),
        counts=change.counts(),
        chunking=opts.chunking,
        bm25=BM25Params(tokenizer=TOKENIZER_ID),
        dense_index=opts.dense_index,
        loader_version=loader_version(),
        roots=tuple(sorted(prev_roots | {p for p, _ in scopes})),
    )
    store.write(
        current,
        NewGeneration(
            keep_rows=keep_rows,
            keep_doc_ids=change.keep_doc_ids,
            new_docs=change.new_docs,
            new_chunks=change.new_chunks,
            new_vectors=change.pending.vectors[:change.written],
            manifest=manifest,
            calibrate=change.calibrator(embedder),
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
        tokens, languages = _analysed([index_text(c) for c in kept_chunks])
        manifest = current.manifest.next(
            store.next_generation(), Counts(docs=len(keep), chunks=len(rows),
                                            languages=languages,
                                            ocr_pages=_ocr_pages(kept_chunks))
        )
        dim = manifest.dim
        store.write(
            current,
            NewGeneration(rows, keep, [], [], np.zeros((0, dim), np.float32), manifest),
            tokens,
            kept_chunks,
        )
        current.close()
        report.removed = len(gone)
        report.generation = manifest.generation
        report.changed = True
        return _finish(index_dir, report, started)
