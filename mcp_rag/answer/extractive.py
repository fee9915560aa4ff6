"""Extractive answers (offline, no LLM): quoted sentences of the retrieved passages.

Every sentence of the top passages is scored against the
question by the cross-encoder twice, bare and under its document title and section, and
the higher score counts (a sentence such as "open a P2 ticket" relates to the question
only through its heading; a heading can also drown a sentence that states the answer).
Only whole sentences are quoted, with what they need: a term (an option, a signature)
with its description, a sentence with the code block or list it introduces
(``split_units``; code is cut only between lines), a sentence that leans on a neighbour
("However, ...", "This applies only ...") with it, a sentence under a heading that
names a term ("Set build-time variables (--build-arg)"), quotes a name ("The “Find
Packet” Toolbar") or is the page's name in capitals ("ENVIRONMENT") with that heading, as
a run of its own, unless the answer quotes the term from that page already. A sentence over
``MAX_QUOTE_CHARS`` is cut into clauses, keeping each condition, exception and negation
with the clause it qualifies. The answer is the best
sentence plus those within ``margin`` of it and over ``min_score`` (within twice the margin
in the first sentence's document: a page goes on from what a thing is to how it is done),
at most ``budget`` sentences, in reading order, each run of adjacent sentences followed
by [n]. The answer starts from the passage ``search`` ranks first: its best sentence, when
that is within ``margin`` of the best of all, is picked first (``leading``).

With ``answer_dense_share`` set, the sentences are chosen in the order of their logits
blended with a second judge's, the embedder's (``with_dense``); each citation still
reports its cross-encoder logit. Off by default, for its cost: it quotes the command
more often on five manuals of eight and less often on none of them, but less often on a
tenth asked after (Node.js's reference: 31 -> 29 of 42).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from mcp_rag.index.lexical import tokenize, written_in_cjk
from mcp_rag.ingest.chunking import Span, index_text, split_units
from mcp_rag.retrieve.evidence import how_to_form
from mcp_rag.retrieve.result import Corpus
from mcp_rag.types import Chunk, Embedder, Hit, Reranker

log = logging.getLogger(__name__)

# A sentence that starts like this leans on the one before it.
_LEANS_BACK = re.compile(
    r"^(?:however|but|this|these|that|those|it|they|such|otherwise|in that case|then)\b", re.I
)
# A sentence that starts like this qualifies the one before it.
_QUALIFIES = re.compile(
    r"^(?:however|but|unless|except|only|otherwise|provided|note\b|this (?:does not|doesn't|"
    r"only|applies|is not|excludes)|these (?:do not|don't|only|apply))", re.I
)
# A line broken between two Chinese or Japanese characters joins without a space.
_CJK_GAP = re.compile(r"(?<=[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]) "
                      r"(?=[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef])")
_MIN_WORDS = 3  # shorter "sentences" are table cells, labels and headings, not statements
# What a heading names as a term: an option (--rollback, -a), an identifier (cache_size),
# a function (redirect(), as redirect(to, ...) names it too), a dot command (.recover), a
# settings file (daemon.json), code in backticks. A section headed so ("Set build-time
# variables (--build-arg)", "STATIC_ROOT") describes that term, as a definition list's
# description does its term.
_TERM = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*|\w*[A-Za-z]\w*_\w+|\w+(?=\()"
                   r"|(?<![\w.])\.[a-z]\w+|\b\w+\.(?:json|ya?ml|toml|conf|cfg|ini|py)\b|`[^`]+`")
# A heading that is one word in lower case after its number, or several such words a
# comma apart ("8.92 loudnorm", "39.210 scale_npp", "3.22 video4linux2, v4l2", "F.16.
# hstore"): the name of what the section describes, as written (a filter, a device, a
# module), as a manual of such names heads each of them; a heading in prose is
# capitalised ("3.1 Filtering", "Examples").
_NAME = r"[a-z][a-z0-9_]*[a-z0-9]"
_NAME_HEADING = re.compile(rf"(?:(?:[A-Z]\.)?\d+(?:\.\d+)*\.?\s+)?({_NAME}(?:,\s*{_NAME})*)")
_WORD = re.compile(r"[\w-]+")
# A name a heading quotes: a dialog, a pane, a method ("6.8.1. The “Find Packet” Toolbar",
# 'The "backup" method'), as a manual of a program's windows heads the section on each.
_QUOTED_NAME = re.compile(r"[\u201c\"]([^\u201d\"\n]{1,40})[\u201d\"]")
# A page's own heading that is one name in capitals, the name its title opens with: the
# property, command or setting the page is ("ENVIRONMENT" over CMake's prop_test/
# ENVIRONMENT.html, "Specify environment variables that should be defined for running a
# test."). Only the page's top heading: a man page's "DESCRIPTION" is not its title.
_CAPS_NAME = re.compile(r"[A-Z][A-Z0-9_]{2,}")
MAX_QUOTE_CHARS = 300  # a longer sentence is cut into clauses, each quoted on its own merit
TERM_LOOKBACK = 3  # passages read back for the term over a long description's later sentence
_CLAUSE_END = re.compile(r"[;:,]\s+|\s+[-–—]\s+")
# A clause that starts like this is a condition, an exception or a negation of its
# neighbour: it is never quoted without it.
_BOUND = re.compile(
    r"^(?:if|unless|except|excluding|only|provided|when|whenever|where|while|although|though|"
    r"but|not|nor|without|as long as|so long as|in case|otherwise|subject to)\b",
    re.I,
)


def clauses(
    text: str, start: int, end: int, limit: int = MAX_QUOTE_CHARS
) -> list[tuple[int, int]]:
    """``text[start:end]`` cut into clauses of about ``limit`` characters at most.

    Cuts fall after ``;``, ``:``, ``,`` or a dash; pieces are packed back together up to
    ``limit``; a condition, exception or negation ("unless ...", "if ...", "but not ...")
    stays with the clause it qualifies (the one before it, or after it at the start).
    A sentence within ``limit``, or with nowhere to cut, is one piece.
    """
    if end - start <= limit:
        return [(start, end)]
    cuts = [m.end() for m in _CLAUSE_END.finditer(text, start, end)]
    bounds = [start, *[c for c in cuts if start < c < end], end]
    pieces = [[a, b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    # Keep qualifiers with what they qualify.
    merged: list[list[int]] = []
    for a, b in pieces:
        head = text[a:b].lstrip()
        if merged and (_BOUND.match(head) or len(text[a:b].strip()) < 25):
            merged[-1][1] = b
        else:
            merged.append([a, b])
    if len(merged) > 1 and _BOUND.match(text[merged[0][0] : merged[0][1]].lstrip()):
        merged[1][0] = merged[0][0]
        merged.pop(0)
    # Pack adjacent clauses up to the limit.
    packed: list[list[int]] = []
    for a, b in merged:
        if packed and b - packed[-1][0] <= limit:
            packed[-1][1] = b
        else:
            packed.append([a, b])
    out = []
    for a, b in packed:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


@dataclass(frozen=True)
class Sentence:
    """A sentence of a retrieved passage; ``start``/``end`` are offsets in the document text."""

    rank: int  # position of its passage among the hits (0 = best)
    chunk: Chunk
    index: int  # position among the sentences of its chunk
    paragraph: int
    start: int
    end: int
    term_end: int = 0  # where the term line(s) it opens with end (0: none; an option's)

    @property
    def text(self) -> str:
        return self.chunk.text[self.start - self.chunk.start : self.end - self.chunk.start]

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.chunk.doc_id, self.start, self.end)


@dataclass(frozen=True)
class Run:
    """Adjacent picked sentences of one passage: quoted together under one citation."""

    sentences: tuple[Sentence, ...]
    score: float | None  # best cross-encoder logit of the run's sentences (None: not scored)

    @property
    def chunk(self) -> Chunk:
        return self.sentences[0].chunk

    @property
    def start(self) -> int:
        return self.sentences[0].start

    @property
    def end(self) -> int:
        return self.sentences[-1].end

    @property
    def quote(self) -> str:
        """The document's text over the run: ``document.text[start:end]``."""
        c = self.chunk
        return c.text[self.start - c.start : self.end - c.start]


