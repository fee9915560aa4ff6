"""What of a passage the cross-encoder reads: the window of it that the question is about.

The cross-encoder's cost grows with the tokens of each (question, passage) pair (about
0.1 ms a token on a 2-core CPU), and a 200-token chunk mostly holds sentences the question
is not about. A passage longer than the window is cut to its heading (title, section) and
the run of whole sentences, within the window, that holds the most of the question's
rare words (idf-weighted, each word counted once); with none of them anywhere, its start.
Measured (``research/rerank_depth.py``): reading 160-token windows instead of whole
chunks costs no nDCG@10 on SciFact train or NFCorpus dev, where cutting the same chunks to
their first 160 tokens loses 0.006 on SciFact (docs: Evaluation, Speed).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence

from mcp_rag.index.lexical import tokenize
from mcp_rag.ingest.chunking import index_text, split_units
from mcp_rag.types import Chunk

PAIR_SPECIALS = 3  # [CLS] question [SEP] passage [SEP]


def heading(chunk: Chunk, text: str | None = None) -> str:
    """The part of ``index_text(chunk)`` (or of ``text``, that string computed already)
    before the chunk's text: title and section, one a line."""
    text = index_text(chunk) if text is None else text
    return text[: len(text) - len(chunk.text)]


def windows(
    chunks: Sequence[Chunk],
    weights: Mapping[str, float],
    budget: int,
    starts: Callable[[Sequence[str]], list[list[int]]],
) -> list[str]:
    """The text the cross-encoder reads for each chunk: all of ``index_text`` when it fits
    ``budget`` tokens, else its best window.

    Args:
        chunks: the candidates.
        weights: the question's term stems (as ``tokenize`` gives them) and their idf.
        budget: tokens for the passage (the pair's window less the question and specials).
        starts: where each token of each text starts, under the cross-encoder's tokenizer.
    """
    texts = [index_text(c) for c in chunks]
    if budget <= 0:
        return texts
    return [
        text if len(tok) <= budget else _best_window(c, text, tok, weights, budget)
        for c, text, tok in zip(chunks, texts, starts(texts), strict=True)
    ]


def _best_window(
    chunk: Chunk, text: str, tokens: list[int], weights: Mapping[str, float], budget: int
) -> str:
    """``text`` (= index_text(chunk), whose tokens start at ``tokens``) cut to its heading
    and the run of whole sentences within ``budget`` tokens holding most question weight."""
    head = heading(chunk, text)
    spans = split_units(chunk.text)
    if len(spans) < 2:
        return text  # nothing to choose between: the reranker cuts its end
    off = len(head)
    cuts = [bisect_left(tokens, off + s.start) for s in spans] + [len(tokens)]
    sizes = [b - a for a, b in zip(cuts, cuts[1:], strict=False)]
    room = budget - cuts[0]  # the heading's tokens come first
    terms = [set(tokenize(chunk.text[s.start : s.end])).intersection(weights) for s in spans]
    best = (-1.0, 0, 1)
    for i in range(len(spans)):
        used, seen, j = 0, set(), i
        while j < len(spans) and used + sizes[j] <= room:
            used += sizes[j]
            seen |= terms[j]
            j += 1
        if j == i:  # one sentence over the room: read its start
            seen, j = terms[i], i + 1
        score = sum(weights[t] for t in seen)
        if score > best[0] + 1e-9:
            best = (score, i, j)
    _, i, j = best
    return head + chunk.text[spans[i].start : spans[j - 1].end]
