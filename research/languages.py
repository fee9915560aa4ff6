"""Documents in other languages: is the right page found by BM25 with a question in its
language, analysed by language (this version) or as English (before)?

    apt-get install debian-reference-de debian-reference-fr debian-reference-es \
        debian-reference-zh-cn debian-reference-ja
    PYTHONPATH=. python research/languages.py --work /tmp/ml-study [--answer N]

The corpus: the Debian Reference's German, French, Spanish, Chinese and Japanese
translations as Debian ships them (every HTML page of each: 15 a language, 75 in one
folder, so a question must find its page among the same chapters in four other
languages); the questions (`research/data/multilingual_questions.jsonl`, written for this):
eight a language, each in the page's language, each with the chapter that answers it.
Reported per language: BM25 hit@1 and hit@3 by page, with passages analysed by their
language (Snowball stemmer, character bigrams for Chinese and Japanese) and, in the same
run, as before (everything as English: one giant token per run of Chinese characters).
``--answer N``: the first N in-scope questions of each language, and the other-field ones,
also asked of `answer` with the real pack over an index of the same folder, to count how
many are answered and how many refused (the pack's models are English-only). Questions
marked ``holdout`` were written after the rule for Chinese, Japanese and Korean questions
was fixed (``answerability.decide``'s ``models_read``; docs, Abstention) and are reported
apart: they are its check, not what it was chosen on.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from mcp_rag.evaluate.latency import cpu
from mcp_rag.index import lexical

SOURCE = Path("/usr/share/debian-reference")
LANGS = {"de": "de", "fr": "fr", "es": "es", "zh": "zh-cn", "ja": "ja"}
QUESTIONS = Path(__file__).parent / "data" / "multilingual_questions.jsonl"


class Blank:
    """An embedder whose vectors carry nothing: the study is BM25's."""

    name = "blank"
    dim = 8

    def embed_documents(self, texts, progress=None):
        if progress is not None:
            progress(len(texts))
        return np.tile(np.eye(1, self.dim, dtype=np.float32), (len(texts), 1))

    def embed_query(self, text):
        return np.eye(1, self.dim, dtype=np.float32)[0]

    def count_tokens(self, text):
        return len(text.split())


def corpus(work: Path) -> Path:
    folder = work / "debian-reference"
    if not folder.exists():
        folder.mkdir(parents=True)
        for suffix in LANGS.values():
            for f in SOURCE.glob(f"*.{suffix}.html"):
                shutil.copy2(f, folder / f.name)
    return folder


def bm25_hits(work: Path, folder: Path, questions: list[dict], by_language: bool) -> list[int]:
    """Each question's rank of its page among BM25's documents (0: not in the top 3)."""
    from mcp_rag.index.update import index_paths
    from mcp_rag.retrieve.pipeline import Pipeline
    from mcp_rag.settings import Settings
    from mcp_rag.types import Mode

    index = work / ("by-language" if by_language else "as-english")
    shutil.rmtree(index, ignore_errors=True)
    detect = lexical.detect
    if not by_language:  # everything analysed as English, as before this change
        lexical.detect = lambda text: "en"  # type: ignore[assignment]
    try:
        index_paths(index, [folder], Blank(), quiet=True)
        p = Pipeline(Settings.load(index=index, rerank=False), embedder=Blank())
        ranks = []
        for q in questions:
            docs: list[str] = []
            for h in p.search(q["q"], k=10, mode=Mode.BM25).hits:
                if h.chunk.doc_id not in docs:
                    docs.append(h.chunk.doc_id)
            ranks.append(docs.index(q["page"]) + 1 if q["page"] in docs[:3] else 0)
        p.handle.close()
        return ranks
    finally:
        lexical.detect = detect


def answered(work: Path, folder: Path, questions: list[dict]) -> dict[str, int]:
    """How many questions of each language ``answer`` answers, with the real pack (the
    index is built once, then reused)."""
    from mcp_rag.app.requests import AnswerRequest
    from mcp_rag.app.service import RagService
    from mcp_rag.index.indexer import Indexer
    from mcp_rag.retrieve.pipeline import Pipeline
    from mcp_rag.settings import Settings

    s = Settings.load(index=work / "real")
    p = Pipeline.from_settings(s, require_index=False)
    Indexer(s, p.embedder).index([folder], quiet=True)  # nothing to do when it exists
    p.refresh()
    svc = RagService(p)
    out: dict[str, int] = defaultdict(int)
    for q in questions:
        a = svc.run(AnswerRequest(q["q"]), no_cache=True)
        out[q["lang"]] += bool(a.answered)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/ml-study"))
    ap.add_argument("--answer", type=int, default=0,
                    help="also ask the first N questions of each language of `answer`")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    folder = corpus(a.work)
    every = [json.loads(line) for line in QUESTIONS.open()]
    questions = [q for q in every if q["page"] and not q.get("holdout")]
    other = [q for q in every if not q["page"] and not q.get("holdout")]
    held = [q for q in every if q.get("holdout")]
    now = bm25_hits(a.work, folder, questions, by_language=True)
    before = bm25_hits(a.work, folder, questions, by_language=False)
    print(f"CPU: {cpu()}; {len(list(folder.iterdir()))} pages, {len(questions)} questions")
    print("| language | questions | hit@1 before | hit@1 now | hit@3 before | hit@3 now |")
    print("|---|---|---|---|---|---|")
    for lang in [*LANGS, "all"]:
        idx = [i for i, q in enumerate(questions) if lang in ("all", q["lang"])]

        def rate(ranks: list[int], k: int, idx: list[int] = idx) -> str:
            return f"{sum(0 < ranks[i] <= k for i in idx) / len(idx):.2f}"

        print(f"| {lang} | {len(idx)} | {rate(before, 1)} | {rate(now, 1)} | "
              f"{rate(before, 3)} | {rate(now, 3)} |")
    if a.answer:
        asked = [q for lang in LANGS for q in [x for x in questions if x["lang"] == lang]
                 [:a.answer]]
        got = answered(a.work, folder, asked)
        print("\nin scope, answered by `answer` (default pack): " + ", ".join(
            f"{lang} {got.get(lang, 0)}/{a.answer}" for lang in LANGS))
        for name, qs in (("other fields", other), ("held out, other fields",
                                                   [q for q in held if not q["page"]])):
            wrong = answered(a.work, folder, qs)
            print(f"{name}, refused: " + ", ".join(
                f"{lang} {sum(q['lang'] == lang for q in qs) - wrong.get(lang, 0)}/"
                f"{sum(q['lang'] == lang for q in qs)}" for lang in LANGS
                if any(q["lang"] == lang for q in qs)))
        ins = [q for q in held if q["page"]]
        got = answered(a.work, folder, ins)
        print("held out, in scope, answered: " + ", ".join(
            f"{lang} {got.get(lang, 0)}/{sum(q['lang'] == lang for q in ins)}"
            for lang in LANGS if any(q["lang"] == lang for q in ins)))


if __name__ == "__main__":
    main()
