"""The index on Milvus (optional extra ``[milvus]``): the same generations, on a server.

Each generation ``g`` of an index named ``ns`` is four collections:

- ``{ns}_g{g}_chunks``: one row per chunk (``row`` 0..n-1, the primary key, as in the
  embedded index), the chunk's text and citation fields, its document's id, source and
  collection (what filters read), the 384-d vector (HNSW, inner product) and a sparse BM25
  vector that Milvus's BM25 function makes from ``tokens``: our own tokenizer's tokens,
  written so that Milvus's standard tokenizer splits them back into exactly those
  (``as_words``), so both backends score the same words.
- ``{ns}_g{g}_docs``: each document's text (in parts: Milvus strings hold 64 KB), title,
  sections and pages, so ``rag://documents/...`` serves the text spans point into.
- ``{ns}_g{g}_vocab``: every BM25 token's document frequency (the answerability
  decision's "words the corpus never mentions").
- ``{ns}_g{g}_meta``: the manifest and the answerability calibration.

The alias ``{ns}_current`` names the live generation's meta collection: a new generation
is written beside it and switched in with one ``alter_alias``, so a reader never sees a
half-written generation and a writer that dies leaves the old one serving. Milvus needs a
vector in every collection; those that have none of their own carry a 2-d zero vector.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcp_rag.errors import (
    BackendUnavailableError,
    IndexCorruptError,
    IndexNotFoundError,
    QueryError,
)
from mcp_rag.index.filters import check
from mcp_rag.index.lexical import query_languages, tokenize_query
from mcp_rag.index.manifest import Manifest
from mcp_rag.index.store import DocInfo, NewGeneration
from mcp_rag.types import DEFAULT_COLLECTION, Chunk, Document

log = logging.getLogger(__name__)

INSTALL = "pip install 'mcp-rag-server[milvus]'"
PART = 16_000  # characters of a document's text per row (4 bytes each fit 64 KB)
BATCH = 500  # rows per insert or query
STR = 65_535
_NAME = re.compile(r"[^A-Za-z0-9_]")


def namespace(index: Path | str) -> str:
    """The collections' prefix for an index: its folder's name, in the characters Milvus
    allows (letters, digits, underscores; starting with a letter)."""
    name = _NAME.sub("_", Path(index).name) or "default"
    return f"mcp_rag_{name}"


def connect(uri: str, token: str | None = None, db_name: str = "default") -> Any:
    """A MilvusClient, or a clear error naming the setting to fix."""
    try:
        from pymilvus import MilvusClient
    except ImportError as e:
        raise QueryError(f"the Milvus backend needs pymilvus. Install it with: {INSTALL}") from e
    try:
        return MilvusClient(uri=uri, token=token or "", db_name=db_name, timeout=10)
    except Exception as e:  # the client raises its own types for a bad URI, token or db
        raise QueryError(
            f"cannot reach Milvus at MCP_RAG_MILVUS_URI={uri!r} (db {db_name!r}): "
            f"{type(e).__name__}: {e}. Check MCP_RAG_MILVUS_URI, MCP_RAG_MILVUS_TOKEN and "
            f"MCP_RAG_MILVUS_DB."
        ) from e


_NON_WORD = re.compile(r"\W")


def as_words(tokens: list[str]) -> str:
    """Our tokens as text Milvus's standard tokenizer splits back into exactly them: each
    on its own, its inner punctuation (``kb-err-2847``, ``3.14``) made ``_``, which the
    tokenizer keeps inside a word. No lowercasing or stemming is left for Milvus to do."""
    return " ".join(_NON_WORD.sub("_", t) for t in tokens)


def _quote(s: str | list[str]) -> str:
    """A string (or list) literal for a Milvus boolean expression. Non-ASCII characters
    stay as they are: Milvus reads no \\u escapes."""
    return json.dumps(s, ensure_ascii=False)


def _expr(filters: Mapping[str, str]) -> str | None:
    parts = []
    if src := filters.get("source"):
        # Milvus LIKE has % and _; a glob has * and ?. Escape the literal ones first.
        like = src.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(f"source like {_quote(like.replace('*', '%').replace('?', '_'))}")
    if prefix := filters.get("doc_id_prefix"):
        esc = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append(f"doc_id like {_quote(esc + '%')}")
    if name := filters.get("collection"):
        parts.append(f"collection == {_quote(name)}")
    return " and ".join(parts) or None


@dataclass
class Names:
    chunks: str
    docs: str
    vocab: str
    meta: str

    @classmethod
    def of(cls, ns: str, generation: int) -> Names:
        g = f"{ns}_g{generation:06d}"
        return cls(f"{g}_chunks", f"{g}_docs", f"{g}_vocab", f"{g}_meta")

    def all(self) -> list[str]:
        return [self.chunks, self.docs, self.vocab, self.meta]


def alias(ns: str) -> str:
    return f"{ns}_current"


def current_generation(client: Any, ns: str) -> int | None:
    """The live generation's number, from what the alias points at; None if there is none."""
    if alias(ns) not in (client.list_aliases() or {}).get("aliases", []):
        return None  # (asking for a missing alias logs a traceback in pymilvus)
    got = client.describe_alias(alias(ns))
    name = got.get("collection_name", "") if isinstance(got, dict) else ""
    m = re.search(r"_g(\d+)_meta$", name)
    return int(m.group(1)) if m else None