def _is_label(text: str, chunk: Chunk) -> bool:
    """Headings, titles and fragments too short to state anything."""
    norm = " ".join(text.split()).casefold()
    labels = {chunk.title.casefold(), *(p.strip().casefold() for p in chunk.section.split(">"))}
    # Chinese and Japanese write no spaces: a character is about half a word
    words = len(norm) // 2 if written_in_cjk(norm) else len(norm.split())
    return norm in labels or words < _MIN_WORDS


def sentences_of(hits: Sequence[Hit]) -> tuple[list[Sentence], dict[str, list[Sentence]]]:
    """Candidate sentences of ``hits`` (deduplicated across overlapping chunks), and every
    sentence of each chunk by chunk id (labels included) for finding neighbours."""
    cands: list[Sentence] = []
    by_chunk: dict[str, list[Sentence]] = {}
    seen: set = set()
    for rank, h in enumerate(hits):
        c = h.chunk
        pieces = [
            (sp.paragraph, a, b, sp.term_end)
            for sp in split_units(c.text)
            for a, b in ([(sp.start, sp.end)] if sp.joined else clauses(c.text, sp.start, sp.end))
        ]
        all_ = [
            Sentence(rank, c, i, para, c.start + a, c.start + b, c.start + t if t else 0)
            for i, (para, a, b, t) in enumerate(pieces)
        ]
        by_chunk[c.chunk_id] = all_
        for s in all_:
            norm = " ".join(s.text.split()).casefold()
            if s.key in seen or norm in seen or _is_label(s.text, c):
                continue
            seen.update((s.key, norm))
            cands.append(s)
    return cands, by_chunk


