"""Extractive answers: sentence picking by hand, and answers whose citations resolve."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import KeywordEmbedder, KeywordReranker, Passages

from mcp_rag.answer.extractive import (
    MAX_QUOTE_CHARS,
    blended,
    clauses,
    extractive,
    leading,
    pick,
    score_sentences,
    sentences_of,
    shown,
    with_dense,
)
from mcp_rag.app.cache import QueryCache
from mcp_rag.app.service import RagService
from mcp_rag.errors import QueryError
from mcp_rag.retrieve.evidence import how_to_form
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings
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


def _pick(text: str, scores: list[float], budget: int = 3, margin: float = 4.0,
          one_doc: bool = True):
    """``text``'s sentences picked; each paragraph a document of its own unless ``one_doc``."""
    paras = [text] if one_doc else text.split("\n\n")
    cands, by_chunk = sentences_of([_hit(p, doc_id=f"d{i}") for i, p in enumerate(paras)])
    assert len(cands) == len(scores)
    runs = pick(cands, np.array(scores), by_chunk, budget=budget, margin=margin, min_score=0.0)
    return [[s.text for s in r.sentences] for r in runs]


def test_pick_keeps_the_best_and_close_ones_in_reading_order_within_budget():
    text = "Alpha one here. Beta two here.\n\nGamma three here. Delta four here. Eps five here."

    def pick_(scores: list[float], **kw):  # each paragraph a document of its own
        return _pick(text, scores, one_doc=False, **kw)

    # best (Delta), then Alpha (within 4 of it); Eps is next to Delta but scores too low
    assert pick_([6.0, -9.0, -9.0, 9.0, 0.5]) == [["Alpha one here."], ["Delta four here."]]
    # next to a picked sentence of its paragraph, a sentence needs only best - 2 * margin
    assert pick_([-9.0, -9.0, -9.0, 9.0, 2.0]) == [["Delta four here.", "Eps five here."]]
    assert pick_([6.0, 6.0, 6.0, 9.0, 6.0], budget=2) == [
        ["Alpha one here."], ["Delta four here."]
    ]
    # the best sentence is always given, even under min_score; its neighbours are not
    assert pick_([-3.0, -9.0, -9.0, -2.0, -9.0]) == [["Delta four here."]]
    assert pick_([-3.0, -9.0, -9.0, -2.0, -3.5]) == [["Delta four here.", "Eps five here."]]


def test_the_best_sentences_page_goes_on_with_what_scores_within_twice_the_margin():
    # "what it is" scores best, "how it is done" (the page's next paragraph) lower: within
    # 2 * margin it is quoted too, from the best sentence's document only
    text = ("A generated column is always computed from other columns.\n\n"
            "To create one, use GENERATED ALWAYS AS in CREATE TABLE.")
    assert _pick(text, [7.0, 0.5]) == [
        ["A generated column is always computed from other columns."],
        ["To create one, use GENERATED ALWAYS AS in CREATE TABLE."],
    ]
    assert _pick(text, [7.0, 0.5], one_doc=False) == [
        ["A generated column is always computed from other columns."]
    ]
    # still over min_score - margin, and within the budget
    assert _pick(text, [7.0, -4.5]) == [
        ["A generated column is always computed from other columns."]
    ]
    assert _pick(text, [7.0, 0.5], budget=1) == [
        ["A generated column is always computed from other columns."]
    ]


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


def test_an_answer_starts_from_the_passage_search_ranks_first():
    """The first passage's best sentence is picked first when it scores within the margin
    of the best of all; the rest are picked from the best score as before, and each run
    reports its own logit."""
    first = _hit("The stats command returns a live data stream. It lists containers.",
                 doc_id="stats.md")
    other = _hit('"cpu_stats" : { "cpu_usage" : 100 } is returned for each container.',
                 doc_id="api/v1.20.md")
    cands, by_chunk = sentences_of([first, other])
    assert [s.rank for s in cands] == [0, 0, 1]
    scores = np.array([-3.9, -6.0, -2.3])
    assert leading(cands, scores, margin=4.0) == 0
    assert leading(cands, scores, margin=1.0) is None  # too far under the best
    assert leading(cands, np.array([-2.0, -6.0, -2.3]), margin=4.0) is None  # it is the best
    runs = pick(cands, scores, by_chunk, budget=1, margin=4.0, min_score=-9.0, lead=0)
    assert [(r.quote, r.score) for r in runs] == [
        ("The stats command returns a live data stream.", -3.9)]
    runs = pick(cands, scores, by_chunk, budget=2, margin=4.0, min_score=-9.0, lead=0)
    assert [(r.chunk.doc_id, r.score) for r in runs] == [("stats.md", -3.9),
                                                         ("api/v1.20.md", -2.3)]
    runs = pick(cands, scores, by_chunk, budget=1, margin=4.0, min_score=-9.0)
    assert [r.chunk.doc_id for r in runs] == ["api/v1.20.md"]


