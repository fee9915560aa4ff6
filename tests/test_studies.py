"""The benchmark studies measure what the shipped code does (research/)."""

from __future__ import annotations

from helpers import KeywordEmbedder, KeywordReranker

from mcp_rag.retrieve.pipeline import Pipeline
from research import answerability_study as study


def test_the_study_keeps_the_signals_of_a_question_the_decision_refuses(indexed):
    q = "How do librarians catalogue serials with automation?"
    served = Pipeline(indexed.model_copy(update={"rerank": True}), embedder=KeywordEmbedder(),
                      reranker=KeywordReranker())
    assert served.search(q, k=10, rerank=True).hits == []  # refused where it is served
    s = study.study_settings(indexed.index).model_copy(update={"models": indexed.models})
    pipe = Pipeline(s, embedder=KeywordEmbedder(), reranker=KeywordReranker())
    rec = study.raw_signals(pipe, q)
    assert rec["logits"] and all(v is not None for v in rec["logits"])
    assert rec["nearest"] is not None and rec["terms"]


def test_the_study_calibrates_as_an_index_build_does(indexed):
    pipe = Pipeline(indexed.model_copy(update={"rerank": False}), embedder=KeywordEmbedder())
    built = pipe.reader.calibration
    made = study.calibration_of(pipe)
    assert built is not None
    for key in ("dense_low", "dense_high", "pseudo_questions", "bank_questions"):
        assert made[key] == built[key]


def test_the_rerank_rule_study_orders_as_search_does(indexed):
    from research import rerank_rule

    s = indexed.model_copy(update={"rerank": True, "relevance_floor": None,
                                   "answerability": False})
    pipe = Pipeline(s, embedder=KeywordEmbedder(), reranker=KeywordReranker())
    # the blend reorders the documents of both (as the keyword cross-encoder scores them)
    for q in ("Refund for annual plan cancellation?", "SLA response time for enterprise customers"):
        rec = rerank_rule.record(pipe, "q", q, {})
        assert rerank_rule.order(rec, s.rerank_weight, False) != rerank_rule.order(rec, 0, False)
        served = pipe.search(q.casefold().rstrip("?"), k=s.rerank_candidates, rerank=True)
        assert rerank_rule.order(rec, s.rerank_weight, False) == list(
            dict.fromkeys(h.chunk.doc_id for h in served.hits))
        first = pipe.search(q, k=s.rerank_candidates, rerank=False)
        assert rerank_rule.order(rec, 0.0, False) == list(
            dict.fromkeys(h.chunk.doc_id for h in first.hits))


def test_the_evidence_study_applies_the_shipped_check_and_its_variants(tmp_path):
    from research.evidence_terms import RULES, choose, corpus_of, verdict

    shipped = next(r for name, r in RULES.items() if name.startswith("shipped"))
    n = 1000
    rec = {"question": "How do I use MySQL with pg_dump?", "kind": "same_field",
           "answered": True, "n_chunks": n, "features": {"dense_pos": 0.5},
           "terms": [["mysql", "mysql", 3], ["pg_dump", "pg_dump", 0]],
           "texts": ["Back up a database with the .backup command."]}
    assert verdict(rec, *shipped) == "refused"
    assert verdict(rec, 0.5, True, True, None) == "refused"  # MySQL is mentioned elsewhere
    close = {"features": {"dense_pos": 1.2}}  # as close to the corpus as its own sentences
    assert verdict(rec | close, *shipped) == "refused"  # a how-to question: whatever the gate
    assert verdict(rec | close, *RULES["dense_pos < 0.9 only (until session 6)"]) == "partial"
    claim = rec | close | {"question": "MySQL backs up databases with pg_dump."}
    assert verdict(claim, *shipped) == "partial"  # not a how-to question: the gate
    held = rec | {"texts": ["MySQL has no .backup command."]}
    assert verdict(held, *shipped) == "refused"  # the steps are for pg_dump, never mentioned
    mentioned = {"terms": [["mysql", "mysql", 3], ["pg_dump", "pg_dump", 2]]}
    assert verdict(held | mentioned, *shipped) == "refused"  # mentioned elsewhere, not here
    claimed = claim | {"texts": ["MySQL has no .backup command."]} | mentioned
    assert verdict(claimed, *shipped) == "partial"  # a claim names no steps
    titled = rec | {"question": "Is MySQL Good With Pg_dump?"}
    assert verdict(titled, *shipped) == "refused"  # pg_dump is code, title case or not
    assert verdict(titled | {"terms": [["mysql", "mysql", 3]]}, *shipped) == "answered"
    assert corpus_of(tmp_path / "sf-on-nf.jsonl") == "nfcorpus"
    assert corpus_of(tmp_path / "cacm-ood.jsonl") == "cacm"
    # a gate that refuses an in-scope question is not chosen; the largest safe one is
    ins = {"question": "What does IFIT1 do?", "kind": "in_scope", "answered": True,
           "n_chunks": n, "features": {"dense_pos": 0.95},
           "terms": [["ifit1", "ifit1", 0]], "texts": ["ISG56 binds capped RNA."]}
    assert choose({"a": [ins, rec]}) == 0.9


