"""Documents that are not in English: each passage's language detected, BM25 analysing it by
that language's rules (a query goes through the analysers of the index's languages), the
mix shown by status, and a note when the models are English-only."""

from __future__ import annotations

import shutil

import pytest
from helpers import SAMPLE, KeywordEmbedder

from mcp_rag.app.catalog import Catalog, language_note
from mcp_rag.index.lexical import detect, query_languages, tokenize, tokenize_query
from mcp_rag.index.scope import key_terms
from mcp_rag.index.update import index_paths
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.types import Mode

GERMAN = """# Bahnverkehr im Winter

Bei starkem Schneefall fahren die Regionalzüge nach einem Ersatzfahrplan. Die Weichen
werden beheizt, damit sie nicht einfrieren. Fahrgäste sollten vor der Abfahrt die
aktuellen Verbindungen in der App prüfen, weil einzelne Züge ausfallen können.
"""
FRENCH = """# La boulangerie du village

Le boulanger pétrit la pâte chaque matin à quatre heures. Les baguettes cuisent dans un
four à bois pendant vingt minutes. Le samedi, la boulangerie prépare aussi des croissants
et des pains aux raisins pour le marché.
"""
CHINESE = """# 城市自行车共享

市民可以使用手机扫码解锁共享单车。每次骑行的前三十分钟免费，之后每小时收费两元。
车辆必须停放在指定区域，否则会被收取调度费用。冬季夜间服务时间缩短。
"""
JAPANESE = """# 図書館の利用案内

図書館の本は一度に十冊まで借りることができます。貸出期間は二週間で、予約が
なければ一回だけ延長できます。返却ポストは閉館後も利用できます。
"""


def mixed_folder(tmp_path):
    kb = tmp_path / "kb"
    shutil.copytree(SAMPLE, kb)
    for name, text in (("winter.md", GERMAN), ("boulangerie.md", FRENCH),
                       ("bikes.md", CHINESE), ("library.md", JAPANESE)):
        (kb / name).write_text(text)
    return kb


def test_each_language_is_told_apart():
    assert detect(GERMAN) == "de" and detect(FRENCH) == "fr"
    assert detect(CHINESE) == "zh" and detect(JAPANESE) == "ja"
    assert detect("How do I reset my password? Go to Settings and choose Security.") == "en"
    # unsure, or a language BM25 has no rules for: English, as before
    assert detect("KB-ERR-2847") == "en" and detect("Lorem ipsum") == "en"


def test_chinese_becomes_bigrams_and_german_is_stemmed_the_german_way():
    assert tokenize("火车站", "zh") == ["火车", "车站"]
    assert "fahrgast" in tokenize("Fahrgäste", "de")  # German Snowball; English leaves it
    assert tokenize("Fahrgäste") == ["fahrgäst"]
    # an English-only index analyses a query exactly as before
    q = "How do I reset KB-ERR-2847?"
    assert tokenize_query(q, ("en",)) == tokenize(q)
    assert query_languages(None) == ("en",)
    assert query_languages({"en": 90, "de": 9, "fr": 1}) == ("en", "de")  # fr under 2 %


def test_a_document_in_each_language_is_found_by_a_question_in_it_with_bm25_alone(
        tmp_path, settings):
    kb = mixed_folder(tmp_path)
    index_paths(settings.index, [kb], KeywordEmbedder(), quiet=True)
    p = Pipeline(settings, embedder=KeywordEmbedder())
    for question, doc in (("Wann fahren die Regionalzüge bei Schneefall?", "winter.md"),
                          ("Combien de temps cuisent les baguettes ?", "boulangerie.md"),
                          ("共享单车怎么收费？", "bikes.md"),
                          ("本は何冊まで借りられますか？", "library.md"),
                          ("What does error KB-ERR-2847 mean?", "support/error-codes.md")):
        hits = p.search(question, k=3, mode=Mode.BM25).hits
        assert hits and hits[0].chunk.doc_id == doc, (question, [h.chunk.doc_id for h in hits])