def test_the_embedder_judges_the_sentences_beside_the_cross_encoder():
    """``with_dense``: the logits and the cosines, each standardised over the candidates,
    blended by ``share`` and put back in the logits' mean and spread; the runs still
    report the logits."""
    hit = _hit("Run kiln fire to bake the pots. A kiln is a hot oven for pottery.")
    cands, by_chunk = sentences_of([hit])
    logits = np.array([1.0, 5.0], dtype=np.float32)  # the definition scores higher
    emb = KeywordEmbedder()
    q = "how do i bake pots with kiln fire"
    cos = emb.embed_documents([c.text for c in cands]) @ emb.embed_query(q)
    assert cos[0] > cos[1]  # the embedder prefers the instruction
    assert with_dense(q, cands, logits, emb, 0.0).tolist() == logits.tolist()
    mixed = with_dense(q, cands, logits, emb, 0.6)
    assert mixed[0] > mixed[1]  # 0.6 of the say: the instruction first
    z = [0.4 * (x - logits.mean()) / logits.std() + 0.6 * (c - cos.mean()) / cos.std()
         for x, c in zip(logits, cos, strict=True)]
    assert mixed.tolist() == pytest.approx([logits.mean() + logits.std() * x for x in z])
    assert with_dense(q, cands, logits, emb, 0.4)[0] < with_dense(q, cands, logits, emb, 0.4)[1]
    runs = pick(cands, mixed, by_chunk, budget=1, margin=4.0, min_score=-9.0, logits=logits)
    assert [(r.quote, r.score) for r in runs] == [("Run kiln fire to bake the pots.", 1.0)]
    # one candidate, or an embedder that fails: the logits alone
    assert with_dense(q, cands[:1], logits[:1], emb, 0.6).tolist() == [1.0]

    class Broken(KeywordEmbedder):
        def embed_documents(self, texts, progress=None):
            raise RuntimeError("model file gone")

    assert with_dense(q, cands, logits, Broken(), 0.6).tolist() == logits.tolist()
    text, runs = extractive(q, [hit], KeywordReranker(), embedder=Broken(), dense_share=0.6)
    assert runs and text.endswith("[1]")
    # off by default: the cross-encoder alone
    assert Settings().answer_dense_share == 0.0
    # a sentence that leans on the one before is read with it, as the cross-encoder reads it
    lean = _hit("Index builds can run without locking writes. This method is invoked with "
                "the CONCURRENTLY option.")
    cands, by_chunk = sentences_of([lean])
    q = "build an index without blocking writes"
    read = [cands[0].text, f"{cands[0].text} {cands[1].text}"]
    cos = emb.embed_documents(read) @ emb.embed_query(q)
    two = np.array([2.0, 3.0], dtype=np.float32)
    assert with_dense(q, cands, two, emb, 0.6, by_chunk).tolist() == pytest.approx(
        blended(two, cos, 0.6).tolist())


