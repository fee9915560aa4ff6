"""The answer policy on its own (no MCP, no index): refuse, quote, or fall back, saying why."""

from __future__ import annotations

from helpers import KeywordReranker

from mcp_rag.answer.compose import DO_NOT_GUESS, NO_ANSWER, AnswerPolicy, compose
from mcp_rag.answer.extractive import Run
from mcp_rag.answer.generated import LLMError
from mcp_rag.retrieve.pipeline import SearchResult
from mcp_rag.types import Chunk, Hit, Mode, RerankStatus

POLICY = AnswerPolicy(budget=3, margin=4.0, min_score=0.0, relevance_floor=0.0)
TEXT = "Refunds take ten days. Cards are credited within a week."


def result(hits: list[Hit], **kw) -> SearchResult:
    return SearchResult(query="q", mode=Mode.HYBRID, hits=hits, generation=7,
                        timings_ms={"search": 1.0}, **kw)


def hit() -> Hit:
    return Hit(chunk=Chunk("d", 0, TEXT, 0, len(TEXT), source="d.md"), score=1.0,
               relevance=0.9)


def test_nothing_over_the_floor_is_a_refusal_that_says_why():
    c = compose("how long do refunds take", result([], no_answer=True, best_score=-3.0,
                                                   closest=[hit()]),
                KeywordReranker(), None, POLICY)
    assert not c.answered and c.citations == [] and c.sources[0].chunk.doc_id == "d"
    assert c.no_answer_reason == "best cross-encoder score -3.00, under the relevance floor of 0.0"
    assert c.text == f"{NO_ANSWER}: {c.no_answer_reason}.{DO_NOT_GUESS}"


def test_quoted_sentences_cite_exact_runs():
    c = compose("how long do refunds take", result([hit()],
                                                   rerank_status=RerankStatus.RERANKED),
                KeywordReranker(), None, POLICY)
    assert c.answered and c.mode == "extractive" and c.fallback is None
    (n, run), = c.citations
    assert n == 1 and isinstance(run, Run) and TEXT[run.start:run.end] == run.quote
    assert c.text.endswith("[1]") and "sentences" in c.timings_ms and c.confidence == 0.9


class FailingLLM:
    model = "m"

    def complete(self, system: str, user: str) -> str:
        raise LLMError("the endpoint said 500")


def test_a_failing_llm_falls_back_to_quotes_and_is_not_cached():
    c = compose("how long do refunds take", result([hit()],
                                                   rerank_status=RerankStatus.RERANKED),
                KeywordReranker(), FailingLLM(), POLICY)
    assert c.answered and c.mode == "extractive" and not c.cacheable
    assert c.fallback == "the endpoint said 500; the extractive answer is given instead"
    assert "generate" in c.timings_ms