def test_status_shows_the_mix_and_says_when_the_models_are_english_only(tmp_path, settings):
    kb = tmp_path / "kb"
    kb.mkdir()
    for i in range(3):
        (kb / f"winter{i}.md").write_text(GERMAN)
    (kb / "bikes.md").write_text(CHINESE)
    (kb / "notes.md").write_text("# Notes\n\nThe meeting moved to Tuesday at ten.\n")
    index_paths(settings.index, [kb], KeywordEmbedder(), quiet=True)
    catalog = Catalog.open(settings)
    status = catalog.status()
    catalog.close()
    assert status.languages == {"de": 3, "en": 1, "zh": 1}
    assert status.language_note is None  # this test's embedder is not the English pack
    note = language_note(status.languages, "BAAI/bge-small-en-v1.5",
                         "cross-encoder/ms-marco-MiniLM-L-12-v2")
    assert note is not None and note.startswith("80% of the passages are not in English "
                                                "(de 60%, zh 20%)")
    assert "paraphrase-multilingual-MiniLM-L12-v2" in note and "--rebuild" in note
    assert language_note({"en": 95, "de": 5}, "BAAI/bge-small-en-v1.5", None) is None


def test_a_chinese_or_japanese_question_is_looked_up_as_bm25_indexes_such_passages():
    class Seen:
        def dfs(self, words):
            return {w: 3 for w in words if w in {"单车", "收费", "図書", "書館"}}

    terms = {t.stem: t.df for t in key_terms("共享单车怎么收费？", Seen())}
    assert terms == {"共享": 0, "享单": 0, "单车": 3, "车怎": 0, "怎么": 0, "么收": 0, "收费": 3}
    # Japanese: bigrams with hiragana in them (particles, endings) say nothing of the topic
    assert [t.stem for t in key_terms("図書館の本は", Seen())] == ["図書", "書館"]
    # calibration's pseudo-questions read runs whole, as they were calibrated
    assert [t.stem for t in key_terms("図書館の本は", Seen(), bigrams=False)] == ["図書館の本は"]


@pytest.mark.slow
def test_a_question_the_english_models_cannot_read_is_decided_by_its_words(
        tmp_path, models_dir):
    from mcp_rag.app.requests import AnswerRequest
    from mcp_rag.app.service import RagService
    from mcp_rag.index.indexer import Indexer
    from mcp_rag.settings import Settings

    s = Settings(index=tmp_path / "i", models=models_dir, cache_enabled=False)
    svc = RagService(Pipeline.from_settings(s, require_index=False))
    Indexer(s, svc.pipeline.embedder).index([mixed_folder(tmp_path)], quiet=True)
    svc.pipeline.refresh()
    ask = lambda q: svc.run(AnswerRequest(q), no_cache=True)  # noqa: E731
    # The pack's cross-encoder gives a recipe asked of these documents a confident logit;
    # the documents never hold most of its words, so it is refused, saying why.
    out = ask("红烧肉需要炖多长时间？")
    assert not out.answered and out.answerability.signals["ce"] > 0
    assert "read English only" in out.no_answer_reason and "'红烧'" in out.no_answer_reason
    assert not ask("富士山の高さは何メートルですか？").answered
    # questions in the documents' words are answered, from them (in a corpus this small,
    # "怎么" (how) is a word it never mentions too: its questions must use its words)
    for q, doc in (("共享单车每次骑行的前三十分钟免费吗？", "bikes.md"),
                   ("図書館の貸出期間は何週間ですか？", "library.md")):
        out = ask(q)
        assert out.answered and out.citations[0].doc_id == doc, (q, out.answer)
    # quoted sentence by sentence (a full-width stop ends one), a wrapped line joined back
    out = ask("共享单车每次骑行的前三十分钟免费吗？")
    assert out.answer.startswith("每次骑行的前三十分钟免费，之后每小时收费两元。")
    assert "市民可以使用手机扫码解锁共享单车" not in out.answer  # the paragraph's other sentence
    assert "予約がなければ" in ask("図書館の貸出期間は何週間ですか？").answer