def _read_with(s: Sentence, by_chunk: dict[str, list[Sentence]] | None) -> str:
    """What the cross-encoder reads of ``s``: with the sentence it leans on ("This method
    is invoked by specifying the CONCURRENTLY option" says which method only with the
    sentence before), as it would be quoted."""
    if by_chunk is None or s.index == 0 or not _LEANS_BACK.match(s.text):
        return s.text
    prev = by_chunk[s.chunk.chunk_id][s.index - 1]
    return f"{prev.text} {s.text}" if prev.paragraph == s.paragraph else s.text


def score_sentences(
    question: str, sentences: Sequence[Sentence], reranker: Reranker | None,
    by_chunk: dict[str, list[Sentence]] | None = None,
) -> np.ndarray:
    """Cross-encoder logits (the better of bare and in-context; a sentence that leans on
    the one before is read with it; "how do I ..." asked as "how to ...", for which the
    sentence that tells how scores with the one that tells what: ``how_to_form``),
    or, without a reranker, the share of the question's terms a sentence contains."""
    if not sentences:
        return np.zeros(0, dtype=np.float32)
    if reranker is None:
        q = set(tokenize(question))
        return np.array(
            [len(q & set(tokenize(s.text))) / max(1, len(q)) for s in sentences], dtype=np.float32
        )
    question = how_to_form(question)
    bare = [(question, _read_with(s, by_chunk)) for s in sentences]
    framed = [(question, index_text(replace(s.chunk, text=s.text))) for s in sentences]
    scores = reranker.predict(bare + framed)
    return np.maximum(scores[: len(sentences)], scores[len(sentences) :])


def _neighbours(s: Sentence, by_chunk: dict[str, list[Sentence]]) -> list[Sentence]:
    """``s`` with the sentence it leans on, the one that qualifies it, and the code
    example that closes its paragraph ("... admin site. Run the following command:" and
    the command), all in its paragraph."""
    row = by_chunk[s.chunk.chunk_id]
    unit = [s]
    if s.index > 0 and _LEANS_BACK.match(s.text) and row[s.index - 1].paragraph == s.paragraph:
        unit.insert(0, row[s.index - 1])
    nxt = row[s.index + 1] if s.index + 1 < len(row) else None
    if nxt is not None and nxt.paragraph == s.paragraph and _QUALIFIES.match(nxt.text):
        unit.append(nxt)
        nxt = row[nxt.index + 1] if nxt.index + 1 < len(row) else None
    if nxt is not None and nxt.paragraph == s.paragraph and has_code(nxt.text) \
            and not has_code(s.text):
        unit.append(nxt)
    return unit