def test_a_sentence_under_a_heading_that_names_a_term_is_quoted_with_it():
    """Docker's and SQLite's references head each option's section with it: the section's
    sentences describe "--rollback" without saying it."""
    head = "Roll back to the previous version of a service (--rollback)"
    text = (f"{head}\n\nUse the option to go back.\n\nThis will revert the service to the "
            "configuration in place before the last update.")

    def quotes(text: str, section: str, scores: list[float], budget: int = 1) -> list:
        cands, by_chunk = sentences_of([_hit(text, start=40, section=section)])
        assert len(cands) == len(scores)  # the section's own heading is no candidate
        return pick(cands, np.array(scores), by_chunk, budget=budget, margin=1.0,
                    min_score=0.0)

    runs = quotes(text, f"service update > Examples > {head}", [1.0, 5.0])
    assert [r.quote for r in runs] == [head, "This will revert the service to the "
                                       "configuration in place before the last update."]
    assert runs[0].score is None  # outside the budget of one, and not scored
    assert (runs[0].start, runs[0].end) == (40, 40 + len(head))  # an exact span
    # not when a quoted sentence of the passage names the term already
    named = text.replace("This will revert", "--rollback reverts")
    assert [r.quote[:12] for r in quotes(named, f"x > {head}", [1.0, 5.0])] == ["--rollback r"]
    # nor under a heading that names nothing, nor one that is not the section's own
    plain = text.replace(" (--rollback)", "")
    assert len(quotes(plain, f"x > {head.replace(' (--rollback)', '')}", [1.0, 5.0])) == 1
    assert len(quotes(text, "x > Another section (--other)", [0.0, 1.0, 5.0])) == 1
    # a numbered heading read as two units is quoted whole, once
    numbered = ('2.\n\nRecovery Using The ".recover" Command\n\nThe easiest way to '
                'recover a database is the command line shell.')
    section = '2. Recovery Using The ".recover" Command'
    runs = quotes(numbered, section, [1.0, 5.0])
    assert [(r.start, shown(r.quote)) for r in runs][0] == (40, section)
    assert len(quotes(numbered, section, [5.0, 1.0])) == 1  # picked itself: not twice



def test_a_sentence_under_a_heading_that_quotes_a_name_is_quoted_with_it():
    """Wireshark's user guide heads the section on each window, dialog and toolbar with its
    name in quotes: "Enter a display filter string ..." tells how to find a packet
    without saying where."""
    head = "6.8.1. The \u201cFind Packet\u201d Toolbar"
    text = (f"{head}\n\nYou can search using the following criteria. Enter a display "
            "filter string into the text entry field and click the Find button.")

    def quotes(text: str, section: str) -> list:
        cands, by_chunk = sentences_of([_hit(text, start=40, section=section)])
        scores = np.array([1.0] * (len(cands) - 1) + [5.0])  # the last sentence the best
        return pick(cands, scores, by_chunk, budget=1, margin=1.0, min_score=0.0)

    runs = quotes(text, f"6.8. Finding Packets > {head}")
    assert [r.quote for r in runs] == [head, "Enter a display filter string into the text "
                                       "entry field and click the Find button."]
    assert runs[0].score is None and (runs[0].start, runs[0].end) == (40, 40 + len(head))
    # not when the quoted sentence names it already, in any case
    named = text.replace("Enter a display", "The find packet toolbar takes a display")
    assert len(quotes(named, f"6.8. Finding Packets > {head}")) == 1
    # a heading in prose quotes nothing
    plain = head.replace("\u201c", "").replace("\u201d", "")
    assert len(quotes(text.replace(head, plain), f"6.8. Finding Packets > {plain}")) == 1


def test_a_sentence_under_a_heading_that_is_a_name_is_quoted_with_it():
    """FFmpeg's filters (and bitstream filters, devices, muxers) are each a section headed
    by the filter's name alone, in lower case after its number: "EBU R128 loudness
    normalization." says what ``loudnorm`` does without naming it. A heading in prose is
    capitalised, and a quote that writes the name already needs no heading."""
    def quotes(head: str, body: str) -> list[str]:
        text = f"{head}\n\n{body}"
        cands, by_chunk = sentences_of([_hit(text, start=10, section=f"8 Audio Filters > {head}")])
        return [r.quote for r in pick(cands, np.array([5.0]), by_chunk, budget=1,
                                      margin=1.0, min_score=0.0)]

    assert quotes("8.92 loudnorm", "EBU R128 loudness normalization.") == [
        "8.92 loudnorm", "EBU R128 loudness normalization."]
    assert quotes("F.16. hstore", "This module implements a data type.")[0] == "F.16. hstore"
    assert quotes("3.22 video4linux2, v4l2", "Input video device for Linux.")[0] == \
        "3.22 video4linux2, v4l2"
    assert quotes("11.208 scale", "Scale (resize) the input video, using libswscale.") == [
        "Scale (resize) the input video, using libswscale."]  # it says "scale" already
    for head in ("3.1 Filtering", "Examples", "2.3 Two words", "1.0 RC1"):
        assert len(quotes(head, "The filter accepts the following options.")) == 1


