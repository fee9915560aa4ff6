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
    """Bring the index at ``index_dir`` up to date with ``paths``.

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
    scopes = []
    for raw in paths:
        p = safety.resolve(raw)
        scopes.append((str(p), p.is_dir()))

    with write_lock(index_dir):
        for name in clean_stale(index_dir):
            log.warning("removed %s, left by an interrupted build", name)
        current: Generation | None = None
        try:
            current = store.open()
        except IndexNotFoundError:
            current = None
        except (IndexCorruptError, IndexMismatchError):
            if not rebuild:
                raise
            current = None
        if current is not None and not rebuild:
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
        existing = current.doc_infos() if current is not None and not rebuild else {}
        # Files whose loader has changed since the index was built are re-read even when
        # their stamp is unchanged; only those whose text changed are re-embedded.
        reparse = (
            current is not None and bool(existing)
            and current.manifest.loader_version != LOADER_VERSION
        )
        if reparse:
            log.info("the loaders changed since this index was built: re-reading every file")
        by_source: dict[str, list] = defaultdict(list)
        for info in existing.values():
            by_source[info.source].append(info)

        claimed = {d: i.source for d, i in existing.items() if not _in_scope(i.source, scopes)}
        seen: set[str] = set()
        relabel: dict[str, str] = {}

        def keep(i: DocInfo) -> None:
            """An unchanged document stays, in the collection this run names."""
            seen.add(i.doc_id)
            claimed[i.doc_id] = i.source
            if collection is not None and i.collection != collection:
                relabel[i.doc_id] = collection

        # First which files to read (their stamps), then read them all (here, or fanned
        # out by ``load``), then take the results in the files' order, as one pass would.
        plan: list[tuple[SourceFile, list[DocInfo], str | None]] = []
        for src in found.files:
            infos = by_source.get(str(src.path), [])
            try:
                st = src.path.stat()
            except OSError as e:
                plan.append((src, infos, f"unreadable ({e.strerror})"))
                continue
            if not reparse and infos and all(
                i.mtime == st.st_mtime and i.size == st.st_size for i in infos
            ):
                plan.append((src, infos, UNCHANGED))
                continue
            plan.append((src, infos, None))
        results = iter((load or load_here)([src for src, _, why in plan if why is None]))

        changed_docs: list[Document] = []
        for src, infos, why in plan:
            if why == UNCHANGED:
                for i in infos:
                    keep(i)
                report.unchanged += len(infos)
                continue
            if why is not None:
                report.skipped.append((str(src.path), why))
                continue
            loaded = next(results)
            if isinstance(loaded, LoaderError):
                report.skipped.append((str(src.path),
                                       str(loaded).removeprefix(f"{src.path}: ")))
                for i in infos:  # keep what was indexed before rather than lose it
                    keep(i)
                continue
            report.warnings.extend(loaded.warnings)
            for doc in loaded.docs:
                if doc.doc_id in seen and claimed.get(doc.doc_id) == doc.source:
                    continue  # this file was read already in this run
                if claimed.get(doc.doc_id, doc.source) != doc.source:
                    alt = f"{Path(doc.root).name}/{doc.doc_id}"
                    if claimed.get(alt, doc.source) != doc.source:
                        report.warnings.append(
                            f"{doc.source}: doc id {doc.doc_id!r} is taken by "
                            f"{claimed[doc.doc_id]}; skipped"
                        )
                        continue
                    doc = replace(doc, doc_id=alt)
                claimed[doc.doc_id] = doc.source
                seen.add(doc.doc_id)
                old = existing.get(doc.doc_id)
                if old is not None and old.content_hash == doc.content_hash:
                    # Same text under a new file stamp: nothing to re-embed, and the content
                    # (so the generation) has not changed. The file is re-read next time.
                    keep(old)
                    report.unchanged += 1
                    continue
                doc = replace(doc, collection=collection or (
                    old.collection if old is not None else DEFAULT_COLLECTION))
                if old is None:
                    report.added += 1
                else:
                    report.updated += 1
                changed_docs.append(doc)

        removed = {d for d, i in existing.items() if _in_scope(i.source, scopes) and d not in seen}
        report.removed = len(removed)
        report.moved = len(relabel)
        for skipped, why in report.skipped:
            log.warning("skipped %s: %s", skipped, why)
        for w in report.warnings:
            log.warning("%s", w)

        if not (report.added or report.updated or report.removed or relabel or rebuild
                or reparse):
            report.generation = current.generation if current is not None else None
            return _finish(index_dir, report, started)

        replaced = {d.doc_id for d in changed_docs}
        keep_doc_ids = set(existing) - removed - replaced
        keep_rows = (
            current.chunk_rows_for_docs(keep_doc_ids)
            if current is not None and keep_doc_ids
            else np.zeros(0, dtype=np.int64)
        )
        new_chunks = [c for cs in (chunk or chunk_here)(
            changed_docs, token_counter(embedder), opts.chunking.target_tokens,
            opts.chunking.overlap) for c in cs]
        bar = _progress(len(new_chunks), "embedding", quiet)
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            bar.update(n)
            if progress is not None:
                progress(done, len(new_chunks))

        try:
            vectors = embedder.embed_documents([index_text(c) for c in new_chunks], step)
        finally:
            bar.close()
        report.embedded_chunks = len(new_chunks)

        kept_chunks = (
            current.chunks(keep_rows.tolist()) if current is not None and len(keep_rows) else []
        )
        all_chunks = kept_chunks + new_chunks
        bar = _progress(len(all_chunks), "BM25", quiet)
        bm25_tokens = []
        for c in all_chunks:
            bm25_tokens.append(tokenize(index_text(c)))
            bar.update(1)
        bar.close()

        generation = store.next_generation()
        n_docs = len(keep_doc_ids) + len(changed_docs)
        prev_roots = set(current.manifest.roots) if current and not rebuild else set()
        manifest = Manifest(
            generation=generation,
            created_at=now(),
            embedder=EmbedderInfo(embedder.name, embedder.dim),
            counts=Counts(docs=n_docs, chunks=len(bm25_tokens)),
            chunking=opts.chunking,
            bm25=BM25Params(tokenizer=TOKENIZER_ID),
            dense_index=opts.dense_index,
            loader_version=LOADER_VERSION,
            roots=tuple(sorted(prev_roots | {p for p, _ in scopes})),
        )
        store.write(
            current if not rebuild else None,
            NewGeneration(
                keep_rows=keep_rows,
                keep_doc_ids=keep_doc_ids,
                new_docs=changed_docs,
                new_chunks=new_chunks,
                new_vectors=vectors.reshape(-1, embedder.dim),
                manifest=manifest,
                # only moved between collections: the corpus, so its calibration, is the same
                calibrate=scope_calibrator([index_text(c) for c in all_chunks], embedder)
                if changed_docs or removed or rebuild or reparse else None,
                relabel=relabel,
            ),
            bm25_tokens,
            kept_chunks,
        )
        if current is not None:
            current.close()
        report.generation = generation
        report.changed = True
        return _finish(index_dir, report, started)


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
