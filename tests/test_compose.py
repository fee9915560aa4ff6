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


# The search checked its four passages; the answer quotes two. "How do I create a volume
# in Kubernetes?" of Docker's manual: a passage on contexts names Kubernetes, the quoted
# ones explain `docker volume create`.
VOLUME = "Create a volume with docker volume create. A volume keeps data after the container."
CONTEXT = "A context may point at a Kubernetes cluster."


def checked_result(question: str) -> SearchResult:
    from mcp_rag.index.scope import Term
    from mcp_rag.retrieve.answerability import Decision
    from mcp_rag.retrieve.evidence import check, written_names

    hits = [Hit(chunk=Chunk(d, 0, t, 0, len(t), source=d), score=1.0, relevance=0.9)
            for d, t in (("volume.md", VOLUME), ("context.md", CONTEXT))]
    terms = (Term("create", "creat", 400), Term("volume", "volum", 90),
             Term("Kubernetes", "kubernet", 3))
    names = written_names(question)
    d = Decision(answerable=True, score=0.97, threshold=0.5, confidence=0.9, unknown_terms=(),
                 features={"ce": 5.0, "dense_pos": 1.1, "unknown": 0.0, "cover": 0.9})
    d = d.checked(check(terms, names, 3000, [h.chunk.text for h in hits]))
    assert d.state == "answered"  # the context passage names Kubernetes
    return result(hits, rerank_status=RerankStatus.RERANKED, decision=d, terms=terms,
                  names=names, n_chunks=3000, best_score=5.0)


def test_a_how_to_answer_whose_quotes_never_name_its_product_is_refused():
    q = "how do i create a volume in kubernetes"
    c = compose(q, checked_result("How do I create a volume in Kubernetes?"),
                KeywordReranker(), None, POLICY)
    assert not c.answered and c.state == "refused" and c.citations == []
    assert c.no_answer_reason.startswith("the best passages never mention 'Kubernetes'")
    assert c.decision is not None and c.decision.state == "refused"
    assert [h.chunk.doc_id for h in c.sources] == ["volume.md", "context.md"]  # closest


def test_an_answer_that_is_not_a_how_to_keeps_the_search_s_check():
    q = "create a volume in kubernetes, it keeps data"  # a claim: no steps for a product
    r = checked_result("Create a volume in Kubernetes, it keeps data.")
    assert r.decision.evidence.focal == ("Kubernetes",)
    c = compose(q, r, KeywordReranker(), None, POLICY)
    assert c.answered and c.state == "answered" and c.decision.state == "answered"


class QuotingLLM:
    model = "m"

    def complete(self, system: str, user: str) -> str:
        return "Run docker volume create [1]."


def test_a_generated_how_to_answer_is_checked_on_the_passages_it_cites():
    c = compose("how do i create a volume in kubernetes",
                checked_result("How do I create a volume in Kubernetes?"), KeywordReranker(),
                QuotingLLM(), POLICY)
    assert not c.answered and c.state == "refused" and "'Kubernetes'" in c.no_answer_reason


class SilentLLM:
    model = "m"

    def complete(self, system: str, user: str) -> str:
        return "None of the passages answers this."


def test_every_answer_carries_the_search_s_decision():
    """The decision ``answer`` reports (its answerability) comes with every outcome."""
    r = checked_result("Create a volume in Kubernetes, it keeps data.")
    for llm in (None, QuotingLLM(), SilentLLM()):
        c = compose("create a volume in kubernetes, it keeps data", r, KeywordReranker(),
                    llm, POLICY)
        assert c.decision is r.decision, llm
    refused = compose("q", result([], no_answer=True, best_score=-3.0, closest=[hit()],
                                  decision=r.decision), KeywordReranker(), None, POLICY)
    assert refused.decision is r.decision
