"""What the tools return: pydantic output models (the tools' output schemas), URIs, limits."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from mcp_rag.retrieve.answerability import LOW_CONFIDENCE, Decision
from mcp_rag.types import Chunk, Hit, RerankStatus

MAX_PASSAGES = 100
MAX_PASSAGE_CHARS = 20_000
MAX_FILTER_CHARS = 500
MAX_READ_CHARS = 20_000  # one page of get_document
MAX_NEIGHBORS = 5
# Bump when a cached result would no longer read the same (2: rerank_status; scores of
# reranked passages are the blended score they are ordered by; 4: URIs keep their slashes;
# 5: answered, partial or refused, and the evidence check's terms; 6: coverage).
OUTPUT_SCHEMA = 6

COVERAGE = Field(1.0, description="Share of the indexed passages that have a vector yet: "
                 "below 1 while a first index is being embedded (the rest are found by "
                 "keywords alone).")

DOCUMENTS = "rag://documents"
DOCUMENT_TEMPLATE = "rag://documents/{+doc_id}"
CHUNK_TEMPLATE = "rag://chunks/{+chunk_id}"


def chunk_uri(chunk_id: str) -> str:
    """``rag://chunks/guides/start.md%230``: slashes kept, ``#`` and the like escaped."""
    return "rag://chunks/" + quote(chunk_id, safe="/")


def document_uri(doc_id: str) -> str:
    """``rag://documents/guides/start.md`` (RFC 6570 ``{+doc_id}``: slashes kept)."""
    return "rag://documents/" + quote(doc_id, safe="/")


class Located(BaseModel):
    """A passage and where it is: what citing it takes."""

    doc_id: str
    chunk_id: str
    uri: str = Field(description="rag://chunks/... resource with this passage.")
    document_uri: str = Field(description="rag://documents/... resource with the whole text.")
    source: str
    title: str
    section: str
    span: list[int] = Field(description="[start, end) character offsets in the document text.")
    page: int | None
    text: str


class Passage(Located):
    """A retrieved chunk, with everything needed to cite it."""

    score: float = Field(
        description="The score the passage is ranked by (higher is better): when reranked, "
        "the blend of the cross-encoder and the first stage (0..1 with the default blend), "
        "else the first stage's. search lists each document's best passage before any "
        "document's second one (and near copies after them), so a later result can score "
        "higher than an earlier one."
    )
    rerank_score: float | None = Field(description="Cross-encoder logit.")
    relevance: float | None = Field(description="Calibrated 0..1 relevance (sigmoid of logit).")
    first_stage_rank: int | None
    bm25_rank: int | None
    dense_rank: int | None

    @classmethod
    def of(cls, h: Hit) -> Passage:
        c = h.chunk
        return cls(
            doc_id=c.doc_id,
            chunk_id=c.chunk_id,
            uri=chunk_uri(c.chunk_id),
            document_uri=document_uri(c.doc_id),
            source=c.source,
            title=c.title,
            section=c.section,
            span=[c.start, c.end],
            page=c.page,
            text=c.text,
            score=h.score,
            rerank_score=h.rerank_score,
            relevance=h.relevance,
            first_stage_rank=h.first_stage_rank,
            bm25_rank=h.bm25_rank,
            dense_rank=h.dense_rank,
        )


class Answerability(BaseModel):
    """Whether the index holds the answer: the decision, its score and why."""

    answerable: bool
    score: float = Field(description="Probability (0..1) that the documents hold the answer.")
    threshold: float = Field(description="Answered when score >= threshold.")
    confidence: float = Field(
        description="Probability (0..1) that the best passages support an answer."
    )
    unknown_terms: list[str] = Field(
        description="Words of the question that the indexed documents never mention."
    )
    state: Literal["answered", "partial", "refused"] = Field(
        description="refused (not answerable); partial: answerable, but the passages never "
        "mention some of what the question names (missing_terms); else answered."
    )
    focal_terms: list[str] = Field(
        description="What the question names that the evidence check looked for in the "
        "passages (products, tools, identifiers), and on answer the rare words of a how-to "
        "question its quotes lack that the answer depends on (docs, Abstention)."
    )
    missing_terms: list[str] = Field(
        description="The focal terms the passages never mention."
    )
    reason: str | None = Field(
        description="When not answerable: why, in plain words; when partial: what is missing."
    )
    signals: dict[str, float] = Field(description="The decision's inputs (docs, Abstention).")

    @classmethod
    def of(cls, d: Decision, best_score: float | None) -> Answerability:
        e = d.evidence
        return cls(
            answerable=d.answerable, score=d.score, threshold=d.threshold,
            confidence=d.confidence, unknown_terms=list(d.unknown_terms), state=d.state,
            focal_terms=list(e.focal) if e else [], missing_terms=list(e.missing) if e else [],
            reason=d.reason(best_score) if not d.answerable else e.reason() if e else None,
            signals=d.features,
        )