def test_a_passage_that_continues_a_section_is_quoted_with_the_heading_that_opens_it():
    head = "PRAGMA cache_size"
    opener = Chunk("p", 3, f"{head}\n\nQuery or change the suggested cache size.", 100, 157,
                   title="T", section=f"PRAGMAs > {head}", source="s")
    later = _hit("If the argument N is positive then the suggested cache size is set to N.",
                 doc_id="p", start=158, section=f"PRAGMAs > {head}", n=4)
    cands, by_chunk = sentences_of([later])
    asked = []

    class Opener(Passages):
        def opening(self, c: Chunk) -> Chunk | None:
            asked.append(c.chunk_no)
            return opener

    runs = pick(cands, np.array([5.0]), by_chunk, budget=1, margin=1.0, min_score=0.0,
                corpus=Opener([]))
    assert [(r.chunk.chunk_no, r.start, r.end, r.quote) for r in runs] == [
        (3, 100, 100 + len(head), head), (4, 158, later.chunk.end, later.chunk.text)]
    assert asked == [4]
    # without the lookup, or when it finds none, the sentence alone
    assert len(pick(cands, np.array([5.0]), by_chunk, budget=1, margin=1.0,
                    min_score=0.0)) == 1
    assert len(pick(cands, np.array([5.0]), by_chunk, budget=1, margin=1.0, min_score=0.0,
                    corpus=Passages([later.chunk]))) == 1


def test_sentences_are_scored_for_how_to_as_a_search_engine_is_asked():
    """"how do I ..." reaches the cross-encoder as "how to ...", the form its training
    queries take; the rest of the question, and any other question, as asked."""
    assert how_to_form("how do i create my own bridge network") == \
        "how to create my own bridge network"
    assert how_to_form("How can we x? how should one y") == "How to x? how to y"
    for q in ("what does how do i mean", "my token expired, how do i get one",
              "how many pages does it keep", "how to x"):
        assert how_to_form(q) == q
    seen: list[str] = []

    class Recording(KeywordReranker):
        def predict(self, pairs):
            seen.extend(q for q, _ in pairs)
            return super().predict(pairs)

    cands, by_chunk = sentences_of([_hit("Create a network with docker network create.")])
    score_sentences("how can i make a network", cands, Recording(), by_chunk)
    assert set(seen) == {"how to make a network"}


def test_an_options_later_sentence_far_from_its_term_is_quoted_with_it_apart():
    """Valgrind's options (DocBook, as its manual ships): the term, its first sentence,
    then the sentence that answers, two further on: the term is quoted as a citation of its
    own, outside the budget, an exact span; the nearest term of the paragraph is the one."""
    text = ("Options\n\n--show-reachable=<yes|no>\nShow reachable blocks. Off by default.\n"
            "--leak-check=<no|summary|yes|full> [default: summary]\nWhen enabled, search for "
            "memory leaks. If set to summary, it says how many leaks occurred. If set to full "
            "or yes, each individual leak will be shown in detail.")
    cands, by_chunk = sentences_of([_hit(text, start=100, section="Options")])
    scores = np.array([9.0 if c.text.startswith("If set to full") else -9.0 for c in cands])
    runs = pick(cands, scores, by_chunk, budget=1, margin=4.0, min_score=0.0)
    assert [r.quote for r in runs] == [
        "--leak-check=<no|summary|yes|full> [default: summary]",
        "If set to full or yes, each individual leak will be shown in detail."]
    assert runs[0].score is None and runs[1].score == 9.0
    for r in runs:
        assert text[r.start - 100 : r.end - 100] == r.quote
    # not when the quoted sentence names the option itself
    named = text.replace("If set to full or yes", "With --leak-check=full")
    cands, by_chunk = sentences_of([_hit(named, start=100, section="Options")])
    scores = np.array([9.0 if c.text.startswith("With --leak") else -9.0 for c in cands])
    assert len(pick(cands, scores, by_chunk, budget=1, margin=4.0, min_score=0.0)) == 1


