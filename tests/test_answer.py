"""Answers: extractive sentence picking, citations that resolve, and generated answers checked
against a real local HTTP server that speaks the OpenAI chat-completions API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from helpers import KeywordEmbedder, KeywordReranker
from pydantic import SecretStr

from mcp_rag.answer.extractive import extractive, pick, sentences_of
from mcp_rag.answer.generated import NOT_FOUND, ChatClient, LLMError, check_citations
from mcp_rag.errors import QueryError
from mcp_rag.index.update import index_paths
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.cache import QueryCache
from mcp_rag.serve.service import RagService
from mcp_rag.types import Chunk, Hit


def _hit(text: str, doc_id: str = "d", start: int = 0, section: str = "", n: int = 0) -> Hit:
    c = Chunk(doc_id, n, text, start, start + len(text), title="T", section=section, source="s")
    return Hit(chunk=c, score=1.0)


def test_sentences_skip_headings_and_fragments_and_overlap_duplicates():
    a = _hit("Refunds\n\nRefunds take ten days. Call us.", section="Policy > Refunds")
    b = _hit("Refunds take ten days. Cards are credited.", start=9, n=1)  # overlaps a
    cands, by_chunk = sentences_of([a, b])
    assert [s.text for s in cands] == ["Refunds take ten days.", "Cards are credited."]
    assert len(by_chunk["d#0"]) == 3  # the heading and "Call us." stay as neighbours
    s = cands[1]
    assert s.chunk.text[s.start - s.chunk.start : s.end - s.chunk.start] == s.text
    assert (s.start, s.end) == (32, 51)


def _pick(text: str, scores: list[float], budget: int = 3, margin: float = 4.0):
    cands, by_chunk = sentences_of([_hit(text)])
    assert len(cands) == len(scores)
    runs = pick(cands, np.array(scores), by_chunk, budget=budget, margin=margin, min_score=0.0)
    return [[s.text for s in r.sentences] for r in runs]


def test_pick_keeps_the_best_and_close_ones_in_reading_order_within_budget():
    text = "Alpha one here. Beta two here.\n\nGamma three here. Delta four here. Eps five here."
    # best (Delta), then Alpha (within 4 of it); Eps is next to Delta but scores too low
    assert _pick(text, [6.0, -9.0, -9.0, 9.0, 0.5]) == [["Alpha one here."], ["Delta four here."]]
    # next to a picked sentence of its paragraph, a sentence needs only best - 2 * margin
    assert _pick(text, [-9.0, -9.0, -9.0, 9.0, 2.0]) == [["Delta four here.", "Eps five here."]]
    assert _pick(text, [6.0, 6.0, 6.0, 9.0, 6.0], budget=2) == [
        ["Alpha one here."], ["Delta four here."]
    ]
    # the best sentence is always given, even under min_score; its neighbours are not
    assert _pick(text, [-3.0, -9.0, -9.0, -2.0, -9.0]) == [["Delta four here."]]
    assert _pick(text, [-3.0, -9.0, -9.0, -2.0, -3.5]) == [["Delta four here.", "Eps five here."]]


def test_a_sentence_keeps_the_one_it_leans_on_and_the_one_that_qualifies_it():
    text = "Refunds are paid in full. However, this excludes setup fees. Cats purr here."
    assert _pick(text, [9.0, -9.0, -9.0], budget=3) == [
        ["Refunds are paid in full.", "However, this excludes setup fees."]
    ]
    assert _pick(text, [-9.0, 9.0, -9.0], budget=3) == [
        ["Refunds are paid in full.", "However, this excludes setup fees."]
    ]
    # a unit that does not fit the budget is left out, but never the best sentence's
    assert _pick(text, [9.0, -9.0, -9.0], budget=1) == [
        ["Refunds are paid in full.", "However, this excludes setup fees."]
    ]


def test_extractive_without_a_reranker_uses_shared_terms_or_gives_nothing():
    hits = [_hit("Refunds take ten days. Zebras run fast.")]
    text, runs = extractive("how long do refunds take", hits, None)
    assert text == "Refunds take ten days. [1]" and runs[0].score is None
    assert extractive("quantum chromodynamics", hits, None) == ("", [])


def test_citation_markers_are_checked():
    assert check_citations("A [1]. B [2, 3]. C [1][3].", 3) == ([1, 2, 3], [])
    assert check_citations("A [1]. B [4]. C [0].", 3) == ([1], [0, 4])
    assert check_citations("no markers", 3) == ([], [])


# --- through the service, on the sample knowledge base --------------------------------------


@pytest.fixture
def svc(settings, sample_dir):
    s = settings.model_copy(update={"rerank": True, "relevance_floor": 0.0})
    emb = KeywordEmbedder()
    index_paths(s.index, [sample_dir], emb, quiet=True)
    return RagService(Pipeline(s, embedder=emb, reranker=KeywordReranker()),
                      cache=QueryCache(s.cache_dir))


def test_extractive_answer_cites_exact_spans(svc):
    out = svc.answer("Are expense claims without a receipt reimbursed?", no_cache=True)
    assert out.answered and out.mode == "extractive" and out.citations
    assert "Claims without a receipt are not reimbursed, except for amounts under 25 EUR." in (
        out.answer
    )
    doc = svc.pipeline.reader.document(out.citations[0].doc_id)
    for c in out.citations:
        assert f"[{c.n}]" in out.answer
        assert svc.pipeline.reader.document(c.doc_id).text[c.span[0] : c.span[1]] == c.quote
    assert doc.doc_id == "support/onboarding.txt"
    assert len(out.answer.split(". ")) <= 3 + len(out.citations)


def test_answer_parameters_are_bounded(svc):
    with pytest.raises(QueryError, match="max_sentences of 0"):
        svc.answer("refund", max_sentences=0)
    with pytest.raises(QueryError, match="k of 21"):
        svc.answer("refund", k=21)
    one = svc.answer("refund annual plan prorated cancel", max_sentences=1, no_cache=True)
    assert sum(len(c.quote.split(". ")) for c in one.citations) == 1


def test_answer_without_reranker_says_nothing_checked_it(settings, sample_dir):
    emb = KeywordEmbedder()
    index_paths(settings.index, [sample_dir], emb, quiet=True)
    svc = RagService(Pipeline(settings, embedder=emb))  # rerank off: no cross-encoder
    out = svc.answer("expense claims receipt reimbursed", no_cache=True)
    assert out.answered and "nothing checked" in out.fallback
    assert out.citations[0].relevance is None


class FailsAfterFirstCall(KeywordReranker):
    """Ranks the passages, then crashes on the sentences."""

    def predict(self, pairs):
        if self.pairs_seen:
            raise RuntimeError("ONNX session crashed")
        return super().predict(pairs)


def test_reranker_failing_on_sentences_degrades_to_shared_words(settings, sample_dir):
    s = settings.model_copy(update={"rerank": True, "relevance_floor": 0.0})
    emb = KeywordEmbedder()
    index_paths(s.index, [sample_dir], emb, quiet=True)
    svc = RagService(Pipeline(s, embedder=emb, reranker=FailsAfterFirstCall()),
                     cache=QueryCache(s.cache_dir))
    out = svc.answer("expense claims receipt reimbursed")
    assert out.answered and "Claims without a receipt" in out.answer
    assert "reranker failed on sentences (RuntimeError" in out.fallback
    assert not svc.answer("expense claims receipt reimbursed").cached  # degraded: not stored


# --- generated answers against a fake OpenAI-compatible endpoint ------------------------------


class FakeLLM:
    """A real HTTP server on 127.0.0.1 answering POST /v1/chat/completions with ``reply``."""

    def __init__(self) -> None:
        self.reply: str | None = "ok [1]"
        self.status = 200
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "body": body,
                                      "auth": self.headers.get("Authorization")})
                if fake.status != 200:
                    payload = b'{"error": "model crashed"}'
                else:
                    payload = json.dumps({"choices": [
                        {"message": {"role": "assistant", "content": fake.reply}}
                    ]}).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm():
    fake = FakeLLM()
    yield fake
    fake.close()


@pytest.fixture
def gen_svc(settings, sample_dir, llm):
    s = settings.model_copy(update={
        "rerank": True, "relevance_floor": 0.0, "llm_url": llm.url, "llm_model": "tiny-llm",
        "llm_api_key": SecretStr("sk-test"), "llm_timeout": 5.0,
    })
    emb = KeywordEmbedder()
    index_paths(s.index, [sample_dir], emb, quiet=True)
    return RagService(Pipeline(s, embedder=emb, reranker=KeywordReranker()),
                      cache=QueryCache(s.cache_dir))


Q = "Are expense claims without a receipt reimbursed?"


def test_generated_answer_with_resolving_citations(gen_svc, llm):
    llm.reply = "Not without a receipt, unless the amount is under 25 EUR [1]."
    out = gen_svc.answer(Q)
    assert out.answered and out.mode == "generated" and out.fallback is None
    assert out.answer == llm.reply
    assert [c.n for c in out.citations] == [1]
    assert out.citations[0].chunk_id == out.sources[0].chunk_id
    assert "generate" in out.timings_ms
    req = llm.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "tiny-llm" and req["body"]["temperature"] == 0
    system, user = req["body"]["messages"]
    assert NOT_FOUND in system["content"] and "[1]" in user["content"]
    assert "Claims without a receipt" in user["content"]
    again = gen_svc.answer(Q)
    assert again.cached and again.answer == out.answer and len(llm.requests) == 1


def test_generated_answer_citing_an_unknown_passage_is_dropped(gen_svc, llm):
    llm.reply = "Claims are always reimbursed [9]."
    out = gen_svc.answer(Q)
    assert out.mode == "extractive" and out.answered
    assert "[9]" in out.fallback and "not one of the" in out.fallback
    assert "always reimbursed" not in out.answer
    assert "Claims without a receipt are not reimbursed" in out.answer
    # a fallback is not cached: the next call asks the endpoint again
    llm.reply = "Only under 25 EUR [1]."
    assert gen_svc.answer(Q).mode == "generated" and len(llm.requests) == 2


def test_generated_answer_without_citations_is_dropped(gen_svc, llm):
    llm.reply = "They are not reimbursed."
    out = gen_svc.answer(Q)
    assert out.mode == "extractive" and "cited no passage" in out.fallback


def test_endpoint_failure_falls_back_to_extractive(gen_svc, llm):
    llm.status = 500
    out = gen_svc.answer(Q)
    assert out.mode == "extractive" and out.answered
    assert "HTTP 500" in out.fallback and "extractive answer is given instead" in out.fallback
    llm.close()  # nothing listening any more
    out = gen_svc.answer(Q, no_cache=True)
    assert out.mode == "extractive" and "did not answer" in out.fallback


def test_llm_saying_not_in_documents_is_a_no_answer(gen_svc, llm):
    llm.reply = NOT_FOUND
    out = gen_svc.answer(Q)
    assert not out.answered and out.mode == "generated" and out.citations == []
    assert "do not contain an answer" in out.answer and out.sources


def test_chat_client_rejects_a_malformed_reply(llm):
    llm.reply = None
    client = ChatClient(llm.url + "/chat/completions", "m", timeout=5)
    assert client.url == llm.url + "/chat/completions"
    with pytest.raises(LLMError, match="empty answer"):
        client.complete("s", "u")
    assert llm.requests[0]["auth"] is None  # no key, no header


def test_llm_url_without_model_is_a_clear_settings_error(tmp_path):
    from pydantic import ValidationError

    from mcp_rag.settings import Settings

    with pytest.raises(ValidationError, match="MCP_RAG_LLM_MODEL"):
        Settings(index=tmp_path, llm_url="http://localhost:11434/v1")
