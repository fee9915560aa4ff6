"""BM25 (Okapi, as in rank-bm25) with an inverted index for query time.

The index is built with ``rank_bm25.BM25Okapi`` (its idf with the epsilon floor, its
length normalisation), then stored as postings: for each term, the rows that contain
it and their precomputed term weight

    w(t, d) = idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl))

so a query touches only the postings of its own terms instead of scoring every row
(rank-bm25's ``get_scores`` loops over all documents for each query term). Scores are
identical to ``BM25Okapi.get_scores`` (Robertson & Zaragoza 2009; rank-bm25's variant).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import Stemmer

# English stop words (NLTK's list) minus the negations, which change what a passage means.
STOPWORDS = frozenset(
    """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what which
    who whom this that these those am is are was were be been being have has had having do
    does did doing a an the and but if or because as until while of at by for with about
    against between into through during before after above below to from up down in out on
    off over under again further then once here there when where why how all any both each
    few more most other some such only own same so than too very s t can will just should
    now d ll m o re ve y
    """.split()
)
_COMPOUND = re.compile(r"\w+(?:[-_./:]\w+)*")
_WORD = re.compile(r"\w+")
# Recorded in the manifest: an index is only queried with the tokenizer that built it.
TOKENIZER_ID = "unicode-words+compounds+stopwords+snowball-english/1"
_local = threading.local()  # PyStemmer objects must not be shared between threads


def _stem(words: list[str], algorithm: str = "english") -> list[str]:
    stemmers = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = _local.stemmers = {}
    stemmer = stemmers.get(algorithm)
    if stemmer is None:
        stemmer = stemmers[algorithm] = Stemmer.Stemmer(algorithm)
    return stemmer.stemWords(words)


def compounds(text: str) -> Iterator[tuple[str, list[str]]]:
    """Each compound token (``KB-ERR-2847``, ``java.lang.Error``, a plain word) with its
    word parts; a compound of several parts is also a term of its own, whole."""
    for m in _COMPOUND.finditer(text):
        tok = m.group()
        yield tok, [tok] if tok.isalnum() else _WORD.findall(tok)


# The languages BM25 analyses by their own rules: each Snowball stemmer PyStemmer has, by
# ISO 639-1 code, and Chinese, Japanese and Korean, whose runs of characters (no spaces
# between words) become overlapping character bigrams. Any other language is English's.
SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech",
    "da": "danish", "nl": "dutch", "en": "english", "eo": "esperanto", "et": "estonian",
    "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian", "lt": "lithuanian",
    "ne": "nepali", "no": "norwegian", "nb": "norwegian", "fa": "persian", "pl": "polish",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian", "es": "spanish",
    "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}
CJK = frozenset({"zh", "ja", "ko"})
LANGUAGES = frozenset(SNOWBALL) | CJK
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_identifier = None
_id_lock = threading.Lock()


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HIRAGANA = re.compile(r"[\u3040-\u309f]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")


def detect(text: str) -> str:
    """The language of ``text`` as BM25 analyses it: an ISO 639-1 code of ``LANGUAGES``.

    Text that is nearly all ASCII, a quarter or more of its words English stop words, is English
    (most passages of an English corpus: they cost no model call). Text that is mostly
    Chinese, Japanese or Korean characters is told by its script (kana:
    Japanese, hangul: Korean, else Chinese; py3langid is unsure between the first two on a
    sentence). Other text goes to py3langid (a naive Bayes model over byte n-grams, 97
    languages, ~0.1 ms a passage); a language it is less than 90 % sure of, or that BM25
    has no rules for, is English (today's analysis, so a wrong guess costs no more than
    before).
    """
    sample = text[:3000]
    head = sample[:1000]
    if len(_NON_ASCII.findall(head)) <= 0.05 * len(head):  # English prose is a quarter or
        words = _WORD.findall(head.lower())  # more stop words: no model needed
        if len(words) >= 8 and sum(w in STOPWORDS for w in words) >= 0.25 * len(words):
            return "en"
    if written_in_cjk(sample):
        return "ja" if _KANA.search(sample) else "ko" if _HANGUL.search(sample) else "zh"
    global _identifier
    with _id_lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        lang, p = _identifier.classify(sample)
    return lang if p >= 0.9 and lang in LANGUAGES else "en"


def _bigrams(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]


def written_in_cjk(text: str) -> bool:
    """Mostly Chinese, Japanese or Korean characters (told by script: no model call)."""
    cjk = sum(len(r) for r in _CJK_RUN.findall(text))
    return bool(cjk) and cjk >= 0.3 * sum(c.isalpha() for c in text)


def cjk_bigrams(text: str) -> tuple[str, list[str]]:
    """``text`` with its runs of Chinese, Japanese or Korean characters blanked, and those
    runs as BM25 indexes them in such a passage: overlapping bigrams, lowercased."""
    return (_CJK_RUN.sub(" ", text),
            [b for run in _CJK_RUN.findall(text.lower()) for b in _bigrams(run)
             if not _HIRAGANA.search(b)])


def tokenize(text: str, language: str = "en") -> list[str]:
    """BM25's tokens of ``text`` written in ``language`` (``tokenize_en`` for English).

    Another Snowball language: the same word and compound tokens, stemmed by its stemmer,
    no stop words (its idf weighs them down). Chinese, Japanese, Korean: each run of their
    characters as overlapping bigrams (``火车站`` -> ``火车``, ``车站``), the rest as words.
    """
    if language not in LANGUAGES or language == "en":
        return tokenize_en(text)
    text = text.lower()
    if language in CJK:
        out: list[str] = []
        for part in _CJK_RUN.split(text):
            out.extend(w for tok, parts in compounds(part) for w in
                       ([tok] if len(parts) > 1 else []) + parts)
        out.extend(b for run in _CJK_RUN.findall(text) for b in _bigrams(run))
        return out
    toks = list(compounds(text))
    stems = iter(_stem([p for _, parts in toks for p in parts], SNOWBALL[language]))
    words: list[str] = []
    for tok, parts in toks:
        if len(parts) > 1:
            words.append(tok)
        words.extend(next(stems) for _ in parts)
    return words


def analyse(text: str) -> tuple[str, list[str]]:
    """(language, BM25 tokens) of a passage."""
    lang = detect(text)
    return lang, tokenize(text, lang)


def query_languages(passages_by_language: dict[str, int] | None) -> tuple[str, ...]:
    """The analysers a query goes through on an index whose passages are in these
    languages: each holding at least 2 % of them (at most four, the largest first)."""
    if not passages_by_language:
        return ("en",)
    total = sum(passages_by_language.values())
    big = sorted((n, lang) for lang, n in passages_by_language.items() if n >= 0.02 * total)
    return tuple(lang for _, lang in reversed(big[-4:])) or ("en",)


def tokenize_query(query: str, languages: Sequence[str] = ("en",)) -> list[str]:
    """A query's tokens for an index whose passages are in ``languages``: the union of
    each one's analysis, first seen first (a German question finds German passages
    stemmed the German way, an English one English passages); English alone: ``tokenize``."""
    if tuple(languages) in ((), ("en",)):
        return tokenize_en(query)
    seen: dict[str, None] = {}
    for lang in languages:
        for t in tokenize(query, lang):
            seen.setdefault(t, None)
    return list(seen)


def tokenize_en(text: str) -> list[str]:
    """Lowercased unicode word tokens, stop words dropped, Snowball-stemmed (English).

    A compound such as an error code also stays whole and unstemmed, so that exact codes
    match exactly: ``KB-ERR-2847`` gives ``kb-err-2847``, ``kb``, ``err``, ``2847``.
    Stemming lifts BM25 nDCG@10 on SciFact from 0.660 to 0.687 (both splits alike).
    """
    toks = list(compounds(text.lower()))
    stems = iter(_stem([p for _, parts in toks for p in parts if p not in STOPWORDS]))
    out: list[str] = []
    for tok, parts in toks:  # one stemmer call for the text: per-word calls cost 2x
        if len(parts) > 1:
            out.append(tok)
        out.extend(next(stems) for p in parts if p not in STOPWORDS)
    return out


class BM25Index:
    """Postings for BM25Okapi scoring. Rows are chunk positions 0..n_rows-1."""

    def __init__(
        self,
        vocab: dict[str, int],
        term_ptr: np.ndarray,
        rows: np.ndarray,
        weights: np.ndarray,
        n_rows: int,
        params: dict,
    ) -> None:
        self.vocab = vocab
        self.term_ptr = term_ptr
        self.rows = rows
        self.weights = weights
        self.n_rows = n_rows
        self.params = params
        self.languages: Sequence[str] = ("en",)  # the passages' languages: the query's analysers

    @classmethod
    def build(
        cls, corpus_tokens: list[list[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25
    ) -> BM25Index:
        """Build from tokenised rows with rank-bm25's BM25Okapi statistics."""
        params = {"k1": k1, "b": b, "epsilon": epsilon, "variant": "rank_bm25.BM25Okapi"}
        n = len(corpus_tokens)
        if n == 0 or not any(corpus_tokens):
            empty = np.zeros(0, dtype=np.int32)
            return cls({}, np.zeros(1, np.int64), empty, empty.astype(np.float32), n, params)
        from rank_bm25 import BM25Okapi

        bm = BM25Okapi(corpus_tokens, k1=k1, b=b, epsilon=epsilon)
        vocab = {t: i for i, t in enumerate(sorted(bm.idf))}
        idf = np.array([bm.idf[t] for t in sorted(bm.idf)], dtype=np.float64)
        term_ids: list[int] = []
        row_ids: list[int] = []
        tfs: list[int] = []
        for r, freqs in enumerate(bm.doc_freqs):
            for t, tf in freqs.items():
                term_ids.append(vocab[t])
                row_ids.append(r)
                tfs.append(tf)
        t_arr = np.asarray(term_ids, dtype=np.int64)
        r_arr = np.asarray(row_ids, dtype=np.int32)
        tf_arr = np.asarray(tfs, dtype=np.float64)
        dl = np.asarray(bm.doc_len, dtype=np.float64)[r_arr]
        w = idf[t_arr] * tf_arr * (k1 + 1) / (tf_arr + k1 * (1 - b + b * dl / bm.avgdl))
        order = np.lexsort((r_arr, t_arr))
        counts = np.bincount(t_arr, minlength=len(vocab))
        term_ptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(counts, out=term_ptr[1:])
        return cls(vocab, term_ptr, r_arr[order], w[order].astype(np.float32), n, params)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every row for the query (0 where no query term occurs)."""
        out = np.zeros(self.n_rows, dtype=np.float32)
        for tok in query_tokens:  # repeated query terms count again, as in rank-bm25
            t = self.vocab.get(tok)
            if t is None:
                continue
            a, z = self.term_ptr[t], self.term_ptr[t + 1]
            out[self.rows[a:z]] += self.weights[a:z]
        return out

    def dfs(self, terms: Sequence[str]) -> dict[str, int]:
        return {t: self.df(t) for t in terms}

    def df(self, term: str) -> int:
        """Rows that contain ``term`` (a token as ``tokenize`` gives it)."""
        t = self.vocab.get(term)
        return 0 if t is None else int(self.term_ptr[t + 1] - self.term_ptr[t])

    def holding(self, terms: Sequence[str]) -> np.ndarray:
        """The rows that contain every one of ``terms`` (tokens as ``tokenize`` gives them),
        ascending; none when ``terms`` is empty."""
        rows: np.ndarray | None = None
        for term in dict.fromkeys(terms):
            t = self.vocab.get(term)
            if t is None:
                return np.zeros(0, dtype=np.int32)
            got = self.rows[self.term_ptr[t]:self.term_ptr[t + 1]]
            rows = got if rows is None else np.intersect1d(rows, got, assume_unique=True)
        return np.zeros(0, dtype=np.int32) if rows is None else rows

    def search(
        self, query: str, n: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` rows with a positive score, best first: (rows, scores)."""
        s = self.scores(tokenize_query(query, self.languages))
        if allowed is not None:
            s = np.where(allowed, s, 0.0)
        hits = np.flatnonzero(s > 0)
        if len(hits) > n:
            # argpartition is faster than a full sort but leaves the top n unordered
            hits = hits[np.argpartition(-s[hits], n - 1)[:n]]
        order = np.lexsort((hits, -s[hits]))  # score desc, then row asc for ties
        return hits[order], s[hits][order]

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        with open(directory / "bm25.npz", "wb") as f:
            np.savez(f, term_ptr=self.term_ptr, rows=self.rows, weights=self.weights)
        meta = {"n_rows": self.n_rows, "params": self.params, "terms": terms}
        (directory / "bm25.json").write_text(json.dumps(meta, ensure_ascii=False))

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        directory = Path(directory)
        meta = json.loads((directory / "bm25.json").read_text())
        # Our own file handle: np.load leaks its own when a damaged archive fails to open.
        with open(directory / "bm25.npz", "rb") as fh, np.load(fh, allow_pickle=False) as z:
            term_ptr, rows, weights = z["term_ptr"], z["rows"], z["weights"]
        vocab = {t: i for i, t in enumerate(meta["terms"])}
        if len(term_ptr) != len(vocab) + 1 or len(rows) != len(weights):
            raise ValueError("bm25 postings do not match the vocabulary")
        return cls(vocab, term_ptr, rows, weights, int(meta["n_rows"]), meta["params"])