def heading_names(heading: str) -> set[str]:
    """The names a heading is, when it is one word in lower case after its number, or a
    few a comma apart (``_NAME_HEADING``: "8.92 loudnorm" is ``loudnorm``); none
    otherwise."""
    m = _NAME_HEADING.fullmatch(" ".join(heading.split()))
    return set(re.split(r",\s*", m.group(1))) if m else set()


def quoted_names(heading: str) -> set[str]:
    """The names a heading quotes (``_QUOTED_NAME``), casefolded: "6.8.1. The “Find Packet”
    Toolbar" names ``find packet``."""
    return {" ".join(m.group(1).split()).casefold() for m in _QUOTED_NAME.finditer(heading)}


def page_name(chunk: Chunk) -> str | None:
    """The name in capitals that ``chunk``'s section heading is, when that heading is its
    page's top one and its title opens with it (``_CAPS_NAME``: "ENVIRONMENT" of the page
    "ENVIRONMENT — CMake 3.25.1 Documentation"); None otherwise."""
    written = chunk.section.strip()
    if ">" in written or not _CAPS_NAME.fullmatch(written):
        return None
    return written if re.match(rf"{written}\b", chunk.title) else None


def terms_in(text: str) -> set[str]:
    """The terms ``text`` names (``_TERM``), casefolded: ``{"--rollback"}``."""
    return {m.group().strip("`").casefold() for m in _TERM.finditer(text)}


def _heading(s: Sentence, by_chunk: dict[str, list[Sentence]],
             corpus: Corpus | None = None) -> Sentence | None:
    """The heading of ``s``'s section, when it names a term (``_TERM``), is a name
    (``heading_names``), quotes one (``quoted_names``) or is the page's (``page_name``):
    "Roll back to the previous version of a service (--rollback)" over "This will revert
    the service ...", "8.92 loudnorm" over "EBU R128 loudness normalization.", "6.8.1. The
    “Find Packet” Toolbar" over "Enter a display filter string ...", "ENVIRONMENT" over
    "Specify environment variables ..."; as written where ``s``'s passage opens with it, or, for a
    passage that continues the section, where the passage that opens it
    (``corpus.opening``) does; None otherwise. A heading read as several units ("2." and
    "Recovery Using The ".recover" Command") is one, from the first's start."""
    written = " ".join(s.chunk.section.rsplit(">", 1)[-1].split())
    own = written.casefold()
    if not own or not (terms_in(own) or heading_names(written) or quoted_names(written)
                       or page_name(s.chunk)):
        return None
    row = by_chunk[s.chunk.chunk_id]
    if not own.startswith(" ".join(row[0].text.split()).casefold()) and corpus is not None:
        first = corpus.opening(s.chunk)
        if first is None:
            return None
        row = [Sentence(s.rank, first, i, sp.paragraph, first.start + sp.start,
                        first.start + sp.end) for i, sp in enumerate(split_units(first.text))]
    said = ""
    for u in row:  # a numbered heading may be read as two units: "2." "Recovery"
        said = f"{said} {' '.join(u.text.split())}".strip().casefold()
        if said == own:
            return replace(u, start=row[0].start)
        if not own.startswith(said):
            return None
    return None


def _term_over(s: Sentence, by_chunk: dict[str, list[Sentence]],
               corpus: Corpus | None = None) -> Sentence | None:
    """The term line(s) over the description ``s`` goes on ("--leak-check=<no|summary|yes|
    full>" over "If set to full or yes, each individual leak will be shown in detail"): the
    term of the nearest unit before ``s`` in its paragraph that opens with one (a list's
    terms and descriptions share a paragraph, and so do a description's paragraphs as the
    HTML reader leaves them), looked for in the passages before ``s``'s (``corpus.
    preceding``, at most ``TERM_LOOKBACK``) when its paragraph began in one; when that term
    names one (``_TERM``: an option, an identifier, a signature; an admonition's "Note"
    names none). None when ``s`` opens with its own term or no term is above it."""
    row = by_chunk.get(s.chunk.chunk_id, [])
    if s.term_end or not row:
        return None
    k = _term_above(row, s.index)
    if k is not None and k >= 0:
        term: Sentence | None = replace(row[k], end=row[k].term_end, term_end=0)
    elif k is not None and corpus is not None:
        term = _term_before(s, corpus)
    else:
        return None
    return term if term is not None and terms_in(term.text) else None