CHUNK_FIELDS = ["row", "chunk_id", "doc_id", "chunk_no", "start", "end", "section", "page",
                "text", "title", "source", "collection"]


class _Answering:
    """The client, with every call's failure turned into one error that says which server
    did not answer and which setting names it (a tool error the model can read)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._client, name)

        def call(*a: Any, **k: Any) -> Any:
            try:
                return fn(*a, **k)
            except Exception as e:
                raise BackendUnavailableError(
                    f"the Milvus server (MCP_RAG_MILVUS_URI) failed on {name}: "
                    f"{type(e).__name__}: {str(e)[:300]}. Check that it is running; the "
                    f"server keeps serving and retries on the next call."
                ) from e

        return call


def answering(client: Any) -> Any:
    """``client`` whose failures say which server and setting (``_Answering``)."""
    return client if isinstance(client, _Answering) else _Answering(client)


class MilvusReader:
    """One generation of an index on Milvus, read-only; what ``IndexReader`` offers."""

    def __init__(self, client: Any, ns: str, index_dir: Path) -> None:
        client = answering(client)
        self.client, self.ns, self.index_dir = client, ns, Path(index_dir)
        g = current_generation(client, ns)
        if g is None:
            raise IndexNotFoundError(
                f"no index named {ns} on Milvus: build it with MCP_RAG_BACKEND=milvus "
                f"mcp-rag --index {self.index_dir} index PATH...")
        self.names = Names.of(ns, g)
        # Loaded first: after a server restart a collection is released until loaded again.
        for name in self.names.all():
            client.load_collection(name)
        meta = {r["key"]: r["value"] for r in client.query(
            self.names.meta, filter='key != ""', output_fields=["key", "value"])}
        try:
            self.manifest = Manifest.from_json(json.loads(meta["manifest"]), self.names.meta)
        except (KeyError, ValueError) as e:
            raise IndexCorruptError(f"generation {g} of {ns} on Milvus has no manifest") from e
        self.calibration = json.loads(meta["calibration"]) if meta.get("calibration") else None
        self._lock = threading.Lock()
        self._docs: list[dict] | None = None
        self._df: dict[str, int] = {}
        self._closed = False

    # --- lifecycle, as the embedded reader's ---

    @property
    def generation(self) -> int:
        return self.manifest.generation

    @property
    def n_chunks(self) -> int:
        return self.manifest.counts.chunks

    @property
    def n_embedded(self) -> int:
        return self.n_chunks  # Milvus generations are written with every vector

    def is_current(self) -> bool:
        return current_generation(self.client, self.ns) == self.generation

    @contextlib.contextmanager
    def in_use(self) -> Iterator[MilvusReader]:
        """For a query's duration. Nothing to hold: the writer keeps the generation that
        was live when it switched, and a reader here holds no handle to close."""
        yield self

    def retire(self) -> None:
        """A newer generation is live (nothing to release)."""

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True

    # --- retrieval ---

    def restrict(self, filters: Mapping[str, str] | None) -> str | None:
        return _expr(check(filters, lambda: list(self.collections())))

    def _search(self, data: Any, field: str, n: int, expr: str | None, params: dict
                ) -> tuple[np.ndarray, np.ndarray]:
        got = self.client.search(self.names.chunks, data=[data], anns_field=field, limit=n,
                                 filter=expr or "", output_fields=["row"],
                                 search_params={"params": params})
        hits = got[0] if got else []
        rows = np.array([h["entity"]["row"] if "entity" in h else h["row"] for h in hits],
                        dtype=np.int64)
        return rows, np.array([h["distance"] for h in hits], dtype=np.float32)

    def lexical(self, query: str, n: int, allowed: Any = None
                ) -> tuple[np.ndarray, np.ndarray]:
        tokens = as_words(tokenize_query(query, query_languages(
            self.manifest.counts.languages)))
        if not tokens:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        rows, scores = self._search(tokens, "sparse", min(n, 16_384), allowed, {})
        scores = np.abs(scores)  # Milvus Lite returns BM25 scores negated
        keep = scores > 0
        order = np.lexsort((rows[keep], -scores[keep]))
        return rows[keep][order], scores[keep][order]

    def nearest(self, vector: np.ndarray, n: int, allowed: Any = None
                ) -> tuple[np.ndarray, np.ndarray]:
        return self._search(np.asarray(vector, dtype=np.float32).tolist(), "vec",
                            min(n, 16_384), allowed, {"ef": max(64, n)})

    def doc_of(self, rows: Sequence[int]) -> list[int]:
        ids = {int(r["row"]): r["doc_id"] for r in self._rows(rows, ["row", "doc_id"])}
        order: dict[str, int] = {}
        return [order.setdefault(ids[int(r)], len(order)) for r in rows]

    def dfs(self, stems: Sequence[str]) -> dict[str, int]:
        """``df`` of many tokens in one query."""
        want = [t for t in dict.fromkeys(stems) if t not in self._df]
        if want:
            got = {r["term"]: int(r["df"]) for r in self.client.query(
                self.names.vocab, filter=f"term in {_quote(want)}",
                output_fields=["term", "df"])}
            if len(self._df) > 100_000:
                self._df.clear()
            self._df.update({t: got.get(t, 0) for t in want})
        return {t: self._df[t] for t in stems}

    def writes(self, stems: Sequence[str], pattern: re.Pattern[str]) -> bool | None:
        """Not known: Milvus's filters match text case-sensitively and not across line
        breaks, so a phrase missing from the best passages stays a partial answer."""
        return None

    def df(self, stem: str) -> int:
        if stem not in self._df:
            got = self.client.query(self.names.vocab, filter=f"term == {_quote(stem)}",
                                    output_fields=["df"])
            if len(self._df) > 100_000:  # a generation's terms never change: only bound it
                self._df.clear()
            self._df[stem] = int(got[0]["df"]) if got else 0
        return self._df[stem]

    # --- chunks and documents ---

    def _rows(self, rows: Sequence[int], fields: list[str] = CHUNK_FIELDS) -> list[Any]:
        out = []
        rows = [int(r) for r in rows]
        for i in range(0, len(rows), BATCH):
            part = rows[i:i + BATCH]
            out += self.client.query(self.names.chunks, filter=f"row in {part}",
                                     output_fields=fields)
        return out

    @staticmethod
    def _chunk(r: Mapping[str, Any]) -> Chunk:
        return Chunk(r["doc_id"], int(r["chunk_no"]), r["text"], int(r["start"]), int(r["end"]),
                     r["title"], r["section"], None if r["page"] < 0 else int(r["page"]),
                     r["source"])

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        by_row = {int(r["row"]): self._chunk(r) for r in self._rows(rows)}
        return [by_row[int(r)] for r in rows]

    def chunk_by_id(self, chunk_id: str) -> Chunk | None:
        got = self.client.query(self.names.chunks, filter=f"chunk_id == {_quote(chunk_id)}",
                                output_fields=CHUNK_FIELDS)
        return self._chunk(got[0]) if got else None

    def doc_chunks(self, doc_id: str, first: int, last: int) -> list[Chunk]:
        got = self.client.query(
            self.names.chunks, output_fields=CHUNK_FIELDS,
            filter=f"doc_id == {_quote(doc_id)} and chunk_no >= {int(first)} and "
                   f"chunk_no <= {int(last)}")
        return sorted((self._chunk(r) for r in got), key=lambda c: c.chunk_no)

    def document(self, doc_id: str) -> Document | None:
        got = self.client.query(self.names.docs, filter=f"doc_id == {_quote(doc_id)}",
                                output_fields=["part", "text", "meta"])
        if not got:
            return None
        got.sort(key=lambda r: r["part"])
        m = json.loads(got[0]["meta"])
        return Document(
            doc_id, m["source"], m["title"], "".join(r["text"] for r in got), m["root"],
            m["format"], tuple(tuple(x) for x in m["sections"]),
            tuple(tuple(x) for x in m["pages"]), m["content_hash"], m["mtime"], m["size"],
            m["collection"])

    def _doc_rows(self) -> list[dict]:
        """Every document's fields but its text, in id order; read once per generation
        (it never changes) and only by what lists documents or collections."""
        with self._lock:
            if self._docs is None:
                got = self.client.query(self.names.docs, filter="part == 0",
                                        output_fields=["doc_id", "meta"])
                self._docs = sorted(
                    ({"doc_id": r["doc_id"], **json.loads(r["meta"])} for r in got),
                    key=lambda d: d["doc_id"])
            return self._docs

    @property
    def doc_ids(self) -> list[str]:
        return [d["doc_id"] for d in self._doc_rows()]

    def documents(self, after: str | None = None, limit: int | None = None) -> list[dict]:
        docs = [d for d in self._doc_rows() if after is None or d["doc_id"] > after]
        return [{"doc_id": d["doc_id"], "source": d["source"], "title": d["title"],
                 "format": d["format"], "collection": d["collection"], "chunks": d["chunks"]}
                for d in docs[:limit]]

    def doc_hashes(self) -> dict[str, str]:
        return {d["doc_id"]: d["content_hash"][:16] for d in self._doc_rows()}

    def doc_infos(self) -> dict[str, DocInfo]:
        return {d["doc_id"]: DocInfo(d["doc_id"], d["source"], d["root"], d["content_hash"],
                                     d["mtime"], d["size"], d["collection"])
                for d in self._doc_rows()}

    def collections(self) -> dict[str, tuple[int, int]]:
        docs: dict[str, list[int]] = {}
        for d in self._doc_rows():
            got = docs.setdefault(d["collection"], [0, 0])
            got[0] += 1
            got[1] += d["chunks"]
        return {c: (v[0], v[1]) for c, v in sorted(docs.items())}

    # --- what a writer carries over ---

    def chunk_rows_for_docs(self, doc_ids: set[str]) -> np.ndarray:
        rows: list[int] = []
        ids = sorted(doc_ids)
        for i in range(0, len(ids), BATCH):
            got = self.client.query(self.names.chunks,
                                    filter=f"doc_id in {_quote(ids[i:i + BATCH])}",
                                    output_fields=["row"])
            rows += [int(r["row"]) for r in got]
        return np.array(sorted(rows), dtype=np.int64)

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        by_row = {int(r["row"]): r["vec"] for r in self._rows(rows, ["row", "vec"])}
        return np.array([by_row[int(r)] for r in rows],
                        dtype=np.float32).reshape(len(rows), -1)


# --- writing a generation ---


def _schema(client: Any, kind: str, dim: int) -> tuple[Any, Any]:
    from pymilvus import DataType, Function, FunctionType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    ip = client.prepare_index_params()
    if kind == "chunks":
        s.add_field("row", DataType.INT64, is_primary=True)
        for f in ("chunk_id", "doc_id", "section", "text", "title", "source", "collection"):
            s.add_field(f, DataType.VARCHAR, max_length=STR)
        for f in ("chunk_no", "start", "end", "page"):
            s.add_field(f, DataType.INT64)
        s.add_field("tokens", DataType.VARCHAR, max_length=STR, enable_analyzer=True,
                    analyzer_params={"tokenizer": "standard"})
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
        s.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                input_field_names=["tokens"], output_field_names=["sparse"]))
        # k1 and b nested under "params": at the top level Milvus ignores them.
        ip.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"params": {"bm25_k1": 1.5, "bm25_b": 0.75}})
        ip.add_index(field_name="vec", index_type="HNSW", metric_type="IP",
                     params={"M": 16, "efConstruction": 200})
        return s, ip
    key = {"docs": "key", "vocab": "term", "meta": "key"}[kind]
    s.add_field(key, DataType.VARCHAR, is_primary=True, max_length=STR)
    if kind == "docs":
        s.add_field("doc_id", DataType.VARCHAR, max_length=STR)
        s.add_field("part", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=STR)
        s.add_field("meta", DataType.VARCHAR, max_length=STR)
    elif kind == "vocab":
        s.add_field("df", DataType.INT64)
    else:
        s.add_field("value", DataType.VARCHAR, max_length=STR)
    s.add_field("nothing", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
    ip.add_index(field_name="nothing", index_type="FLAT", metric_type="L2")
    return s, ip


def _insert(client: Any, name: str, rows: list[dict]) -> None:
    for i in range(0, len(rows), BATCH):
        client.insert(name, rows[i:i + BATCH])


def write_generation(client: Any, ns: str, current: MilvusReader | None, gen: NewGeneration,
                     bm25_tokens: list[list[str]], kept_chunks: list[Chunk],
                     kept_vectors: np.ndarray) -> None:
    """Write generation ``gen.manifest.generation`` beside the live one, then switch the
    alias to it; a failure drops what was written and leaves the live one serving."""
    from mcp_rag.index.dense import DenseIndex

    m = gen.manifest
    names = Names.of(ns, m.generation)
    dim = m.embedder.dim
    for name in names.all():
        if client.has_collection(name):  # left by a writer that died before the switch
            client.drop_collection(name)
    try:
        for kind, name in zip(("chunks", "docs", "vocab", "meta"), names.all(), strict=True):
            schema, index = _schema(client, kind, dim)
            client.create_collection(name, schema=schema, index_params=index)
        docs = _documents(current, gen)
        chunks = kept_chunks + list(gen.new_chunks)
        vectors = np.concatenate([kept_vectors.reshape(-1, dim),
                                  gen.new_vectors.reshape(-1, dim)]).astype(np.float32)
        _insert(client, names.chunks, _chunk_rows(chunks, vectors, bm25_tokens, docs))
        per_doc = Counter(c.doc_id for c in chunks)
        _insert(client, names.docs, [r for d in docs.values() for r in _doc_rows(d, per_doc)])
        bm25 = gen.bm25(bm25_tokens)
        _insert(client, names.vocab, [{"term": t[:STR], "df": bm25.df(t), "nothing": [0.0, 0.0]}
                                      for t in bm25.vocab])
        scope = gen.calibration(bm25, lambda: DenseIndex.build(vectors, "flat"),
                                current.calibration if current is not None else None)
        _insert(client, names.meta, [
            {"key": "manifest", "value": json.dumps(m.to_json()), "nothing": [0.0, 0.0]},
            {"key": "calibration", "value": json.dumps(scope) if scope else "",
             "nothing": [0.0, 0.0]},
        ])
        for name in names.all():
            client.flush(name)
            client.load_collection(name)
    except BaseException:
        for name in names.all():
            with contextlib.suppress(Exception):
                client.drop_collection(name)
        raise
    live = current_generation(client, ns)
    if live is None:
        client.create_alias(names.meta, alias(ns))
    else:
        client.alter_alias(names.meta, alias(ns))
    # Keep the generation that was live for readers still on it; drop the older ones
    # (also after a --rebuild, which writes without reading the live one).
    _drop_older(client, ns, keep={m.generation} | ({live} if live is not None else set()))


def _documents(current: MilvusReader | None, gen: NewGeneration) -> dict[str, Document]:
    """Every document of the new generation: those kept (moved where ``relabel`` says),
    then the new ones."""
    docs: dict[str, Document] = {}
    if current is not None:
        for doc_id in sorted(gen.keep_doc_ids):
            old = current.document(doc_id)
            if old is not None:
                docs[doc_id] = (old if doc_id not in gen.relabel
                                else _with(old, gen.relabel[doc_id]))
    for new in gen.new_docs:
        docs[new.doc_id] = new
    return docs


def _chunk_rows(chunks: list[Chunk], vectors: np.ndarray, bm25_tokens: list[list[str]],
                docs: dict[str, Document]) -> list[dict]:
    return [{
        "row": i, "chunk_id": c.chunk_id, "doc_id": c.doc_id, "section": c.section,
        "text": c.text, "title": c.title, "source": c.source,
        "collection": docs[c.doc_id].collection, "chunk_no": c.chunk_no, "start": c.start,
        "end": c.end, "page": -1 if c.page is None else c.page,
        "tokens": as_words(toks)[:STR] or "_", "vec": v.tolist(),
    } for i, (c, v, toks) in enumerate(zip(chunks, vectors, bm25_tokens, strict=True))]


def _doc_rows(d: Document, per_doc: Counter[str]) -> list[dict]:
    """A document's rows: its text in parts of ``PART`` characters, its metadata on the
    first."""
    meta = json.dumps({
        "source": d.source, "title": d.title, "root": d.root, "format": d.format,
        "sections": d.sections, "pages": d.pages, "content_hash": d.content_hash,
        "mtime": d.mtime, "size": d.size, "collection": d.collection,
        "chunks": per_doc.get(d.doc_id, 0),
    }, ensure_ascii=False)
    parts = [d.text[i:i + PART] for i in range(0, len(d.text), PART)] or [""]
    return [{"key": f"{d.doc_id}\x00{p}", "doc_id": d.doc_id, "part": p, "text": text,
             "meta": meta if p == 0 else "", "nothing": [0.0, 0.0]}
            for p, text in enumerate(parts)]


def _with(d: Document, collection: str) -> Document:
    from dataclasses import replace

    return replace(d, collection=collection)


def _drop_older(client: Any, ns: str, keep: set[int]) -> None:
    for name in client.list_collections():
        m = re.match(rf"{re.escape(ns)}_g(\d+)_(chunks|docs|vocab|meta)$", name)
        if m and int(m.group(1)) not in keep:
            with contextlib.suppress(Exception):
                client.drop_collection(name)


def next_generation(client: Any, ns: str) -> int:
    got = [int(m.group(1)) for name in client.list_collections()
           if (m := re.match(rf"{re.escape(ns)}_g(\d+)_meta$", name))]
    return max(got, default=0) + 1


__all__ = ["DEFAULT_COLLECTION", "MilvusReader", "connect", "namespace", "write_generation"]