def test_a_descriptions_sentence_in_a_later_passage_is_quoted_with_the_term_before_it():
    """A description longer than a passage: the term is read in the passage before (the
    two overlap by a sentence, so their text joins), as long as the paragraph goes on."""
    term = "--track-origins=<yes|no>"
    text = (f"Options\n\n{term}\nControls whether origins are tracked. Off by default.\n"
            "When set to yes, the origins of all uninitialised values are kept.\n"
            "Origin tracking is expensive.")
    cut = text.index("Off by default.")
    first = Chunk("m", 0, text[:text.index("\nWhen set")], 0, text.index("\nWhen set"),
                  title="T", section="Options", source="s")
    second = Chunk("m", 1, text[cut:], cut, len(text), title="T", section="Options",
                   source="s")
    cands, by_chunk = sentences_of([Hit(second, 1.0)])
    scores = np.array([9.0 if c.text.startswith("Origin tracking") else -9.0 for c in cands])
    runs = pick(cands, scores, by_chunk, budget=1, margin=4.0, min_score=0.0,
                corpus=Passages([first, second]))
    assert [(r.chunk.chunk_no, r.quote) for r in runs] == [
        (0, term), (1, "Origin tracking is expensive.")]
    assert text[runs[0].start : runs[0].end] == term and runs[0].score is None
    # without the lookup, or across a paragraph break, or passages that do not join
    assert len(pick(cands, scores, by_chunk, budget=1, margin=4.0, min_score=0.0)) == 1
    apart = Chunk("m", 0, text[: cut - 2], 0, cut - 2, title="T", section="Options",
                  source="s")
    assert len(pick(cands, scores, by_chunk, budget=1, margin=4.0, min_score=0.0,
                    corpus=Passages([apart, second]))) == 1
    broken = text.replace("Off by default.\n", "Off by default.\n\n")
    cut2 = broken.index("Off by default.")
    first2 = Chunk("m", 0, broken[: cut2 + 20], 0, cut2 + 20, title="T", section="Options",
                   source="s")
    second2 = Chunk("m", 1, broken[cut2:], cut2, len(broken), title="T", section="Options",
                    source="s")
    cands, by_chunk = sentences_of([Hit(second2, 1.0)])
    scores = np.array([9.0 if c.text.startswith("Origin tracking") else -9.0 for c in cands])
    assert len(pick(cands, scores, by_chunk, budget=1, margin=4.0, min_score=0.0,
                    corpus=Passages([first2, second2]))) == 1


def test_extractive_without_a_reranker_uses_shared_terms_or_gives_nothing():
    hits = [_hit("Refunds take ten days. Zebras run fast.")]
    text, runs = extractive("how long do refunds take", hits, None)
    assert text == "Refunds take ten days. [1]" and runs[0].score is None
    assert extractive("quantum chromodynamics", hits, None) == ("", [])

@pytest.fixture
def svc(indexed):
    s = indexed.model_copy(update={"rerank": True, "relevance_floor": 0.0})
    emb = KeywordEmbedder()
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


def test_answer_without_reranker_says_nothing_checked_it(indexed):
    emb = KeywordEmbedder()
    svc = RagService(Pipeline(indexed, embedder=emb))  # rerank off: no cross-encoder
    out = svc.answer("expense claims receipt reimbursed", no_cache=True)
    assert out.answered and "nothing checked" in out.fallback
    assert out.citations[0].relevance is None


class FailsAfterFirstCall(KeywordReranker):
    """Ranks the passages, then crashes on the sentences."""

    def predict(self, pairs):
        if self.pairs_seen:
            raise RuntimeError("ONNX session crashed")
        return super().predict(pairs)


def test_reranker_failing_on_sentences_degrades_to_shared_words(indexed):
    s = indexed.model_copy(update={"rerank": True, "relevance_floor": 0.0})
    emb = KeywordEmbedder()
    svc = RagService(Pipeline(s, embedder=emb, reranker=FailsAfterFirstCall()),
                     cache=QueryCache(s.cache_dir))
    out = svc.answer("expense claims receipt reimbursed")
    assert out.answered and "Claims without a receipt" in out.answer
    assert "reranker failed on sentences (RuntimeError" in out.fallback
    assert not svc.answer("expense claims receipt reimbursed").cached  # degraded: not stored