def _term_above(units: Sequence[Span | Sentence], i: int) -> int | None:
    """The index of the nearest unit before ``units[i]`` in its paragraph that opens with
    a term; -1 when the paragraph goes on before ``units[0]``, None when it has no term."""
    k = i - 1
    while k >= 0 and units[k].paragraph == units[i].paragraph and not units[k].term_end:
        k -= 1
    if k < 0:
        return -1
    return k if units[k].paragraph == units[i].paragraph else None


def _term_before(s: Sentence, corpus: Corpus) -> Sentence | None:
    """The term over ``s`` in a passage before its own, whose paragraph ``s`` continues:
    passages are read back (each overlaps the next, so their text joins exactly) while
    the paragraph goes on, at most ``TERM_LOOKBACK`` of them."""
    chunk, text = s.chunk, s.chunk.text
    for _ in range(TERM_LOOKBACK):
        prev = corpus.preceding(chunk)
        if prev is None or not prev.start < chunk.start <= prev.end:
            return None  # no passage before, or none that joins this one
        text = prev.text[: chunk.start - prev.start] + text
        chunk = prev
        units = split_units(text)
        i = next((i for i, u in enumerate(units) if u.end > s.start - prev.start), -1)
        k = _term_above(units, i) if i >= 0 else None
        if k is None:
            return None
        if k >= 0:
            u = units[k]
            if prev.start + u.term_end > prev.end:
                return None
            # index and paragraph -1: a citation of its own, never run on with another
            return Sentence(s.rank, prev, -1, -1, prev.start + u.start, prev.start + u.term_end)
    return None


def _unsaid(t: Sentence, picked: dict[tuple, Sentence]) -> bool:
    """``t`` (a heading, a term) is in no sentence quoted from its document, and names no
    term one of them names (nor, a heading that is a name, a word one of them writes; nor,
    one that quotes a name, that name as one of them writes it, in any case; nor, a name in
    capitals, that name as written)."""
    names = heading_names(t.text)
    quoted = quoted_names(t.text)
    caps = t.text.strip() if _CAPS_NAME.fullmatch(t.text.strip()) else None
    return not any((o.start < t.end and t.start < o.end) or terms_in(t.text) & terms_in(o.text)
                   or names & set(_WORD.findall(o.text.casefold()))
                   or (caps is not None and re.search(rf"\b{caps}\b", o.text) is not None)
                   or any(q in " ".join(o.text.split()).casefold() for q in quoted)
                   for o in picked.values() if o.chunk.doc_id == t.chunk.doc_id)