def test_the_long_request_study_re_decides_with_the_first_sentence():
    from research.long_requests import decided

    rec = {"features": {"ce": 2.5, "dense_pos": 0.1, "unknown": 0.2, "cover": 0.3}}
    assert decided(rec, None)  # the whole abstract's logit carries it
    assert not decided(rec, -6.0)  # what it asks does not


def test_the_answer_pick_study_replays_what_answer_quotes(indexed):
    from mcp_rag.answer.extractive import extractive, pick
    from research.answer_pick import lost, scored, steered

    s = indexed.model_copy(update={"rerank": True})
    pipe = Pipeline(s, embedder=KeywordEmbedder(), reranker=KeywordReranker())
    q = "Can I get a refund on my annual plan?"
    (row,) = scored(pipe, [{"id": "q", "kind": "in_scope", "question": q, "keys": ["refund"]}])
    runs = pick(row["cands"], row["scores"], row["by_chunk"], budget=s.answer_sentences,
                margin=row["margin"], min_score=row["min_score"])
    hits = pipe.search(q.casefold().rstrip("?"), k=s.answer_passages, rerank=True,
                       question=q, copies=False).hits
    _, served = extractive(q, hits, pipe.reranker, budget=s.answer_sentences,
                           margin=s.answer_margin, min_score=s.answer_min_score)
    assert runs and [(r.chunk.doc_id, r.start, r.end) for r in runs] == [
        (r.chunk.doc_id, r.start, r.end) for r in served]
    # the study's variants start from the same pick
    assert steered(row, "today") == runs and steered(row, "words 0") == runs
    assert lost(row) == "held"
    # reading the passages next to the top one keeps the passages read, and adds
    assert set(row["near"]) == {"next of top", "prev+next of top", "next of best",
                                "prev+next of best"}
    near = steered(row, "prev+next of top")
    assert near and near[0].chunk.doc_id == runs[0].chunk.doc_id
    # the contrast leaves a question that is not a how-to as it is, and at β 0 a how-to too
    assert row["what"] is None and steered(row, "contrast 0.5") == runs
    (how,) = scored(pipe, [{"id": "h", "kind": "in_scope", "keys": ["refund"],
                            "question": "How do I get a refund on my annual plan?"}])
    assert how["what"] is not None and len(how["what"]) == len(how["scores"])
    assert steered(how, "contrast 0") == steered(how, "today")


def test_the_word_weight_study_makes_partial_as_the_shipped_rule_does():
    from mcp_rag.retrieve.evidence import FOCAL_IDF, WEIGHED_LOGITS
    from research.word_weight import partial

    row = {"words": [
        {"word": "materialized", "share": FOCAL_IDF, "held": False, "weight": WEIGHED_LOGITS},
        {"word": "bulk", "share": 0.9, "held": False, "weight": WEIGHED_LOGITS - 0.1},
        {"word": "view", "share": 0.9, "held": True, "weight": 9.0},
        {"word": "refresh", "share": FOCAL_IDF - 0.01, "held": False, "weight": 9.0}]}
    assert partial(row, FOCAL_IDF, WEIGHED_LOGITS) == ["materialized"]


def test_the_page_prior_study_orders_as_search_does_without_a_prior(indexed):
    from research.page_prior import order
    from research.rerank_rule import record

    s = indexed.model_copy(update={"rerank": True, "relevance_floor": None,
                                   "answerability": False})
    pipe = Pipeline(s, embedder=KeywordEmbedder(), reranker=KeywordReranker())
    q = "Refund for annual plan cancellation?"
    r = record(pipe, "q", q, {})
    rec = {"rows": [r], "passages": {c[0]: 1 + len(c[0]) % 3 for c in r["cands"]},
           "weight": s.rerank_weight}
    served = pipe.search(q.casefold().rstrip("?"), k=s.rerank_candidates, rerank=True)
    assert order(rec, r, 0.0) == list(dict.fromkeys(h.chunk.doc_id for h in served.hits))


def test_the_page_first_study_shows_what_search_shows(indexed):
    from research.page_first import DEPTH, record

    s = indexed.model_copy(update={"rerank": True, "page_first": False})
    pipe = Pipeline(s, embedder=KeywordEmbedder(), reranker=KeywordReranker())
    q = "refund annual plan cancel prorated months fee"
    rec = record(pipe, q)
    by_page = Pipeline(s.model_copy(update={"page_first": True}), embedder=KeywordEmbedder(),
                       reranker=KeywordReranker())
    assert len(set(rec["ranked"])) < len(rec["ranked"])  # a page with several passages
    assert rec["shown"] == [h.chunk.doc_id for h in by_page.search(q, k=DEPTH).hits]
    assert rec["shown"] != rec["ranked"] and sorted(rec["shown"]) == sorted(rec["ranked"])


