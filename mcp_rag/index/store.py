"""The on-disk index: immutable generations switched atomically.

    INDEX_DIR/
      CURRENT          name of the live generation, e.g. "gen-000007" (replaced by rename)
      LOCK             flock'd by the one process that writes
      last_run.json    what the last `mcp-rag index` run did (even when it changed nothing)
      gen-000007/      manifest.json, meta.sqlite, dense.faiss, bm25.npz, bm25.json

A writer builds the next generation in a hidden temporary folder, fsyncs every file,
renames the folder into place and only then replaces CURRENT (write, fsync, rename,
fsync the folder). A reader reads CURRENT once and opens that generation, so it never
sees half an index, and a crash at any point leaves the previous generation live.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import re
import shlex
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcp_rag.errors import (
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
)
from mcp_rag.index.dense import DenseIndex
from mcp_rag.index.filters import check, doc_mask
from mcp_rag.index.generation import Generation
from mcp_rag.index.lexical import TOKENIZER_ID, BM25Index, query_languages
from mcp_rag.index.manifest import FORMAT_VERSION, Manifest
from mcp_rag.types import DEFAULT_COLLECTION, Chunk, Document

log = logging.getLogger(__name__)

CURRENT = "CURRENT"
LAST_RUN = "last_run.json"
SCOPE = "scope.json"  # the answerability calibration of a generation (index.scope)

SCHEMA = """
CREATE TABLE docs (
    doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, root TEXT NOT NULL, title TEXT NOT NULL,
    format TEXT NOT NULL, text TEXT NOT NULL, content_hash TEXT NOT NULL, mtime REAL NOT NULL,
    size INTEGER NOT NULL, sections TEXT NOT NULL, pages TEXT NOT NULL, indexed_at REAL NOT NULL,
    collection TEXT NOT NULL DEFAULT 'default'
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL,
    chunk_no INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    section TEXT NOT NULL, page INTEGER, text TEXT NOT NULL
);
CREATE INDEX chunks_doc ON chunks(doc_id);
"""


# ``IndexReader.writes`` reads at most WRITES_ROWS chunks (over it: not known), WRITES_BATCH
# at a time, stopping at the first that writes the phrase (3 ms for the 127 chunks of
# SQLite's manual that hold both "create" and "type": none writes CREATE TYPE).
WRITES_ROWS = 2000
WRITES_BATCH = 500


def build_hint(index_dir: Path) -> str:
    """The command that (re)builds the index at ``index_dir`` (PATH...: what to index)."""
    return f"mcp-rag --index {shlex.quote(str(index_dir))} index PATH..."


def rebuild_hint(index_dir: Path) -> str:
    return build_hint(index_dir) + " --rebuild"


def missing_index(index_dir: Path) -> IndexNotFoundError:
    return IndexNotFoundError(f"no index at {index_dir}. Build one with: {build_hint(index_dir)}")


def corrupt(index_dir: Path, what: str) -> IndexCorruptError:
    """The error for a damaged index: what is wrong, and the command that rebuilds it."""
    return IndexCorruptError(f"{what}. Rebuild the index with: {rebuild_hint(index_dir)}")


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a part."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


def gen_name(generation: int) -> str:
    return f"gen-{generation:06d}"


_GEN_NAME = re.compile(r"gen-\d{6}")


def read_current(index_dir: Path) -> str | None:
    """The live generation's folder name; None if there is no index yet.

    Raises:
        IndexCorruptError: CURRENT holds anything but a generation name.
    """
    try:
        raw = (Path(index_dir) / CURRENT).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise corrupt(index_dir, f"{index_dir / CURRENT} is unreadable ({e.strerror})") from e
    name = raw.decode("ascii", "replace").strip()
    if not name:
        return None
    if not _GEN_NAME.fullmatch(name):
        raise corrupt(index_dir, f"{index_dir / CURRENT} is damaged (it holds {name[:40]!r})")
    return name


@contextlib.contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's writer lock; fail at once if another process holds it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise IndexBusyError(
                f"another process is writing the index at {index_dir}; wait for it to finish"
            ) from e
        yield
    finally:
        os.close(fd)


def docs_row(d: Document, now: float) -> tuple:
    return (
        d.doc_id, d.source, d.root, d.title, d.format, d.text, d.content_hash, d.mtime, d.size,
        json.dumps(d.sections), json.dumps(d.pages), now, d.collection,
    )


def _has_collections(db: sqlite3.Connection, schema: str = "main") -> bool:
    """Whether a generation's docs table has the collection column (older ones do not:
    all their documents are in the default collection)."""
    cols = db.execute(f"PRAGMA {schema}.table_info(docs)").fetchall()
    return any(c[1] == "collection" for c in cols)


@dataclass(frozen=True)
class DocInfo:
    """What a writer needs to know of an indexed document to decide if it changed."""

    doc_id: str
    source: str
    root: str
    content_hash: str
    mtime: float
    size: int
    collection: str = DEFAULT_COLLECTION


class IndexReader:
    """One generation of the index, opened read-only. Safe to share between threads."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        name = read_current(self.index_dir)
        if name is None:
            raise missing_index(self.index_dir)
        self.path = self.index_dir / name
        if not self.path.is_dir():
            raise corrupt(self.index_dir, f"{self.index_dir / CURRENT} names {name}, which is "
                          f"missing")
        try:
            self.manifest = Manifest.read(self.path)
        except IndexCorruptError as e:
            raise corrupt(self.index_dir, str(e)) from e
        if self.manifest.format_version != FORMAT_VERSION:
            raise corrupt(self.index_dir, f"index format {self.manifest.format_version} is not "
                          f"{FORMAT_VERSION}")
        tokenizer = self.manifest.bm25.tokenizer
        if tokenizer != TOKENIZER_ID:
            raise IndexMismatchError(
                f"the index at {self.path} was built with BM25 tokenizer {tokenizer!r}, this "
                f"version uses {TOKENIZER_ID!r}. Rebuild it with: {rebuild_hint(self.index_dir)}"
            )
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._users = 0
        self._retired = False
        try:
            self._open()
        except Exception as e:  # whatever a damaged file makes numpy, faiss or sqlite raise
            if self._db is not None:
                self._db.close()
            if isinstance(e, IndexCorruptError):
                raise
            raise corrupt(
                self.index_dir, f"the index at {self.path} cannot be read ({type(e).__name__}: {e})"
            ) from e

    def _open(self) -> None:
        self.bm25 = BM25Index.load(self.path)
        self.bm25.languages = query_languages(self.manifest.counts.languages)
        self.dense = DenseIndex.load(self.path / "dense.faiss")
        uri = f"file:{self.path / 'meta.sqlite'}?mode=ro&immutable=1"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        rows = self._db.execute("SELECT doc_id FROM chunks ORDER BY row").fetchall()
        # The SQL for a document's collection: its column, or the default in older indexes.
        self._coll = "collection" if _has_collections(self._db) else f"'{DEFAULT_COLLECTION}'"
        docs = self._db.execute(
            f"SELECT doc_id, source, {self._coll} FROM docs ORDER BY doc_id").fetchall()
        self.doc_ids = [d for d, _, _ in docs]
        self.doc_sources = [s for _, s, _ in docs]
        self.doc_collections = [c for _, _, c in docs]
        ordinal = {d: i for i, d in enumerate(self.doc_ids)}
        self.calibration: dict | None = None  # built before calibration existed
        try:
            self.calibration = json.loads((self.path / SCOPE).read_text())
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as e:  # the decision falls back to its defaults
            log.warning("ignoring the answerability calibration %s: %s", self.path / SCOPE, e)
        self.row_doc = np.fromiter((ordinal[r] for (r,) in rows), dtype=np.int32, count=len(rows))
        n = len(rows)
        if not (self.bm25.n_rows == n == self.manifest.counts.chunks
                and self.dense.n_rows == self.manifest.counts.n_embedded <= n):
            raise corrupt(
                self.index_dir, f"the index at {self.path} is inconsistent ({n} chunks, "
                f"{self.bm25.n_rows} BM25 rows, {self.dense.n_rows} vectors)"
            )

    @property
    def generation(self) -> int:
        return self.manifest.generation

    @property
    def n_chunks(self) -> int:
        return len(self.row_doc)

    @property
    def n_embedded(self) -> int:
        """Chunks with a vector (rows 0..n_embedded-1); the rest are found by BM25 alone."""
        return self.dense.n_rows

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """The stored vectors of ``rows`` (each below ``n_embedded``), in their order."""
        return self.dense.rows(rows)

    def is_current(self) -> bool:
        """False once a newer generation has been switched in on disk."""
        return read_current(self.index_dir) == self.path.name

    @contextlib.contextmanager
    def in_use(self) -> Iterator[IndexReader]:
        """Hold this generation open for the duration of a query, even if it is retired."""
        with self._lock:
            self._users += 1
        try:
            yield self
        finally:
            with self._lock:
                self._users -= 1
                last = self._retired and self._users == 0
            if last:
                self.close()

    def retire(self) -> None:
        """A newer generation replaced this one: close it once no query holds it."""
        with self._lock:
            self._retired = True
            idle = self._users == 0
        if idle:
            self.close()

    @property
    def closed(self) -> bool:
        return self._db is None

    def close(self) -> None:
        """Release the database handle (idempotent); the reader cannot be queried after."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- what retrieval asks of a generation (a server backend answers the same) ---

    def restrict(self, filters: Mapping[str, str] | None) -> np.ndarray | None:
        """The rows ``filters`` let through (a mask), or None for all; checked once per query
        and handed to ``lexical`` and ``nearest``."""
        f = check(filters, lambda: list(self.collections()))
        if not f:
            return None
        return doc_mask(f, self.doc_ids, self.doc_sources, self.doc_collections)[self.row_doc]

    def lexical(self, query: str, n: int, allowed: Any = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """BM25's top ``n`` rows and scores among ``allowed`` (``restrict``)."""
        return self.bm25.search(query, n, allowed)

    def nearest(self, vector: np.ndarray, n: int, allowed: Any = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` rows nearest ``vector`` (inner product) among ``allowed``."""
        return self.dense.search(vector, n, None if allowed is None else np.flatnonzero(allowed))

    def doc_of(self, rows: Sequence[int]) -> list[int]:
        """A number per row, the same for the chunks of one document (the per-document cap)."""
        return self.row_doc[np.asarray(rows, dtype=np.int64)].tolist()

    def dfs(self, stems: Sequence[str]) -> dict[str, int]:
        return {s: self.df(s) for s in stems}

    def writes(self, stems: Sequence[str], pattern: re.Pattern[str]) -> bool | None:
        """Whether a chunk holding every one of ``stems`` (BM25 tokens) has ``pattern`` in
        its casefolded text, reading them ``WRITES_BATCH`` at a time; None when there are
        none to look for, or over ``WRITES_ROWS`` chunks to read (not known)."""
        rows = self.bm25.holding(stems)
        if not stems or len(rows) > WRITES_ROWS:
            return None
        for a in range(0, len(rows), WRITES_BATCH):
            batch = rows[a:a + WRITES_BATCH].tolist()
            marks = ",".join("?" * len(batch))
            got = self._query(f"SELECT text FROM chunks WHERE row IN ({marks})", batch)
            if any(pattern.search(text.casefold()) for (text,) in got):
                return True
        return False

    def df(self, stem: str) -> int:
        """In how many chunks a BM25 token occurs (0: the corpus never mentions it)."""
        return self.bm25.df(stem)

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            if self._db is None:
                raise IndexCorruptError(f"the index generation at {self.path} was closed")
            return self._db.execute(sql, params).fetchall()

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        """Chunks at the given rows, in the given order."""
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        got = self._query(
            f'SELECT c.row, c.doc_id, c.chunk_no, c.text, c.start, c."end", d.title, c.section, '
            f"c.page, d.source FROM chunks c JOIN docs d USING (doc_id) WHERE c.row IN ({marks})",
            [int(r) for r in rows],
        )
        by_row = {r[0]: Chunk(*r[1:]) for r in got}
        return [by_row[int(r)] for r in rows]

    def chunk_by_id(self, chunk_id: str) -> Chunk | None:
        got = self._query(
            'SELECT c.doc_id, c.chunk_no, c.text, c.start, c."end", d.title, c.section, c.page, '
            "d.source FROM chunks c JOIN docs d USING (doc_id) WHERE c.chunk_id = ?",
            [chunk_id],
        )
        return Chunk(*got[0]) if got else None

    def doc_chunks(self, doc_id: str, first: int, last: int) -> list[Chunk]:
        """The chunks ``first..last`` (chunk numbers, inclusive) of one document, in order."""
        got = self._query(
            'SELECT c.doc_id, c.chunk_no, c.text, c.start, c."end", d.title, c.section, c.page, '
            "d.source FROM chunks c JOIN docs d USING (doc_id) WHERE c.doc_id = ? AND "
            "c.chunk_no BETWEEN ? AND ? ORDER BY c.chunk_no",
            [doc_id, first, last],
        )
        return [Chunk(*r) for r in got]

    def doc_hashes(self) -> dict[str, str]:
        """Every document's content hash (its first 64 bits: enough to tell a change, a
        quarter of the memory on a large index), by id: what a new generation changed."""
        return dict(self._query("SELECT doc_id, substr(content_hash, 1, 16) FROM docs"))

    def document(self, doc_id: str) -> Document | None:
        got = self._query(
            "SELECT doc_id, source, title, text, root, format, sections, pages, content_hash, "
            f"mtime, size, {self._coll} FROM docs WHERE doc_id = ?",
            [doc_id],
        )
        if not got:
            return None
        r = got[0]
        sections = tuple(tuple(x) for x in json.loads(r[6]))
        pages = tuple(tuple(x) for x in json.loads(r[7]))
        return Document(r[0], r[1], r[2], r[3], r[4], r[5], sections, pages, r[8], r[9], r[10],
                        r[11])

    def documents(self, after: str | None = None, limit: int | None = None) -> list[dict]:
        """Documents in id order: id, source, title, format and chunk count.

        ``after`` and ``limit`` page through them (the ids after ``after``, at most ``limit``).
        """
        got = self._query(
            f"SELECT d.doc_id, d.source, d.title, d.format, {self._coll}, COUNT(c.row) "
            "FROM docs d LEFT JOIN chunks c USING (doc_id) WHERE d.doc_id > ? "
            "GROUP BY d.doc_id ORDER BY d.doc_id LIMIT ?",
            ["" if after is None else after, -1 if limit is None else limit],
        )
        return [
            {"doc_id": a, "source": b, "title": t, "format": f, "collection": c, "chunks": n}
            for a, b, t, f, c, n in got
        ]

    @functools.cached_property
    def _collection_counts(self) -> dict[str, tuple[int, int]]:
        docs = Counter(self.doc_collections)
        chunks = Counter(np.asarray(self.doc_collections, dtype=object)[self.row_doc].tolist()) \
            if len(self.row_doc) else Counter()
        return {c: (docs[c], chunks[c]) for c in sorted(docs)}

    def collections(self) -> dict[str, tuple[int, int]]:
        """Each collection's (documents, chunks), by name."""
        return dict(self._collection_counts)

    def doc_infos(self) -> dict[str, DocInfo]:
        got = self._query("SELECT doc_id, source, root, content_hash, mtime, size, "
                          f"{self._coll} FROM docs")
        return {r[0]: DocInfo(*r) for r in got}

    def chunk_rows_for_docs(self, doc_ids: set[str]) -> np.ndarray:
        """Rows (ascending) whose chunk belongs to one of ``doc_ids``."""
        mask = np.zeros(len(self.doc_ids), dtype=bool)
        for i, d in enumerate(self.doc_ids):
            mask[i] = d in doc_ids
        return np.flatnonzero(mask[self.row_doc]) if len(self.row_doc) else np.zeros(0, np.int64)


@dataclass
class NewGeneration:
    """Everything the next generation holds besides what it keeps from the current one."""

    keep_rows: np.ndarray  # rows of the current generation to carry over, ascending
    keep_doc_ids: set[str]
    new_docs: list[Document]
    new_chunks: list[Chunk]
    # The vectors of the rows after the kept ones that have one, in row order: of new
    # chunks, or first of kept chunks the current generation had not embedded yet (a
    # prefix: ``manifest.counts.embedded`` rows in all have a vector).
    new_vectors: np.ndarray
    manifest: Manifest
    # Calibrates the answerability decision on the new generation (index.scope.calibrate);
    # None keeps the current generation's calibration (a removal, which loads no model).
    calibrate: Callable[[BM25Index, DenseIndex], dict] | None = None
    relabel: dict[str, str] = field(default_factory=dict)  # kept doc id -> its new collection

    def kept_vectors(self, current: Generation | None) -> np.ndarray:
        """The vectors of the kept rows that have one (a prefix of them: rows below the
        current generation's ``n_embedded``)."""
        dim = self.manifest.dim
        if current is None or not len(self.keep_rows):
            return np.zeros((0, dim), dtype=np.float32)
        rows = self.keep_rows[self.keep_rows < current.n_embedded]
        return current.vectors(rows.tolist()) if len(rows) else np.zeros((0, dim), np.float32)

    def bm25(self, tokens: list[list[str]]) -> BM25Index:
        """The BM25 statistics of every chunk's tokens, with the manifest's parameters."""
        p = self.manifest.bm25
        return BM25Index.build(tokens, k1=p.k1, b=p.b, epsilon=p.epsilon)

    def calibration(self, bm25: BM25Index, dense: Callable[[], DenseIndex],
                    live: dict | None) -> dict | None:
        """The answerability calibration it stores: made anew when the corpus changed
        (``dense()`` builds the vectors' index only then), else the live generation's."""
        if self.calibrate is None:
            return live
        return {**self.calibrate(bm25, dense()), "generation": self.manifest.generation}


def write_generation(
    index_dir: Path,
    current: IndexReader | None,
    gen: NewGeneration,
    bm25_tokens: list[list[str]],
) -> Path:
    """Write a generation beside the current one and switch CURRENT to it atomically.

    ``bm25_tokens`` are the tokens of every row of the new generation, in row order
    (kept rows first, then new chunks).
    """
    return _switch_in(index_dir, gen.manifest.generation, current,
                      lambda tmp: _fill(tmp, current, gen, bm25_tokens))


def _switch_in(index_dir: Path, generation: int, current: IndexReader | None,
               fill: Callable[[Path], None]) -> Path:
    """``fill`` a new folder, make it generation ``generation`` and switch CURRENT to it
    atomically; older generations than ``current`` are pruned."""
    final = index_dir / gen_name(generation)
    tmp = index_dir / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        fill(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written is left behind
        raise
    for f in tmp.iterdir():
        fsync_path(f)
    fsync_path(tmp)
    if final.exists():  # left by a crash after the rename but before CURRENT moved
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_path(index_dir)
    atomic_write_text(index_dir / CURRENT, final.name + "\n")
    _prune(index_dir, keep={final.name, current.path.name if current else ""})
    return final


def _fill(
    tmp: Path, current: IndexReader | None, gen: NewGeneration, bm25_tokens: list[list[str]]
) -> None:
    """Write every file of the new generation into the folder ``tmp``."""
    m = gen.manifest
    now = time.time()
    db = sqlite3.connect(tmp / "meta.sqlite")
    try:
        db.executescript(SCHEMA)
        n_keep = len(gen.keep_rows)
        if current is not None:
            db.execute("ATTACH DATABASE ? AS old", (str(current.path / "meta.sqlite"),))
            db.execute("CREATE TEMP TABLE keep_docs (doc_id TEXT PRIMARY KEY)")
            db.executemany("INSERT INTO keep_docs VALUES (?)", [(d,) for d in gen.keep_doc_ids])
            fill = "*" if _has_collections(db, "old") else f"*, '{DEFAULT_COLLECTION}'"
            db.execute(f"INSERT INTO docs SELECT {fill} FROM old.docs WHERE doc_id IN keep_docs")
            db.executemany("UPDATE docs SET collection = ? WHERE doc_id = ?",
                           [(c, d) for d, c in gen.relabel.items()])
            # Kept chunks are renumbered 0..n_keep-1 in their old order.
            db.execute(
                "INSERT INTO chunks SELECT ROW_NUMBER() OVER (ORDER BY row) - 1, chunk_id, doc_id, "
                'chunk_no, start, "end", section, page, text FROM old.chunks '
                "WHERE doc_id IN keep_docs ORDER BY row"
            )
            got = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            if got != n_keep:
                raise IndexCorruptError(f"kept {got} chunks, expected {n_keep}")
            db.commit()
            db.execute("DETACH DATABASE old")
        db.executemany(
            "INSERT INTO docs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [docs_row(d, now) for d in gen.new_docs],
        )
        db.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (n_keep + i, c.chunk_id, c.doc_id, c.chunk_no, c.start, c.end, c.section, c.page,
                 c.text)
                for i, c in enumerate(gen.new_chunks)
            ],
        )
        db.commit()
    finally:
        db.close()

    vectors = np.concatenate([gen.kept_vectors(current), gen.new_vectors]).astype(np.float32)
    dense = DenseIndex.build(vectors, m.dense_index)
    dense.save(tmp / "dense.faiss")
    bm25 = gen.bm25(bm25_tokens)
    bm25.save(tmp)
    scope = gen.calibration(bm25, lambda: dense,
                            current.calibration if current is not None else None)
    if scope is not None:
        (tmp / SCOPE).write_text(json.dumps(scope, indent=1))
    m.write(tmp)


def write_vectors(index_dir: Path, current: IndexReader, vectors: np.ndarray,
                  manifest: Manifest,
                  calibrate: Callable[[BM25Index, DenseIndex], dict] | None) -> Path:
    """Write a generation that is ``current`` with ``vectors`` appended to its dense side
    (rows ``current.n_embedded`` on) and switch CURRENT to it, as ``write_generation``
    does. The documents, chunks and BM25 postings are ``current``'s files, hard-linked
    (copied where the file system cannot link); ``calibrate`` makes the calibration anew
    (None keeps it)."""
    def fill(tmp: Path) -> None:
        for f in current.path.iterdir():
            if f.name in ("dense.faiss", SCOPE, "manifest.json"):
                continue
            try:
                os.link(f, tmp / f.name)
            except OSError:
                shutil.copy2(f, tmp / f.name)
        dense = DenseIndex.load(current.path / "dense.faiss")
        dense.add(vectors)
        dense.save(tmp / "dense.faiss")
        scope = ({**calibrate(current.bm25, dense), "generation": manifest.generation}
                 if calibrate is not None else current.calibration)
        if scope is not None:
            (tmp / SCOPE).write_text(json.dumps(scope, indent=1))
        manifest.write(tmp)

    return _switch_in(index_dir, manifest.generation, current, fill)


def _prune(index_dir: Path, keep: set[str]) -> None:
    """Delete generations older than the previous one (readers may still hold the previous)."""
    for p in index_dir.iterdir():
        if p.name.startswith("gen-") and p.is_dir() and p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)


def clean_stale(index_dir: Path) -> list[str]:
    """Remove temporary folders that a crashed writer left behind (call under the lock)."""
    removed = []
    for p in index_dir.glob(".gen-*.tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p.name)
    return removed


def read_last_run(index_dir: Path) -> dict | None:
    try:
        return json.loads((Path(index_dir) / LAST_RUN).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_last_run(index_dir: Path, run: dict) -> None:
    atomic_write_text(Path(index_dir) / LAST_RUN, json.dumps(run, indent=2))