# --- generated answers against a fake OpenAI-compatible endpoint ------------------------------


def test_a_long_sentence_is_quoted_by_clauses_that_keep_their_conditions():
    long = (
        "the results of the experiments, which were made at mach numbers from 1.5 to 4 in "
        "the supersonic tunnel of the laboratory, show that the heat transfer to the wall is "
        "reduced by as much as forty percent when the nose is blunted, unless the boundary "
        "layer is already turbulent at the shoulder, and that the pressure distribution "
        "downstream of the shoulder is not affected by bluntness in the range of reynolds "
        "numbers covered by these tests; a theory of the entropy layer is given which "
        "explains these trends ."
    )
    pieces = clauses(long, 0, len(long))
    assert len(pieces) > 1 and all(b - a <= MAX_QUOTE_CHARS for a, b in pieces)
    texts = [long[a:b] for a, b in pieces]
    # The exception stays with the claim it limits; every piece is an exact span.
    assert any("forty percent" in t and "unless the boundary layer" in t for t in texts)
    assert " ".join(texts).split() == long.split()
    # A leading condition stays with the clause after it.
    cond = "if the claim is filed late, " + "x" * 20 + " refunds are refused, " + "y " * 150
    first = cond[slice(*clauses(cond, 0, len(cond))[0])]
    assert first.startswith("if the claim is filed late,") and "refunds are refused" in first
    # Quoted through extractive: a clause, not the whole 500-character sentence.
    text, runs = extractive("Does blunting the nose reduce heat transfer?", [_hit(long)],
                            KeywordReranker(), budget=1)
    assert runs and len(runs[0].quote) <= MAX_QUOTE_CHARS
    assert "unless the boundary layer is already turbulent" in runs[0].quote


def test_near_copies_are_one_passage_to_an_answer_and_wait_in_a_search():
    from mcp_rag.retrieve.rerank import distinct, page_first

    api = ("List containers. GET /{}/containers/json. Query parameters: all – 1/True/true "
           "or 0/False/false, Show all containers. Only running containers are shown by "
           "default (i.e., this defaults to false). limit – Show limit last created "
           "containers, include non-running ones. size – 1/True/true or 0/False/false, "
           "Show the containers sizes.")
    v1, v2 = api.format("v1.20"), api.format("v1.21")  # one endpoint, two API versions
    other = "docker ps --all shows every container, stopped ones included."
    hits = [_hit(v1, "api/v1.20.md"), _hit(v2, "api/v1.21.md"), _hit(other, "ps.md")]
    assert [h.chunk.doc_id for h in distinct(hits)] == ["api/v1.20.md", "ps.md"]
    assert distinct(hits, threshold=1.0) == hits  # only identical word triples
    # search lists the copy after the other pages' best passages, where it crowds nothing
    assert [h.chunk.doc_id for h in page_first(hits)] == ["api/v1.20.md", "ps.md",
                                                         "api/v1.21.md"]
    assert page_first(hits, threshold=1.0) == hits


def _over_page(tmp_path, models_dir, *path: str, **settings) -> RagService:
    """A service with the real model pack over one page of ``tests/fixtures/third_party``
    (``settings``: any other than the defaults)."""
    from helpers import REPO

    from mcp_rag.index.indexer import Indexer

    s = Settings(index=tmp_path / "i", models=models_dir, cache_enabled=False, **settings)
    svc = RagService(Pipeline.from_settings(s, require_index=False))
    Indexer(s, svc.pipeline.embedder).index([REPO.joinpath("tests", "fixtures", "third_party",
                                                           *path)], quiet=True)
    svc.pipeline.refresh()
    return svc


@pytest.mark.slow
def test_an_options_section_is_quoted_with_its_heading(tmp_path, models_dir):
    """Docker's `system prune` page (as shipped): the filters are described under
    "Filtering (--filter)", whose sentences never say `--filter` but in its first."""
    svc = _over_page(tmp_path, models_dir, "docker-docs", "system_prune.md")
    out = svc.answer("How do I remove only objects with a given label?", no_cache=True)
    assert out.answered and out.answer.startswith("Filtering (--filter) [1] The currently "
                                                  "supported filters are:"), out.answer
    text = svc.pipeline.reader.document(out.citations[0].doc_id).text
    for c in out.citations:  # the heading is quoted as written, where it is
        assert text[c.span[0]:c.span[1]] == c.quote
    assert out.citations[0].quote == "Filtering (--filter)"
    assert out.citations[0].section.endswith("Filtering (--filter)")