class SearchOutput(BaseModel):
    query: str
    results: list[Passage]
    no_answer: bool = Field(
        description="True when the indexed documents do not hold the answer (see answerability)."
    )
    closest: list[Passage] = Field(
        default_factory=list,
        description="When no_answer: the closest passages (they do not answer).",
    )
    best_score: float | None = Field(description="Best cross-encoder logit seen.")
    answerability: Answerability | None = Field(
        None, description="Does the index hold the answer (decided when reranked)."
    )
    reranked: bool
    rerank_status: RerankStatus = Field(
        description="What the cross-encoder did: reranked, not requested, skipped (the first "
        "stage was confident), unavailable (not loaded) or failed (on this query)."
    )
    rerank_reason: str | None = Field(description="Why it did not rerank, in words.")
    cached: bool = False
    generation: int = Field(description="Index generation that served the query.")
    coverage: float = COVERAGE
    timings_ms: dict[str, float]


class RerankItem(BaseModel):
    id: str
    index: int = Field(description="Position of the passage in the request.")
    score: float = Field(description="Cross-encoder logit.")
    relevance: float = Field(description="Calibrated 0..1 relevance.")
    text: str


class RerankOutput(BaseModel):
    query: str
    reranker: str
    results: list[RerankItem]
    timings_ms: dict[str, float]


class Citation(BaseModel):
    """Where the text before a marker [n] comes from: a quote with its exact place."""

    n: int = Field(description="The marker [n] in the answer.")
    doc_id: str
    chunk_id: str
    uri: str = Field(description="rag://chunks/... resource with the passage quoted.")
    document_uri: str
    source: str
    title: str
    section: str
    page: int | None
    span: list[int] = Field(description="[start, end) of the quote in the document text.")
    quote: str = Field(description="The document's text over span, exactly.")
    relevance: float | None = Field(description="0..1 relevance of the quote to the question.")


class AnswerOutput(BaseModel):
    question: str
    answered: bool = Field(description="False: the documents do not contain the answer.")
    state: Literal["answered", "partial", "refused"] = Field(
        description="refused (answered is false); partial: answered, but the passages never "
        "mention some of what the question names (missing); else answered."
    )
    missing: list[str] = Field(
        default_factory=list,
        description="When partial: what the question names that the quoted passages never "
        "mention, or a rare word of a how-to question they lack that the answer depends on "
        "(the answer says so too).",
    )
    answer: str = Field(description="The answer, each statement followed by its marker [n].")
    citations: list[Citation] = Field(description="What each marker [n] points to.")
    sources: list[Passage] = Field(
        description="The passages the answer was drawn from; when answered is false, the "
        "closest passages (which do not answer it), for the caller to inspect."
    )
    no_answer_reason: str | None = Field(
        None, description="When answered is false: why, in plain words."
    )
    confidence: float | None = Field(
        description="Probability (0..1) that the cited passages support the answer "
        "(calibrated across collections; docs, Abstention); under "
        f"{LOW_CONFIDENCE:g} the quoted passages may share only words with the question."
    )
    best_score: float | None = Field(description="Best cross-encoder logit seen.")
    answerability: Answerability | None = Field(
        None, description="Does the index hold the answer (decided when reranked)."
    )
    mode: Literal["extractive", "generated"]
    fallback: str | None = Field(
        None, description="Why the answer is not what was configured (e.g. the LLM failed)."
    )
    cached: bool = False
    generation: int = Field(description="Index generation that served the question.")
    coverage: float = COVERAGE
    timings_ms: dict[str, float]