def pick(
    cands: Sequence[Sentence],
    scores: np.ndarray,
    by_chunk: dict[str, list[Sentence]],
    *,
    budget: int,
    margin: float,
    min_score: float,
    floor: float = float("-inf"),
    same_page: bool = True,
    max_chars: int | None = None,
    corpus: Corpus | None = None,
    lead: int | None = None,
    logits: np.ndarray | None = None,
) -> list[Run]:
    """The answer's sentences, grouped into runs in reading order.

    The best sentence (or ``lead``) always; then, best first, any sentence scoring at least
    ``best - margin`` and ``min_score``, or, next to one already picked in the same
    paragraph or in the first sentence's document, at least ``best - 2 * margin`` and
    ``min_score - margin`` (a paragraph tends to finish its thought:
    "The region is unavailable. Requests are queued for 15 minutes. If the error lasts
    longer, open a P2 ticket."; a page goes on from what it is to how it is done: "A
    generated column is always computed from other columns." and "To create a generated
    column, use the GENERATED ALWAYS AS clause ..."), each with the neighbours it leans
    on, while the total stays within ``budget``. Besides the best, no sentence under
    ``floor``. A picked sentence under a heading that names a term (an option, an
    identifier: ``_heading``) is quoted with that heading, outside the budget, unless a
    sentence quoted from its page names the term already; so is a later sentence of an
    option's description with the option (``_term_over``). Documents come in the order
    of their best passage. (``same_page=False``: the paragraph only; ``max_chars``: at
    most this many characters quoted, whatever the number of sentences: the study's
    variants.) ``lead``: the sentence picked first, in place of the best, and whose
    document is the one the answer goes on in (``leading``); the margins still count from
    the best score. ``logits``: what each run reports as its score, where ``scores`` blend
    the cross-encoder's logits with another judge's (``with_dense``); default ``scores``.
    """
    if not cands:
        return []
    order = sorted(range(len(cands)), key=lambda i: (-scores[i], cands[i].rank, cands[i].start))
    best = float(scores[order[0]])
    if lead is not None:
        order.remove(lead)
        order.insert(0, lead)
    picked, score_of = _choose(
        cands, scores, by_chunk, order, best, budget=budget, margin=margin,
        min_score=min_score, floor=floor, same_page=same_page, max_chars=max_chars)
    _add_terms(picked, by_chunk, corpus)
    if logits is not None:
        at = {c.key: i for i, c in enumerate(cands)}
        score_of = {k: float(logits[at[k]]) for k in score_of}
    return _runs(picked, score_of)


def _choose(
    cands: Sequence[Sentence], scores: np.ndarray, by_chunk: dict[str, list[Sentence]],
    order: list[int], best: float, *, budget: int, margin: float, min_score: float,
    floor: float, same_page: bool, max_chars: int | None,
) -> tuple[dict[tuple, Sentence], dict[tuple, float]]:
    """``pick``'s sentences, each with its neighbours (by key), and the score of each one
    chosen for itself: ``order[0]`` always, then the first of ``order`` that clears the
    margins, while they fit the budget."""
    first_doc = cands[order[0]].chunk.doc_id
    picked: dict[tuple, Sentence] = {}
    score_of: dict[tuple, float] = {}

    def adjacent(s: Sentence) -> bool:
        row = by_chunk[s.chunk.chunk_id]
        return any(
            0 <= j < len(row) and row[j].paragraph == s.paragraph and row[j].key in picked
            for j in (s.index - 1, s.index + 1)
        )

    tried: set[int] = set()
    while len(picked) < budget:
        nxt = next(
            (
                i for i in order
                if i not in tried and cands[i].key not in picked and (
                    not picked
                    or float(scores[i]) >= max(best - margin, min_score, floor)
                    or (
                        float(scores[i]) >= max(best - 2 * margin, min_score - margin, floor)
                        and ((same_page and cands[i].chunk.doc_id == first_doc)
                             or adjacent(cands[i]))
                    )
                )
            ),
            None,
        )
        if nxt is None:
            break
        tried.add(nxt)
        new = [s for s in _neighbours(cands[nxt], by_chunk) if s.key not in picked]
        if picked and len(picked) + len(new) > budget:
            continue
        if picked and max_chars is not None and sum(
                s.end - s.start for s in (*picked.values(), *new)) > max_chars:
            continue
        for s in new:
            picked[s.key] = s
        score_of[cands[nxt].key] = float(scores[nxt])
    return picked, score_of


def _add_terms(picked: dict[tuple, Sentence], by_chunk: dict[str, list[Sentence]],
               corpus: Corpus | None) -> None:
    """Adds to ``picked`` the term over each description sentence (``_term_over``), then
    the heading that names a term over each sentence (``_heading``), each unless the
    answer says it already (``_unsaid``)."""
    quoted = list(picked.values())
    for s in quoted:  # an option's description is quoted with the option
        t = _term_over(s, by_chunk, corpus)
        if t is not None and _unsaid(t, picked):
            picked[t.key] = t
    heads: dict[str, Sentence | None] = {}  # by chunk: one lookup a passage
    for s in quoted:  # (a term is in the section of the sentence it is quoted for)
        if s.chunk.chunk_id not in heads:
            heads[s.chunk.chunk_id] = _heading(s, by_chunk, corpus)
        h = heads[s.chunk.chunk_id]
        if h is not None and _unsaid(h, picked):
            picked[h.key] = h