@pytest.mark.slow
def test_a_how_to_question_is_answered_with_the_command_that_does_it(tmp_path, models_dir):
    """Docker's `network create` page (as shipped): asked how to create a bridge network,
    the answer quotes the sentence with the command, not only what the default bridge
    is (scored for "how do I ...", the cross-encoder prefers the latter)."""
    svc = _over_page(tmp_path, models_dir, "docker-docs", "network_create.md")
    out = svc.answer("How do I create my own bridge network?", no_cache=True)
    assert out.answered and "$ docker network create -d bridge my-bridge-network" in out.answer
    text = svc.pipeline.reader.document(out.citations[0].doc_id).text
    assert all(text[c.span[0]:c.span[1]] == c.quote for c in out.citations)
    assert any("you can\ncreate new ones using the network create command." in c.quote
               for c in out.citations)


@pytest.mark.slow
def test_an_answer_starts_with_the_best_sentence_of_the_first_passage(tmp_path, models_dir):
    """PostgreSQL's pages (as shipped): asked how to cluster a table, `search` ranks the
    CLUSTER page's opening passage first; its line "CLUSTER — cluster a table according
    to an index" scores under sentences of the page's notes, within the margin, and the
    answer starts with it."""
    svc = _over_page(tmp_path, models_dir, "postgresql-docs")
    out = svc.answer("How do I cluster a table on an index?", no_cache=True)
    assert out.answered and out.sources[0].chunk_id == "sql-cluster.html#0"
    assert out.answer.startswith("CLUSTER — cluster a table according to an index [1] ")
    first = out.citations[0]
    assert first.chunk_id == "sql-cluster.html#0"
    text = svc.pipeline.reader.document(first.doc_id).text
    assert all(text[c.span[0]:c.span[1]] == c.quote for c in out.citations)
    assert first.relevance is not None and first.relevance < max(c.relevance or 0
                                                                 for c in out.citations)


@pytest.mark.slow
def test_a_pragmas_later_passage_is_quoted_with_the_pragmas_heading(tmp_path, models_dir):
    """SQLite's pragma page (as shipped): PRAGMA cache_size's section runs over several
    passages; one that does not open it is quoted with the heading the first opens with."""
    svc = _over_page(tmp_path, models_dir, "sqlite-pragma", "pragma.html")
    reader, p = svc.pipeline.reader, svc.pipeline
    section = [c for c in reader.doc_chunks("pragma.html", 0, 10_000)
               if c.section.endswith("> PRAGMA cache_size")]
    assert len(section) >= 2 and section[0].text.startswith("PRAGMA cache_size\n")
    assert p.opening(section[0]) is None  # it opens the section
    assert all(p.opening(c) == section[0] for c in section[1:])
    out = svc.answer("How do I set how many pages SQLite keeps in its cache?", no_cache=True)
    assert out.answered and "PRAGMA cache_size [" in out.answer, out.answer
    head = next(c for c in out.citations if c.quote == "PRAGMA cache_size")
    assert head.chunk_id == section[0].chunk_id and head.relevance is None
    text = reader.document("pragma.html").text
    assert all(text[c.span[0]:c.span[1]] == c.quote for c in out.citations)


@pytest.mark.slow
def test_an_answer_quotes_one_of_several_versions_of_a_page(tmp_path, models_dir):
    from helpers import REPO

    from mcp_rag.app.requests import AnswerRequest, SearchRequest
    from mcp_rag.app.service import RagService
    from mcp_rag.index.indexer import Indexer
    from mcp_rag.retrieve.pipeline import Pipeline
    from mcp_rag.settings import Settings

    prune = (REPO / "tests" / "fixtures" / "third_party" / "docker-docs" / "system_prune.md")
    for version in ("20.10", "23.0", "24.0"):  # the same page in three releases' docs
        (tmp_path / "docs" / version).mkdir(parents=True)
        (tmp_path / "docs" / version / "system_prune.md").write_text(
            prune.read_text().replace("docker system prune", f"docker system prune  # {version}"))
    s = Settings(index=tmp_path / "i", models=models_dir, cache_enabled=False)
    svc = RagService(Pipeline.from_settings(s, require_index=False))
    Indexer(s, svc.pipeline.embedder).index([tmp_path / "docs"], quiet=True)
    svc.pipeline.refresh()
    q = "How do I remove unused containers, networks and images?"
    found = svc.run(SearchRequest(q, k=10), no_cache=True)
    assert len({p.doc_id for p in found.results}) == 3  # search shows every version
    out = svc.run(AnswerRequest(q), no_cache=True)
    assert out.answered
    texts = [p.text for p in out.sources]
    assert len(texts) == len(set(texts)) and len({p.doc_id for p in out.sources}) < 3, [
        p.doc_id for p in out.sources]