class StatusOutput(BaseModel):
    index: str
    docs: int
    chunks: int
    embedded: int = Field(description="Chunks with a vector (the rest wait to be embedded).")
    coverage: float = COVERAGE
    generation: int
    created_at: str
    embedder: str
    embedder_dim: int
    chunking: dict[str, int]
    dense_index: str
    roots: list[str] = Field(description="Folders and files the index was built from.")
    collections: dict[str, int] = Field(
        default_factory=dict, description="Documents in each named collection."
    )
    reranker: str | None
    reranker_error: str | None
    last_run: dict[str, Any] = Field(
        description="What the last indexing run did (skipped: how many files it skipped)."
    )
    languages: dict[str, int] = Field(
        default_factory=dict, description="Passages by language (ISO 639-1), as BM25 "
        "analysed them; empty for an index written before languages were told apart.")
    ocr_pages: int = Field(0, description="Pages of the indexed documents that were scans "
                           "or images, read by OCR.")
    language_note: str | None = Field(
        None, description="Set when a tenth or more of the passages are not in English and "
        "the models are English-only: what that costs and which models to choose.")
    calibration: dict[str, Any] | None = Field(
        None,
        description="The answerability decision's scale for this corpus, made when the index "
        "was built (None: built by an older version; index again to calibrate).",
    )


class ChunkView(Located):
    """One indexed passage and where it sits in its document."""

    chunk_no: int = Field(description="Position of the passage in its document (0-based).")

    @classmethod
    def of(cls, c: Chunk) -> ChunkView:
        return cls(
            doc_id=c.doc_id, chunk_id=c.chunk_id, chunk_no=c.chunk_no, uri=chunk_uri(c.chunk_id),
            document_uri=document_uri(c.doc_id), source=c.source, title=c.title,
            section=c.section, span=[c.start, c.end], page=c.page, text=c.text,
        )


class ChunkOutput(BaseModel):
    chunk: ChunkView
    before: list[ChunkView] = Field(description="The passages just before it, in order.")
    after: list[ChunkView] = Field(description="The passages just after it, in order.")
    context: str = Field(
        description="The document's text from the first passage shown to the last (passages "
        "may overlap; this reads straight through)."
    )
    context_span: list[int] = Field(description="[start, end) of context in the document.")


class DocumentOutput(BaseModel):
    doc_id: str
    uri: str = Field(description="rag://documents/... resource with the whole text.")
    source: str
    title: str
    format: str
    length: int = Field(description="Characters in the document's text.")
    span: list[int] = Field(description="[start, end) of text in the document.")
    text: str = Field(description="The document's text over span; citation spans index it.")
    next_start: int | None = Field(
        description="Where the next page starts (call again with start=next_start); None "
        "at the end of the document."
    )
    sections: list[list[Any]] = Field(
        description="[start, heading] of each section that begins inside span."
    )


class Collection(BaseModel):
    name: str
    documents: int
    chunks: int


class CollectionsOutput(BaseModel):
    collections: list[Collection] = Field(
        description="Named groups of documents (mcp-rag index --collection NAME); search "
        "one with filters: {collection: NAME}."
    )

    @classmethod
    def of(cls, counts: dict[str, tuple[int, int]]) -> CollectionsOutput:
        """From a generation's ``collections()``: name -> (documents, chunks)."""
        return cls(collections=[Collection(name=n, documents=d, chunks=c)
                                for n, (d, c) in counts.items()])


class IndexOutput(BaseModel):
    added: int
    updated: int
    removed: int
    unchanged: int
    moved: int = Field(0, description="Unchanged documents moved to the named collection.")
    embedded_chunks: int
    reused_chunks: int = Field(0, description="Chunks that took the vector of the same text "
                               "(copies, moved files, unchanged parts): not embedded again.")
    coverage: float = COVERAGE
    ocr_pages: int = Field(0, description="Pages of the files read in this run that were "
                           "scans or images, read by OCR.")
    generation: int | None
    skipped: list[dict[str, str]]


class AddedOutput(BaseModel):
    """What add_document or remove_document did."""

    doc_id: str = Field(description="The document's id: 'added/' and its title, slugged.")
    document_uri: str = Field(description="rag://documents/... resource with its text.")
    replaced: bool = Field(description="A document with this id was there before (add: "
                           "replaced by this text; remove: removed).")
    chunks: int = Field(description="Passages the document was cut into (0 when removed).")
    generation: int | None


class RerankPassage(BaseModel):
    id: str | None = None
    text: str = Field(min_length=1, max_length=MAX_PASSAGE_CHARS)