def test_the_page_lead_study_starts_from_the_order_search_shows():
    from research.page_lead import carded, lead, reranked

    page = "image prune\n\nUsage: docker image prune [OPTIONS]\n\nRemove unused images. More."
    assert lead("image prune", page) == "Usage: docker image prune [OPTIONS] Remove unused images."
    row = {"pages": ["b.md"], "card": {400: {"a.md": 0.1, "b.md": 0.9, "c.md": 0.2}},
           "search": [("a.md", 0.9), ("a.md", 0.8), ("b.md", 0.5), ("c.md", 0.1)],
           "cands": ["a.md", "b.md", "c.md"], "first": [0.9, 0.8, 0.1],
           "plain": [1.0, 0.0, -9.0], "lead": [1.0, 6.0, -9.0], "share": 0.4, "floor": -5.0}
    assert carded(row, 400, 0.0) == 2  # the page order search shows
    assert carded(row, 400, 0.5) == 1  # the card puts b first
    assert reranked(row, "plain") == 2 and reranked(row, "lead") == 1


def test_the_dense_pick_study_blends_as_answer_does(indexed):
    import pytest

    from mcp_rag.answer.extractive import _read_with, score_sentences, sentences_of, with_dense
    from research.dense_pick import _blend

    s = indexed.model_copy(update={"rerank": True})
    pipe = Pipeline(s, embedder=KeywordEmbedder(), reranker=KeywordReranker())
    q = "How do I get a refund on my annual plan?"
    hits = pipe.search(q.casefold().rstrip("?"), k=s.answer_passages, rerank=True,
                       question=q, copies=False).hits
    cands, by_chunk = sentences_of(hits)
    logits = score_sentences(q, cands, pipe.reranker, by_chunk)
    emb = pipe.embedder
    cos = emb.embed_documents([_read_with(c, by_chunk) for c in cands]) @ emb.embed_query(q)
    served = with_dense(q, cands, logits, emb, 0.6, by_chunk)
    assert len(cands) > 2 and served.tolist() != logits.tolist()
    assert _blend(logits, cos, 0.6).tolist() == pytest.approx(served.tolist())


def test_identifier_parts_splits_at_underscores_and_keeps_the_whole():
    """The identifier study's tokenizer: an identifier's parts as well as itself, as
    BM25 already reads ``KB-ERR-2847``; a leading or doubled underscore makes no part."""
    from research.identifier_parts import compounds

    assert list(compounds("target_include_directories __init__ _private KB-ERR-2847 x")) == [
        ("target_include_directories", ["target", "include", "directories"]),
        ("__init__", ["__init__"]), ("_private", ["_private"]),
        ("KB-ERR-2847", ["KB", "ERR", "2847"]), ("x", ["x"])]


def test_the_cross_manual_study_counts_the_answers_read_as_right_apart(tmp_path, capsys):
    import argparse
    import json

    from research import cross_manuals

    sig = {"ce": 1.0, "dense_pos": 0.5, "cover": 0.5}
    rows = [
        {"manual": "m", "side": "own", "id": "m-1", "state": "answered", "signals": sig},
        {"manual": "m", "side": "own", "id": "m-2", "state": "refused", "signals": sig},
        {"manual": "m", "side": "other", "id": "o-1", "state": "answered", "signals": sig,
         "best_sentence": -3.0},
        {"manual": "m", "side": "other", "id": "o-2", "state": "partial", "signals": sig},
        {"manual": "m", "side": "other", "id": "o-3", "state": "refused", "signals": sig},
    ]
    f = tmp_path / "m.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"m": ["o-2"]}))
    cross_manuals.study(argparse.Namespace(files=[f], labels=labels))
    lines = capsys.readouterr().out.splitlines()
    # own 1 of 2 answered; 3 asked, 1 answered, 1 partial, 1 of the 2 given read as right
    assert any(x.startswith("| m | 1/2 | 3 | 1 | 1 | 1 |") for x in lines)
    # the rules, over the wrong (o-1), the right (o-2) and the own answered (m-1):
    # confidence 0.53 from the signals, score 0.93, o-1's best sentence under -2
    assert "| confidence < 0.5 | 0 | 0 | 0 |" in lines
    assert "| confidence < 0.8 | 1 | 1 | 1 |" in lines
    assert "| score < 0.88 | 0 | 0 | 0 |" in lines
    assert "| best sentence < -2 | 1 | 0 | 0 |" in lines
    assert "| ... and dense_pos < 0.9 | 1 | 0 | 0 |" in lines


def test_the_unit_vector_study_embeds_lines_and_sentences_not_code():
    from research.unit_vectors import units

    text = ("string_agg ( value text, delimiter text ) → text Concatenates the values.\n"
            "Too short here\n\n    SELECT string_agg(a, ',') FROM t;\n\n"
            + "A long line. " * 2 + "word " * 60 + "ends. And one more sentence follows it.")
    got = units(text)
    assert got[0].startswith("string_agg") and "Too short here" not in got
    assert not any("SELECT" in u for u in got)  # code is the passage's vector's
    assert "And one more sentence follows it." in got  # a long line cut into sentences