def _runs(picked: dict[tuple, Sentence], score_of: dict[tuple, float]) -> list[Run]:
    """``picked`` in reading order, documents in the order of their best passage, adjacent
    sentences of one paragraph of one passage as one run; a run's score is the best of
    its sentences chosen for themselves (None: a term or heading alone)."""
    doc_rank: dict[str, int] = {}
    for s in picked.values():
        doc_rank[s.chunk.doc_id] = min(doc_rank.get(s.chunk.doc_id, s.rank), s.rank)
    ordered = sorted(picked.values(), key=lambda s: (doc_rank[s.chunk.doc_id], s.start))
    runs: list[list[Sentence]] = []
    for s in ordered:
        last = runs[-1][-1] if runs else None
        if (
            last is not None
            and last.chunk.chunk_id == s.chunk.chunk_id
            and last.index + 1 == s.index
            and last.paragraph == s.paragraph
        ):
            runs[-1].append(s)
        else:
            runs.append([s])
    return [
        Run(tuple(r), max((score_of[s.key] for s in r if s.key in score_of), default=None))
        for r in runs
    ]


def extractive(
    question: str,
    hits: Sequence[Hit],
    reranker: Reranker | None,
    *,
    budget: int = 4,
    margin: float = 4.0,
    min_score: float = 0.0,
    corpus: Corpus | None = None,
    embedder: Embedder | None = None,
    dense_share: float = 0.0,
    query_vector: np.ndarray | None = None,
) -> tuple[str, list[Run]]:
    """The extractive answer to ``question`` from ``hits``: its text and its cited runs.
    With ``embedder`` and a ``dense_share``, the sentences are chosen in the order of
    ``with_dense`` (the runs still report the cross-encoder's logits; ``query_vector``:
    the question's vector where the search has it).

    Example (the bundled sample, the pack's cross-encoder):
        >>> text, runs = extractive("Can I get a full refund on my monthly plan?", hits, ce)
        >>> [(r.chunk.doc_id, r.start, r.end) for r in runs]
        [('policies/refund-policy.md', 123, 358)]
        >>> text[-69:]
        'Refunds are not available for monthly charges older than 30 days. [1]'
    """
    cands, by_chunk = sentences_of(hits)
    scores = score_sentences(question, cands, reranker, by_chunk)
    if reranker is None:  # term overlap: any shared term counts, nothing else to go on
        if not len(scores) or scores.max() <= 0:
            return "", []
        margin, min_score = 1.0, 1e-9
    floor = min_score if reranker is None else float("-inf")
    order = scores
    if reranker is not None and embedder is not None and dense_share > 0:
        order = with_dense(question, cands, scores, embedder, dense_share, by_chunk,
                           query_vector)
    runs = pick(
        cands, order, by_chunk, budget=budget, margin=margin, min_score=min_score, floor=floor,
        corpus=corpus, lead=None if reranker is None else leading(cands, order, margin),
        logits=None if order is scores else scores,
    )
    if reranker is None:  # term overlap is no logit: no relevance to report
        runs = [Run(r.sentences, None) for r in runs]
    text = " ".join(f"{shown(r.quote)} [{n}]" for n, r in enumerate(runs, start=1))
    return text, runs


