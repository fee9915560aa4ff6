from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_rag.ingest.chunking import chunk_document, index_text, split_sentences
from mcp_rag.types import Document


def words(s: str) -> int:
    return len(s.split())


def test_sentences_respect_abbreviations_decimals_and_initials():
    text = "Dr. Smith gave 3.5 mg, e.g. twice. It worked! J. Doe et al. agreed. Did it? Yes."
    got = [text[s.start : s.end] for s in split_sentences(text)]
    assert got == [
        "Dr. Smith gave 3.5 mg, e.g. twice.",
        "It worked!",
        "J. Doe et al. agreed.",
        "Did it?",
        "Yes.",
    ]


def test_chinese_and_japanese_sentences_end_at_a_full_width_stop():
    zh = "市民可以扫码解锁单车。前三十分钟免费，之后每小时两元！\n车辆必须停放在指定区域。"
    assert [zh[s.start:s.end] for s in split_sentences(zh)] == [
        "市民可以扫码解锁单车。", "前三十分钟免费，之后每小时两元！", "车辆必须停放在指定区域。"]
    ja = "「本は十冊まで借りられますか？」と聞かれました。貸出期間は二週間です。"
    assert [ja[s.start:s.end] for s in split_sentences(ja)] == [  # a quote ends nothing
        "「本は十冊まで借りられますか？」と聞かれました。", "貸出期間は二週間です。"]


def test_paragraphs_and_list_lines_are_boundaries_but_wrapped_prose_is_not():
    text = (
        "Intro line.\n\n- first item\n- second item\n"
        "This hard-wrapped sentence keeps going past the end of the line and\n"
        "ends here."
    )
    spans = split_sentences(text)
    got = [(text[s.start : s.end], s.paragraph) for s in spans]
    assert got == [
        ("Intro line.", 0),
        ("- first item", 1),
        ("- second item", 1),
        (
            "This hard-wrapped sentence keeps going past the end of the line and\nends here.",
            1,
        ),
    ]


def test_chunks_pack_sentences_with_one_sentence_overlap_and_exact_spans():
    text = "One two three. Four five six. Seven eight nine. Ten eleven twelve."
    doc = Document("d", "d.txt", "T", text)
    chunks = chunk_document(doc, words, target_tokens=6, overlap=1)
    assert [c.text for c in chunks] == [
        "One two three. Four five six.",
        "Four five six. Seven eight nine.",
        "Seven eight nine. Ten eleven twelve.",
    ]
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.chunk_id == f"d#{c.chunk_no}"
    assert [c.chunk_no for c in chunks] == [0, 1, 2]


def test_overlap_zero_and_chunks_never_exceed_target():
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    doc = Document("d", "d.txt", "T", text)
    chunks = chunk_document(doc, words, target_tokens=20, overlap=0)
    assert all(words(c.text) <= 20 for c in chunks)
    assert " ".join(c.text for c in chunks) == text  # no overlap: a partition


def test_long_sentence_is_split_on_words():
    long = " ".join(f"w{i}" for i in range(25)) + "."
    doc = Document("d", "d.txt", "T", f"Short one. {long} Tail.")
    chunks = chunk_document(doc, words, target_tokens=10, overlap=0)
    assert all(words(c.text) <= 10 for c in chunks)
    assert len(chunks) == 3  # 2 + 26 + 1 words in pieces of at most 10
    assert chunks[0].text.startswith("Short one. w0 w1")
    assert chunks[-1].text.endswith("w24. Tail.")
    assert "".join(c.text for c in chunks).replace(" ", "") == doc.text.replace(" ", "")


def test_chunk_does_not_cross_sections_and_carries_section_and_page():
    text = "Alpha one. Alpha two.\n\nBeta one. Beta two."
    beta = text.index("Beta")
    doc = Document(
        "d", "d.md", "Doc", text, sections=((0, "A"), (beta, "B")), pages=((0, 1), (beta, 2))
    )
    chunks = chunk_document(doc, words, target_tokens=100, overlap=1)
    assert [(c.text, c.section, c.page) for c in chunks] == [
        ("Alpha one. Alpha two.", "A", 1),
        ("Beta one. Beta two.", "B", 2),
    ]


def test_index_text_prefixes_title_and_section():
    doc = Document("d", "d.md", "Refunds", "Only unused items.", sections=((0, "Conditions"),))
    (c,) = chunk_document(doc, words)
    assert index_text(c) == "Refunds\nConditions\nOnly unused items."


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.sampled_from("abc XYZ.!?\n"), min_size=0, max_size=60), max_size=8
    ),
    st.integers(min_value=3, max_value=30),
    st.integers(min_value=0, max_value=2),
)
def test_spans_always_match_text_and_cover_every_word(parts, target, overlap):
    text = "\n\n".join(parts)
    doc = Document("d", "d.txt", "T", text)
    chunks = chunk_document(doc, words, target_tokens=target, overlap=overlap)
    covered = set()
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_lowercase_spaced_periods_split_into_sentences():
    # How older and OCR'd collections are written: lowercase, " . " between sentences.
    sents = [
        "experimental investigation of the aerodynamics of a wing in a slipstream .",
        "an experimental study of a wing in a propeller slipstream was made in order to "
        "determine the spanwise distribution of the lift increase due to slipstream .",
        "the results were intended in part as an evaluation basis, e.g. for theory.",
        "the data show no effect of the nacelle !",
        "a simple theory is given",
    ]
    text = " ".join(sents)
    got = [text[s.start : s.end] for s in split_sentences(text)]
    assert got == sents
    # Capitalised prose keeps its rules: no cut before a lowercase word after a period.
    prose = "Values rose by approx. ten percent. We used e.g. saline. It worked ."
    assert [prose[s.start : s.end] for s in split_sentences(prose)] == [
        "Values rose by approx. ten percent.", "We used e.g. saline.", "It worked ."
    ]
