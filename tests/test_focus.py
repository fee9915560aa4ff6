"""The window of a passage the cross-encoder reads (retrieve.focus)."""

from __future__ import annotations

from helpers import KeywordReranker

from mcp_rag.index.lexical import tokenize
from mcp_rag.ingest.chunking import index_text
from mcp_rag.models.rerank import token_starts
from mcp_rag.retrieve.focus import heading, windows
from mcp_rag.types import Chunk

FILLER = [
    "The committee met on a Tuesday in the spring of that year.",
    "Minutes were taken by the secretary and circulated afterwards.",
    "Several members asked for the agenda to be sent earlier next time.",
    "Coffee was served in the hall during the break between sessions.",
]
ANSWER = "Warfarin doses must be halved when amiodarone is started."


def starts(texts):
    return token_starts(KeywordReranker(), texts)


def count(texts):
    return [len(s) for s in starts(texts)]


def chunk(sentences, title="Meeting notes", section="Pharmacy"):
    text = " ".join(sentences)
    return Chunk("notes.md", 0, text, 0, len(text), title=title, section=section)


def weights(question):
    return {t: 1.0 for t in tokenize(question)}


def test_a_passage_within_the_window_is_read_whole():
    c = chunk(FILLER[:1])
    assert windows([c], weights("warfarin"), 200, starts) == [index_text(c)]
    assert windows([c], weights("warfarin"), 0, starts) == [index_text(c)]  # 0: no window


def test_a_long_passage_is_cut_to_its_heading_and_the_sentences_the_question_is_about():
    c = chunk([*FILLER, ANSWER, *FILLER])
    budget = 40
    [text] = windows([c], weights("What warfarin dose with amiodarone?"), budget, starts)
    assert text.startswith(heading(c)) and heading(c) == "Meeting notes\nPharmacy\n"
    assert ANSWER in text
    assert count([text])[0] <= budget + 1  # heading and body counted apart
    body = text[len(heading(c)):]
    assert body in c.text  # whole sentences of the chunk, in order


def test_rare_words_outweigh_common_ones():
    c = chunk([*FILLER, "The agenda listed warfarin.", *FILLER, ANSWER])
    w = {"agenda": 0.1, "warfarin": 5.0, "amiodaron": 5.0}
    [text] = windows([c], w, 25, starts)
    assert ANSWER in text


def test_with_no_question_word_in_it_the_passage_is_read_from_its_start():
    c = chunk([*FILLER, *FILLER])
    [text] = windows([c], weights("quantum chromodynamics"), 30, starts)
    assert text[len(heading(c)):].startswith(FILLER[0])


def test_a_single_long_sentence_is_left_to_the_reranker_to_cut():
    c = chunk([" ".join(["word"] * 200) + "."], title="", section="")
    assert heading(c) == ""
    assert windows([c], weights("word"), 20, starts) == [c.text]
