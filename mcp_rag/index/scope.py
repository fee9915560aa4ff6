"""What this corpus is about: the cheap, per-index half of the answerability decision.

A question's terms are looked up in the corpus's own vocabulary (BM25 document
frequencies): terms the corpus never mentions are the plainest sign that the answer is
not in it. Its dense similarity to the nearest chunk is put on this corpus's own scale at
index time (``calibrate``): 0 where the out-of-scope questions shipped with the package
land, 1 where pseudo-questions made from the corpus's own sentences land.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from mcp_rag.index.dense import DenseIndex
from mcp_rag.index.generation import Frequencies
from mcp_rag.index.lexical import STOPWORDS, BM25Index, _stem, cjk_bigrams, compounds
from mcp_rag.types import Embedder

BANK_FILE = "out_of_scope.txt"
CALIBRATION_VERSION = 1


def bank() -> list[str]:
    """The out-of-scope questions shipped with the package (many fields and shapes)."""
    text = resources.files("mcp_rag.index").joinpath("data", BANK_FILE).read_text("utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@dataclass(frozen=True)
class Term:
    """A content word of a question: as written, as indexed, and how common in the corpus."""

    word: str
    stem: str
    df: int  # chunks containing it

    def idf(self, n: int) -> float:
        """Lucene's BM25 idf; a term the corpus never mentions weighs most."""
        return math.log(1.0 + (n - self.df + 0.5) / (self.df + 0.5))


def key_terms(question: str, bm25: Frequencies, bigrams: bool = True) -> list[Term]:
    """The question's distinct content words (codes whole) with their document frequency.

    Runs of Chinese, Japanese or Korean characters are looked up as BM25 indexes them in
    such passages, as overlapping bigrams (``bigrams``; whole, as one word, without it):
    "红烧肉需要炖多长时间" is 红烧, 烧肉, ..., not one word no corpus holds.
    A server backend looks all the words up in one call (``dfs``), not one call a word.
    """
    words: dict[str, str] = {}
    cjk: list[str] = []
    if bigrams:
        question, cjk = cjk_bigrams(question)
    for tok, parts in compounds(question):
        cands = [tok] if len(parts) > 1 else []
        cands += [p for p in parts if p.lower() not in STOPWORDS]
        for w in cands:
            stem = tok.lower() if len(parts) > 1 and w == tok else _stem([w.lower()])[0]
            if stem in words or (w.isdigit() and len(w) < 3):
                continue
            words[stem] = w
    for b in cjk:
        words.setdefault(b, b)
    df = bm25.dfs(list(words))
    return [Term(w, stem, df.get(stem, 0)) for stem, w in words.items()]


def unknown_share(terms: list[Term], n: int) -> float:
    """Share of the question's idf mass carried by words the corpus never mentions."""
    total = sum(t.idf(n) for t in terms)
    return sum(t.idf(n) for t in terms if t.df == 0) / total if total else 0.0


_SENT = re.compile(r"[^.!?\n]{30,}")


def pseudo_questions(texts: list[str], bm25: BM25Index, n: int = 64, seed: int = 0) -> list[str]:
    """Keyword queries made from the corpus's own sentences (deterministic for a seed).

    A random chunk, a random sentence of it, and its 4-8 rarest content words in their
    order: the shape of a search by someone who knows the subject, not a copy of the text.
    """
    rnd = random.Random(seed)
    out: list[str] = []
    order = list(range(len(texts)))
    rnd.shuffle(order)
    for i in order:
        sents = [s for s in _SENT.findall(texts[i]) if len(s.split()) >= 8]
        if not sents:
            continue
        terms = key_terms(rnd.choice(sents), bm25, bigrams=False)  # as calibrated
        if len(terms) < 4:
            continue
        k = rnd.randint(4, min(8, len(terms)))
        rare = sorted(sorted(terms, key=lambda t: t.df)[:k], key=terms.index)
        out.append(" ".join(t.word for t in rare))
        if len(out) == n:
            break
    return out


def calibrate(
    bm25: BM25Index,
    texts: list[str],
    embed: Callable[[list[str]], np.ndarray],
    nearest: Callable[[np.ndarray], np.ndarray],
    bank_vectors: np.ndarray,
    *,
    n_pseudo: int = 64,
) -> dict[str, Any]:
    """This corpus's scale for the dense signal, from probes alone (no labels, no CE).

    ``texts`` are the chunks' texts; ``embed(questions)`` gives their query vectors,
    ``bank_vectors`` are the shipped bank's, and ``nearest(vectors)`` each vector's cosine
    similarity to its nearest chunk. Deterministic: the pseudo-questions come from a fixed
    seed, the bank is fixed.
    """
    pseudo = pseudo_questions(texts, bm25, n_pseudo)
    top_in = nearest(embed(pseudo)) if pseudo else np.zeros(0, np.float32)
    top_out = nearest(bank_vectors)
    low = float(np.median(top_out))
    high = float(np.median(top_in)) if len(top_in) else low + 0.1
    return {
        "version": CALIBRATION_VERSION,
        "dense_low": round(low, 5),
        "dense_high": round(max(high, low + 0.02), 5),
        "pseudo_questions": len(pseudo),
        "bank_questions": len(bank_vectors),
    }


def _embed(embedder: Embedder, questions: list[str]) -> np.ndarray:
    many = getattr(embedder, "embed_queries", None)  # parallel where the model has it
    return np.asarray(many(questions) if many else [embedder.embed_query(q) for q in questions])


# The bank's query vectors per loaded embedder: the same for every generation it
# calibrates (one question per call, so a vector never depends on its batch), so a
# long-lived process (watch, serve --watch) embeds the 137 questions once, not per update.
_BANK: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()
_BANK_LOCK = threading.Lock()


def _bank_vectors(embedder: Embedder) -> np.ndarray:
    with _BANK_LOCK:
        try:
            cached = _BANK.get(embedder)
        except TypeError:  # an embedder that cannot be weakly referenced: no cache
            return _embed(embedder, bank())
        if cached is None:
            cached = _BANK[embedder] = _embed(embedder, bank())
        return cached


def scope_calibrator(
    texts: list[str], embedder: Embedder
) -> Callable[[BM25Index, DenseIndex], dict[str, Any]]:
    """What ``write_generation`` calls to calibrate a new generation of these chunks."""

    def run(bm25: BM25Index, dense: DenseIndex) -> dict[str, Any]:
        def nearest(vectors: np.ndarray) -> np.ndarray:
            return np.array(
                [(dense.search(v, 1)[1][:1].tolist() or [0.0])[0] for v in vectors],
                dtype=np.float32,
            )

        t = time.perf_counter()
        out = calibrate(bm25, texts, lambda qs: _embed(embedder, qs), nearest,
                        _bank_vectors(embedder))
        out["seconds"] = round(time.perf_counter() - t, 2)
        return out

    return run
