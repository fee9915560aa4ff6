"""Generated answers against a real local HTTP server speaking the chat-completions API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import KeywordEmbedder, KeywordReranker
from pydantic import SecretStr

from mcp_rag.answer.generated import NOT_FOUND, ChatClient, LLMError, check_citations
from mcp_rag.app.cache import QueryCache
from mcp_rag.app.service import RagService
from mcp_rag.retrieve.pipeline import Pipeline


def test_citation_markers_are_checked():
    assert check_citations("A [1]. B [2, 3]. C [1][3].", 3) == ([1, 2, 3], [])
    assert check_citations("A [1]. B [4]. C [0].", 3) == ([1], [0, 4])
    assert check_citations("no markers", 3) == ([], [])


# --- through the service, on the sample knowledge base --------------------------------------

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
def gen_svc(indexed, llm):
    s = indexed.model_copy(update={
        "rerank": True, "relevance_floor": 0.0, "llm_url": llm.url, "llm_model": "tiny-llm",
        "llm_api_key": SecretStr("sk-test"), "llm_timeout": 5.0,
    })
    emb = KeywordEmbedder()
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
