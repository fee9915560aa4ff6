"""Does the index hold the answer: key terms, per-index calibration, refusals that say why."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import SAMPLE, KeywordEmbedder, KeywordReranker
from mcp import Client

from mcp_rag.app.catalog import index_status
from mcp_rag.index.lexical import BM25Index, tokenize
from mcp_rag.index.scope import bank, key_terms, pseudo_questions, unknown_share
from mcp_rag.index.store import SCOPE, IndexReader
from mcp_rag.index.update import index_paths, remove_docs
from mcp_rag.retrieve import answerability
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.render import render_status
from mcp_rag.serve.server import build_server


def _bm25(texts: list[str]) -> BM25Index:
    return BM25Index.build([tokenize(t) for t in texts])


def test_key_terms_keep_codes_whole_and_know_what_the_corpus_never_mentions():
    bm25 = _bm25(["Error KB-ERR-2847: storage quota exceeded.", "Refunds take 10 days."])
    terms = {t.word: t for t in key_terms("What does KB-ERR-2847 mean for librarians?", bm25)}
    assert terms["KB-ERR-2847"].df == 1 and terms["librarians"].df == 0
    assert "What" not in terms and "does" not in terms  # stopwords are not key terms
    # the code is known; of the words, only "librarians" is not: it carries its idf share
    share = unknown_share(list(terms.values()), bm25.n_rows)
    assert 0 < share < 1
    assert unknown_share(key_terms("refunds storage", bm25), bm25.n_rows) == 0.0


def test_pseudo_questions_are_deterministic_and_made_of_the_corpus_words():
    texts = [p.read_text() for p in sorted(SAMPLE.rglob("*.md"))]
    bm25 = _bm25(texts)
    one, two = pseudo_questions(texts, bm25, n=8), pseudo_questions(texts, bm25, n=8)
    assert one == two and len(one) >= 4
    vocab = {w for t in texts for w in tokenize(t)}
    for q in one:
        assert 4 <= len(q.split()) <= 8 and set(tokenize(q)) <= vocab


def test_the_shipped_bank_is_many_fields_and_shapes():
    qs = bank()
    assert len(qs) >= 100 and len(set(qs)) == len(qs)
    assert sum(len(q) >= 300 for q in qs) >= 10  # long descriptive requests
    assert any(any(c.isdigit() for c in q) and "error" in q.lower() for q in qs)  # error codes


def test_calibration_is_deterministic_and_stored_with_the_generation(tmp_path):
    emb = KeywordEmbedder()
    for name in ("a", "b"):
        shutil.copytree(SAMPLE, tmp_path / name / "kb")
        index_paths(tmp_path / name / "index", [tmp_path / name / "kb"], emb, quiet=True)
    a, b = IndexReader(tmp_path / "a" / "index"), IndexReader(tmp_path / "b" / "index")
    assert a.calibration and (a.path / SCOPE).is_file()
    keep = ("version", "dense_low", "dense_high", "pseudo_questions", "bank_questions")
    assert {k: a.calibration[k] for k in keep} == {k: b.calibration[k] for k in keep}
    assert a.calibration["generation"] == a.generation == 1
    assert a.calibration["dense_low"] < a.calibration["dense_high"]
    text = render_status(index_status(a))
    assert "answerability calibrated on generation 1" in text
    # an update calibrates the new generation; a removal keeps the last calibration
    (tmp_path / "a" / "kb" / "new.md").write_text("# Parking\n\nStaff park on level 2 only.\n")
    index_paths(tmp_path / "a" / "index", [tmp_path / "a" / "kb"], emb, quiet=True)
    updated = IndexReader(tmp_path / "a" / "index")
    assert updated.calibration["generation"] == updated.generation == 2
    remove_docs(tmp_path / "a" / "index", [str(tmp_path / "a" / "kb" / "new.md")])
    removed = IndexReader(tmp_path / "a" / "index")
    assert removed.generation == 3 and removed.calibration == updated.calibration


def test_a_long_lived_process_embeds_the_bank_once_and_calibrates_the_same(tmp_path):
    from mcp_rag.index.dense import DenseIndex
    from mcp_rag.index.scope import scope_calibrator

    class Counting(KeywordEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.queries = 0

        def embed_query(self, text):
            self.queries += 1
            return super().embed_query(text)

    texts = [p.read_text() for p in sorted(SAMPLE.rglob("*.md"))]
    bm25 = _bm25(texts)
    emb = Counting()
    dense = DenseIndex.build(emb.embed_documents(texts), "flat")
    first = scope_calibrator(texts, emb)(bm25, dense)
    once = emb.queries
    assert once >= len(bank())
    again = scope_calibrator(texts, emb)(bm25, dense)  # the next generation, same process
    assert emb.queries - once == once - len(bank())  # only the pseudo-questions this time
    fresh = scope_calibrator(texts, Counting())(bm25, dense)  # another model instance
    keep = ("dense_low", "dense_high", "pseudo_questions", "bank_questions")
    assert {k: first[k] for k in keep} == {k: again[k] for k in keep} == {k: fresh[k] for k in keep}


def test_an_index_without_calibration_still_decides_and_status_says_so(indexed):
    reader = IndexReader(indexed.index)
    (reader.path / SCOPE).unlink()
    reader = IndexReader(indexed.index)
    assert reader.calibration is None
    assert "not calibrated" in render_status(index_status(reader))
    p = Pipeline(indexed.model_copy(update={"rerank": True}), embedder=KeywordEmbedder(),
                 reranker=KeywordReranker())
    r = p.search("What does KB-ERR-2847 mean?", k=3)
    assert r.decision is not None and r.decision.answerable and r.hits


def test_a_damaged_calibration_is_ignored_not_fatal(indexed):
    reader = IndexReader(indexed.index)
    (reader.path / SCOPE).write_text("{not json")
    assert IndexReader(indexed.index).calibration is None


def test_the_veto_refuses_a_question_whose_rare_words_the_corpus_never_mentions():
    sure = {"ce": 2.0, "dense_pos": 0.0, "unknown": 0.9, "cover": 0.0}
    unsure = {**sure, "ce": -1.5, "dense_pos": 1.0}
    assert not answerability.vetoed(sure) and answerability.vetoed(unsure)
    assert answerability._logistic(answerability.IN_SCOPE, unsure) > answerability.THRESHOLD
    d = answerability.Decision(
        answerable=False, score=0.8, threshold=0.5, confidence=0.3,
        unknown_terms=("librarians",), features=unsure,
    )
    assert "never mention 'librarians'" in d.reason(-1.5)
    assert "most of its rare words are missing" in d.reason(-1.5)


def test_the_reason_says_of_what_the_request_asks_only_for_a_long_request():
    """A short question's ``ce`` may be under the best logit of the search (an answer's
    passages drop near copies before the decision reads them): it is still the
    question's own score, not that of a long request's first sentence."""
    x = {"ce": -6.09, "dense_pos": 0.2, "unknown": 0.0, "cover": 0.5}
    short = answerability.Decision(answerable=False, score=0.31, threshold=0.5,
                                   confidence=0.1, unknown_terms=(), features=x)
    assert "(best cross-encoder score -6.09)" in short.reason(-5.5)
    long = answerability.decide([], 100, [], None, nearest=0.2, asked_logit=-6.09)
    assert long.asked and "score of what the request asks -6.09" in long.reason(-5.5)


@pytest.fixture
def pipeline(indexed):
    s = indexed.model_copy(update={"rerank": True})
    return Pipeline(s, embedder=KeywordEmbedder(), reranker=KeywordReranker())


async def test_a_refusal_names_the_words_the_documents_never_mention(pipeline):
    q = "How do librarians catalogue serials with automation?"
    async with Client(build_server(pipeline)) as c:
        a = await c.call_tool("answer", {"question": q})
        s = await c.call_tool("search", {"query": q})
    out = a.structured_content
    assert out["answered"] is False and out["citations"] == []
    for word in ("librarians", "catalogue", "serials", "automation"):
        assert word in out["no_answer_reason"] and word in a.content[0].text
    ans = out["answerability"]
    assert ans["answerable"] is False and ans["threshold"] == answerability.THRESHOLD
    assert set(ans["unknown_terms"]) >= {"librarians", "serials"}
    assert s.structured_content["no_answer"] and "librarians" in s.content[0].text
    assert s.structured_content["answerability"]["score"] == ans["score"]


async def test_an_answered_question_carries_its_decision(pipeline):
    async with Client(build_server(pipeline)) as c:
        r = await c.call_tool("answer", {"question": "What does KB-ERR-2847 mean?"})
    out = r.structured_content
    assert out["answered"] and out["no_answer_reason"] is None
    ans = out["answerability"]
    assert ans["answerable"] and ans["score"] >= ans["threshold"]
    assert out["confidence"] == ans["confidence"]
    assert json.dumps(ans)  # plain JSON for any client


def test_a_bm25_only_search_falls_back_to_the_floor(pipeline):
    r = pipeline.search("What does KB-ERR-2847 mean?", k=3, mode="bm25")
    assert r.decision is None and r.hits and not r.no_answer
    off = pipeline.search("zebra migration serengeti refund", k=3, mode="bm25")
    assert off.decision is None and off.best_score is not None
    assert off.no_answer is (off.best_score < pipeline.settings.relevance_floor)