@pytest.mark.slow
def test_an_options_later_paragraph_in_a_later_passage_is_quoted_with_it(tmp_path, models_dir):
    """pg_dump's reference page (as shipped): the description of `--jobs=njobs` runs over
    more than one passage; the sentences that answer, in a later one, are quoted with the
    option, read in the passage before (``Pipeline.preceding``)."""
    svc = _over_page(tmp_path, models_dir, "postgresql-docs", "app-pgdump.html")
    reader, p = svc.pipeline.reader, svc.pipeline
    chunks = reader.doc_chunks("app-pgdump.html", 0, 10_000)
    assert p.preceding(chunks[0]) is None
    assert all(p.preceding(c) == (b if b.section == c.section else None)
               for b, c in zip(chunks, chunks[1:], strict=False))
    out = svc.answer("How does a pg_dump worker notice that someone else wants an exclusive "
                     "lock?", no_cache=True)
    assert out.answered and out.answer.startswith("-j njobs, --jobs=njobs [1] "), out.answer
    term, *said = out.citations
    assert term.relevance is None and said
    assert all(c.chunk_id != term.chunk_id for c in said)
    text = reader.document("app-pgdump.html").text
    assert all(text[c.span[0]:c.span[1]] == c.quote for c in out.citations)


@pytest.mark.slow
def test_the_embedder_reorders_real_sentences_and_the_answer_reports_logits(tmp_path, models_dir):
    """libpq's page on single-row mode (PostgreSQL 15, as shipped), the pack's models, the
    embedder given a share of 0.6 (``answer_dense_share``): its say moves the sentence
    naming the functions to call up the order; what each citation reports is still the
    cross-encoder's logit, and its span is exact."""
    from mcp_rag.app.cache import normalize_query

    # exact int8 products: the cross-encoder's logits as a VNNI CPU gives them on every
    # kind (on AVX2 alone its default products saturate, and the near ties go otherwise)
    svc = _over_page(tmp_path, models_dir, "postgresql-docs", "libpq-single-row-mode.html",
                     answer_dense_share=0.6, rerank_exact_int8=True)
    p = svc.pipeline
    q = normalize_query("How do I fetch query results one row at a time in libpq?")
    r = p.search(q, k=4, rerank=True, question=q, copies=False)
    assert np.array_equal(r.query_vector, p.embedder.embed_query(q))  # the first stage's
    cands, by_chunk = sentences_of(r.hits)
    logits = score_sentences(q, cands, p.reranker, by_chunk)
    mixed = with_dense(q, cands, logits, p.embedder, 0.6, by_chunk)
    assert with_dense(q, cands, logits, p.embedder, 0.6, by_chunk,
                      r.query_vector).tolist() == mixed.tolist()
    i = next(i for i, c in enumerate(cands) if c.text.startswith("For such cases, applications"
                                                                 " can use PQsendQuery"))
    assert (mixed > mixed[i]).sum() < (logits > logits[i]).sum()
    _, runs = extractive(q, r.hits, p.reranker, corpus=r.corpus, embedder=p.embedder,
                         dense_share=0.6, query_vector=r.query_vector)
    assert {x.score for x in runs if x.score is not None} <= set(logits.tolist())
    out = svc.answer("How do I fetch query results one row at a time in libpq?", no_cache=True)
    assert out.answered and [c.quote for c in out.citations] == [x.quote for x in runs]
    text = p.reader.document(out.citations[0].doc_id).text
    assert all(text[c.span[0]:c.span[1]] == c.quote for c in out.citations)