def with_dense(
    question: str, cands: Sequence[Sentence], logits: np.ndarray, embedder: Embedder,
    share: float, by_chunk: dict[str, list[Sentence]] | None = None,
    query_vector: np.ndarray | None = None,
) -> np.ndarray:
    """The cross-encoder's ``logits`` of ``cands`` blended with the embedder's cosine of
    each sentence to ``question``, the sentence read as the cross-encoder reads it bare
    (without its heading; one that leans on the sentence before, with it: "This method is
    invoked by specifying the CONCURRENTLY option"): each standardised over the
    candidates, ``share`` of the cosine's and the rest of the logit's, then put back in
    the logits' mean and spread, so that the pick's margins and floor keep their sense
    (``answer_dense_share``; off by default). ``query_vector``: ``question``'s, as the
    first stage embedded it (None: embedded here).

    Why a second judge: the cross-encoder prefers a sentence that says what a thing is to
    the one that names the command; asked "How do I create a named pipe?" of the Debian
    Reference, its best sentences say what a named pipe is, and with the embedder's say
    the answer quotes "For example, try the following ... mkfifo mypipe". But each judge
    errs in its own way: on the eight manuals of the docs benchmark a share of 0.6 holds
    the key for 223 answers of 336 against 216, on none of the eight for fewer (18 keys
    gained, 11 lost), and it costs ``answer`` about 30 % more time, hence off by
    default (``research/dense_pick.py``; docs, Answers). Read as written, a leaning
    sentence has no subject and the blend lost keys on two manuals. Where the embedder
    fails, the logits alone."""
    if len(cands) < 2:
        return logits
    try:
        q = embedder.embed_query(question) if query_vector is None else query_vector
        # One text a call: the embedder's latency path, as the first stage's (a list would
        # wait behind the passages `serve --watch` has queued on its bulk threads).
        cos = np.array([embedder.embed_documents([_read_with(s, by_chunk)])[0] @ q
                        for s in cands], dtype=np.float32)
    except Exception as e:  # the answer stands on the cross-encoder alone
        log.warning("sentence embedding failed (%s: %s); sentences by the cross-encoder "
                    "alone", type(e).__name__, e)
        return logits
    return blended(logits, cos, share)


def blended(logits: np.ndarray, cos: np.ndarray, share: float) -> np.ndarray:
    """``logits`` blended with ``cos`` (``with_dense``; the study replays it on cosines
    computed once)."""
    sd_l, sd_c = float(logits.std()) or 1.0, float(cos.std()) or 1.0
    z = (1 - share) * (logits - logits.mean()) / sd_l + share * (cos - cos.mean()) / sd_c
    return (logits.mean() + sd_l * z).astype(np.float32)


def leading(cands: Sequence[Sentence], scores: np.ndarray, margin: float) -> int | None:
    """The sentence an answer starts from: the best of the first passage's (the one
    ``search`` ranks first: the whole passage read with its title and section, blended
    with the first stage), when it scores within ``margin`` of the best sentence of all;
    None: the best.

    A sentence read alone can outscore the passage that answers: a fragment of another
    version's JSON example over "The docker stats command returns a live data stream for
    running containers." (-2.3 and -3.9 logits), on the page ``search`` puts first."""
    first = [i for i, s in enumerate(cands) if s.rank == 0]
    if not first:
        return None
    i = max(first, key=lambda i: (float(scores[i]), -cands[i].start))
    top = float(scores.max())
    return i if top - margin <= float(scores[i]) < top else None


def has_code(text: str) -> bool:
    """True when ``text`` holds a code block: indented lines after a blank line or a line
    ending with a colon (the indented description under a term is prose)."""
    raw = text.split("\n")
    return any(
        ln[:1].isspace() and ln.strip() and (not raw[i - 1].strip() or raw[i - 1].endswith(":"))
        for i, ln in enumerate(raw) if i
    )


def shown(quote: str) -> str:
    """A quote as the answer shows it: prose on one line; a code block it holds keeps its
    lines (without blank ones), so a command reads as written."""
    if not has_code(quote):
        return _CJK_GAP.sub("", " ".join(quote.split()))
    raw = quote.split("\n")
    # blank lines go, and prose lines without a word (the "/" between Django's tabs)
    lines = [ln.rstrip() for ln in raw
             if ln[:1].isspace() and ln.strip() or any(ch.isalnum() for ch in ln)]
    out = [" ".join(lines[0].split())]
    for ln in lines[1:]:
        out.append(ln if ln[:1].isspace() else " ".join(ln.split()))
    return "\n".join(out)
