"""Sentence- and paragraph-aware chunking with exact character spans.

A document's text is cut into paragraphs (blank lines), paragraphs into sentences; a term
stays with its description and a sentence with the code block or list it introduces
(``split_units``); the units are packed greedily into chunks of at most ``target_tokens``
tokens. A chunk never crosses a section heading; consecutive chunks of a section share
``overlap`` units; a unit longer than the target is split into its sentences, and a
sentence longer than the target on word boundaries.
Every chunk satisfies ``doc.text[chunk.start:chunk.end] == chunk.text``.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mcp_rag.ingest.ocr import is_label as ocr_label
from mcp_rag.types import Chunk, Document

_ABBREVIATIONS = {
    "e.g", "i.e", "vs", "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "no", "nos",
    "fig", "figs", "eq", "eqs", "al", "approx", "inc", "ltd", "co", "corp", "dept", "vol",
    "pp", "ca", "cf", "resp", "ref", "refs", "sec", "art", "min", "max", "jan", "feb", "mar",
    "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "ph.d",
}
# End of sentence: . ! ? (and closing quotes/brackets) followed by space and a plausible start.
_SENT_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_PARA = re.compile(r"\n[ \t]*\n\s*")
# " . " (a terminator standing alone between spaces): how older and OCR'd collections,
# often all lowercase, end sentences. Never found inside ordinary prose.
_SPACED_END = re.compile(r"(?<=\s)[.!?]+(?=\s|$)")
# In text that is all lowercase, a terminator before a lowercase word ends a sentence too.
_LOWER_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[a-z])")
_LIST_LINE = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)]|[A-Z])")
# Chinese and Japanese end a sentence with a full-width stop, with no space after it (one
# inside quotes, 「…か？」と聞いた, ends nothing).
_CJK_END = re.compile(r"[。！？]+(?![」』）”’])")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    paragraph: int
    joined: bool = False  # a unit of several sentences (see ``split_units``)
    term_end: int = 0  # where the term line(s) a joined unit opens with end (0: none)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the period at ``dot`` closes an abbreviation or an initial, not a sentence."""
    m = re.search(r"([A-Za-z][A-Za-z.]*)$", text[max(0, dot - 12) : dot])
    if not m:
        return False
    word = m.group(1).lower().rstrip(".")
    return word in _ABBREVIATIONS or (len(word) == 1 and text[dot - 1].isupper())


def _is_lowercase(text: str, start: int, end: int) -> bool:
    """True for a paragraph written without capitals (old collections, OCR output)."""
    seg = text[start:end]
    if len(seg) < 80:
        return False
    upper = sum(map(str.isupper, seg))  # map over str methods: ~3x a generator's speed
    return upper <= 0.005 * sum(map(str.isalpha, seg))


def split_sentences(text: str) -> list[Span]:
    """Sentence spans (stripped of surrounding whitespace), tagged with their paragraph number."""
    spans: list[Span] = []
    for p, (ps, pe) in enumerate(_paragraphs(text)):
        cuts = [ps]
        ends = [_SENT_END, _SPACED_END, _CJK_END]
        if _is_lowercase(text, ps, pe):
            ends.append(_LOWER_END)
        for pattern in ends:
            for m in pattern.finditer(text, ps, pe):
                if text[m.start()] == "." and _is_abbreviation(text, m.start()):
                    continue
                cuts.append(m.end())
        # A line break ends a sentence after punctuation or before a list item / capital,
        # but not inside hard-wrapped prose (a long line that runs on).
        for m in re.finditer(r"\n", text[ps:pe]):
            nl = ps + m.start()
            line_start = text.rfind("\n", ps, nl)
            prev_line = text[ps if line_start < 0 else line_start + 1 : nl].rstrip()
            line_end = text.find("\n", nl + 1, pe)
            next_line = text[nl + 1 : pe if line_end < 0 else line_end]
            if prev_line.endswith((".", "!", "?", ":", ";")) or (
                _LIST_LINE.match(next_line) and len(prev_line) < 60
            ):
                cuts.append(nl + 1)
        cuts = sorted(set(cuts)) + [pe]
        for a, b in zip(cuts, cuts[1:], strict=False):
            s, e = _trimmed(text, a, b)
            if e > s:
                spans.append(Span(s, e, p))
    return spans


# Documentation's structure, as the readers leave it in the text: a code block is an
# indented paragraph (3 spaces or more, or a tab, on every line; reStructuredText indents
# by 3), a term stands on its own line just above its description.
BLOCK_CHARS = 800  # what a sentence introduces is kept with it up to this many characters
# A paragraph that ends on one of these words stops mid-sentence: the lines after it (a
# list HTML wrote without markers, a URL, a formula) finish it.
_RUNS_ON = re.compile(
    r"\s(?:that|which|who|whose|whom|then|and|or|nor|but|of|the|an?|to|by|with|as|at|from|"
    r"for|in|on|into|onto|is|are|be|was|were|if|when|where|than|via|using|includes?|"
    r"including|namely|like)$")
_SENTENCE_START = re.compile(r"\s*[A-Z][a-z]")  # "If you have ...": a sentence of its own
_SPACES = re.compile(r"\s*")
TERM_CHARS = 120  # a line longer than this is prose, not a term
_TERMS = 3  # at most this many term lines share one description ("-a" / "--all")
_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s")
_INDENTS = ("   ", "\t")


def _lines(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each line of ``text[start:end]``, lazily."""
    a = start
    while a < end:
        b = text.find("\n", a, end)
        b = end if b < 0 else b
        yield a, b
        a = b + 1


def _is_block(text: str, start: int, end: int) -> bool:
    """True when every non-blank line of ``text[start:end]`` is indented (a code block).
    Stops at the first line that is not (prose answers at its first line)."""
    seen = False
    for a, b in _lines(text, text.rfind("\n", 0, start) + 1, end):
        if text[a:b].strip():
            if not text.startswith(_INDENTS, a, b):
                return False
            seen = True
    return seen


def reads_as_term(line: str) -> bool:
    """``line`` is short enough and shaped to stand as a term: one line of at most
    ``TERM_CHARS`` without end punctuation (an option, a signature, a label)."""
    return len(line) <= TERM_CHARS and "\n" not in line and not line.endswith(tuple(".!?;,:"))


def _is_term(text: str, s: Span, nxt: Span | None) -> bool:
    """``s`` is a whole short line without end punctuation and ``nxt`` starts on the next
    line of the same paragraph: an option, a signature, a label over its description."""
    if nxt is None or nxt.paragraph != s.paragraph:
        return False
    line = text[s.start : s.end]
    gap = text[s.end : nxt.start]
    if not reads_as_term(line) or gap.count("\n") != 1 or gap.strip():
        return False
    lo = max(0, s.start - TERM_CHARS)  # what precedes it on its line (a term has nothing)
    nl = text.rfind("\n", lo, s.start)
    before = text[nl + 1 if nl >= 0 else lo : s.start]
    return not before.strip() and not _MARKER.match(line) and not before.startswith(_INDENTS)


def _introduced_end(text: str, s: Span, paragraphs: list[tuple[int, int]]) -> int:
    """Where what ``s`` introduces ends (``s.end`` if nothing): after a sentence ending with
    a colon, the lines that follow (a list, a code block, the next paragraph), and so after
    a paragraph that stops mid-sentence ("A rowid table is any table in an SQLite schema
    that" and the list that finishes it; ``_RUNS_ON``) unless what follows starts a
    sentence of its own; after the last sentence of a paragraph, the code block that
    follows it. Whole lines, at most ``BLOCK_CHARS`` characters, across the blank lines
    inside a code block."""
    unit = text[s.start : s.end]
    colon = unit.endswith(":")
    p = s.paragraph
    p_end = paragraphs[p][1]
    last = _SPACES.match(text, s.end, p_end).end() == p_end  # type: ignore[union-attr]
    if not colon and not last:
        return s.end
    runs_on = not colon and _RUNS_ON.search(unit) is not None
    end, used = s.end, 0
    first = True
    for q in range(p, len(paragraphs)):
        a, b = paragraphs[q]
        if q == p:
            a = s.end + 1
            if a >= b:
                continue
        if not any(ch.isalnum() for ch in text[a:b]):  # a separator, icons: passed over
            used += b - a + 1
            end = max(end, b)
            continue
        block = _is_block(text, a, b)
        if runs_on and first and _SENTENCE_START.match(text, a):
            break
        if not (block or ((colon or runs_on) and first)):
            break
        for la, lb in _lines(text, a, b):
            if used + (lb - la) > BLOCK_CHARS:
                return end
            used += lb - la + 1
            end = max(end, lb)
        first = False
        if not block:
            break
    return end


# A sentence that stops without punctuation ("For example, the code"); not one that ends
# with a colon: what follows the block it introduces is as often the next item of a list
_UNFINISHED = re.compile(r"[\w)\]>'\"`]$")
_GOES_ON = re.compile(r"[a-z]+\b(?![.:(_])")  # "will install ...", "where <x> is ...", "or"
_NUMBERED = re.compile(r"\d+(?:\.\d+)*\.?\s")  # "2.6 Showing modifications": a heading


def _finished_after(text: str, j: int, end: int, spans: list[Span],
                    paragraphs: list[tuple[int, int]], depth: int = 3) -> int:
    """``end``, or past the sentence that finishes ``spans[j]`` after the block it
    introduces: "For example, the code" / a code block / "will install the executable ..."
    is one sentence with code in it (Sphinx's manuals write so), and its last part quoted
    alone ("will install the executable myexe to <prefix>/bin") says nothing of the code.
    Only when ``spans[j]`` stops without punctuation and is no label or heading ("Usage",
    "2.6 Showing modifications"), it introduces a code block, what follows that is a prose
    paragraph opening in lower case ("will", "where", "is"; not a name such as
    "os.environ" or "expr:"), of three words or more and ``BLOCK_CHARS`` at most, that
    does not itself end with a colon (it introduces what follows it: "or from a file:").
    What that sentence introduces in turn comes with it ("will be replaced with either" /
    "#define VAR 0"), ``depth`` times at most."""
    s = spans[j]
    said = text[s.start:s.end]
    if (depth == 0 or not _UNFINISHED.search(said) or len(said.split()) < 2
            or _NUMBERED.match(said)):  # a label ("Usage", "Examples") or a heading
        return end
    k, nxt = next(((i, t) for i, t in enumerate(itertools.islice(spans, j + 1, None), j + 1)
                   if t.start >= end), (0, None))
    if nxt is None or text[end:nxt.start].strip() or nxt.end - nxt.start > BLOCK_CHARS:
        return end
    a, b = paragraphs[nxt.paragraph]
    goes_on = text[nxt.start:nxt.end]
    if (a != nxt.start or nxt.paragraph == 0 or _is_block(text, a, b)
            or not _is_block(text, *paragraphs[nxt.paragraph - 1])
            or not _GOES_ON.match(text, a)
            or len(goes_on.split()) < 3 or goes_on.endswith(":")):
        return end
    after = _introduced_end(text, nxt, paragraphs)
    if after == nxt.end or after - s.start > 2 * BLOCK_CHARS:
        return nxt.end
    return _finished_after(text, k, after, spans, paragraphs, depth - 1)


def _code_as_lines(
    text: str, spans: list[Span], paragraphs: list[tuple[int, int]]
) -> list[Span]:
    """``spans`` with each code block's sentences replaced by runs of its whole lines
    (``BLOCK_CHARS`` at most): code has no sentences, and is cut only between lines."""
    out: list[Span] = []
    done: set[int] = set()
    block: dict[int, bool] = {}  # paragraph -> is a code block (asked once a paragraph)
    for s in spans:
        p = s.paragraph
        a, b = paragraphs[p]
        if p not in block:
            block[p] = _is_block(text, a, b)
        if not block[p]:
            out.append(s)
            continue
        if p in done:
            continue
        done.add(p)
        run: list[tuple[int, int]] = []
        for la, lb in _lines(text, a, b):
            if run and lb - run[0][0] > BLOCK_CHARS:
                out.append(Span(*_trimmed(text, run[0][0], run[-1][1]), p))
                run = []
            run.append((la, lb))
        if run:
            out.append(Span(*_trimmed(text, run[0][0], run[-1][1]), p))
    return out


def split_units(text: str) -> list[Span]:
    """``split_sentences`` with documentation's structure kept whole: a term line with its
    description (``term_end``: where the term ends), and a sentence with the code block or list
    it introduces (``joined``).
    Units are disjoint and in order (chunking cuts one where a section starts inside it).
    """
    paragraphs = _paragraphs(text)
    spans = _code_as_lines(text, split_sentences(text), paragraphs)
    out: list[Span] = []
    i = 0
    while i < len(spans):
        s = spans[i]
        j = i
        while (j - i < _TERMS and j + 1 < len(spans)
               and _is_term(text, spans[j], spans[j + 1])):
            j += 1
        end = max(spans[j].end, _introduced_end(text, spans[j], paragraphs))
        if end > spans[j].end:
            end = _finished_after(text, j, end, spans, paragraphs)
        if j == i and end == s.end:
            out.append(s)
            i += 1
            continue
        out.append(Span(s.start, end, s.paragraph, joined=True,
                        term_end=spans[j - 1].end if j > i else 0))
        i = j + 1
        while i < len(spans) and spans[i].end <= end:
            i += 1
        if i < len(spans) and spans[i].start < end:  # a sentence runs on past the block
            a, b = _trimmed(text, end, spans[i].end)
            spans[i] = Span(a, b, spans[i].paragraph)
            if b <= a:
                i += 1
    return out


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph of ``text`` (blank lines between), in order."""
    breaks = list(_PARA.finditer(text))
    starts = [0] + [m.end() for m in breaks]
    ends = [m.start() for m in breaks] + [len(text)]
    return list(zip(starts, ends, strict=True))


def _split_long(
    text: str, span: Span, max_tokens: int, count: Callable[[str], int]
) -> list[Span]:
    """Split a too-long sentence on whitespace into pieces of at most ``max_tokens`` tokens."""
    words = [m.span() for m in re.finditer(r"\S+", text[span.start : span.end])]
    pieces: list[Span] = []
    cur_start: int | None = None
    cur_tokens = 0
    prev_end = span.start
    for ws, we in words:
        ws, we = ws + span.start, we + span.start
        n = count(text[ws:we])
        if cur_start is not None and cur_tokens + n > max_tokens:
            pieces.append(Span(cur_start, prev_end, span.paragraph))
            cur_start, cur_tokens = None, 0
        if cur_start is None:
            cur_start = ws
        if n > max_tokens:  # one huge "word" (a URL, a hash) stands alone; models truncate it
            pieces.append(Span(cur_start, we, span.paragraph))
            cur_start, cur_tokens = None, 0
        else:
            cur_tokens += n
        prev_end = we
    if cur_start is not None:
        pieces.append(Span(cur_start, prev_end, span.paragraph))
    return pieces


def _split_lines(
    text: str, span: Span, max_tokens: int, count: Callable[[str], int]
) -> list[Span]:
    """Code over ``max_tokens`` as runs of whole lines (a line still too long is cut on
    words)."""
    out: list[Span] = []
    run: list[tuple[int, int]] = []
    used = 0
    for a, b in _lines(text, span.start, span.end):
        a, b = _trimmed(text, a, b)
        if b <= a:
            continue
        n = count(text[a:b])
        if run and used + n > max_tokens:
            out.append(Span(run[0][0], run[-1][1], span.paragraph))
            run, used = [], 0
        if n > max_tokens:
            out.extend(_split_long(text, Span(a, b, span.paragraph), max_tokens, count))
            continue
        run.append((a, b))
        used += n
    if run:
        out.append(Span(run[0][0], run[-1][1], span.paragraph))
    return out


def _pieces(
    text: str, span: Span, max_tokens: int, count: Callable[[str], int]
) -> list[Span]:
    """A unit over ``max_tokens`` in pieces that fit: a joined unit as its sentences and
    code blocks, code as runs of whole lines, prose cut on words."""
    if _is_block(text, span.start, span.end):
        return _split_lines(text, span, max_tokens, count)
    if not span.joined:
        return _split_long(text, span, max_tokens, count)
    sub = text[span.start : span.end]
    out: list[Span] = []
    for sp in _code_as_lines(sub, split_sentences(sub), _paragraphs(sub)):
        sp = Span(sp.start + span.start, sp.end + span.start, span.paragraph)
        if count(text[sp.start : sp.end]) <= max_tokens:
            out.append(sp)
        else:
            out.extend(_pieces(text, sp, max_tokens, count))
    return out


def label_at(marks: tuple, offset: int, default):
    """The label (section heading, page number) in force at ``offset`` of sorted (offset, label)."""
    if not marks:
        return default
    i = bisect.bisect_right([m[0] for m in marks], offset) - 1
    return marks[i][1] if i >= 0 else default


def _at_sections(text: str, spans: list[Span], starts: list[int]) -> list[Span]:
    """``spans`` cut where a section starts inside one (code, where a line ending in ``}``
    runs on into the next definition), so that no unit belongs to two sections."""
    out: list[Span] = []
    for s in spans:
        i = bisect.bisect_right(starts, s.start)
        a = s.start
        while i < len(starts) and starts[i] < s.end:
            x, y = _trimmed(text, a, starts[i])
            if y > x:
                out.append(Span(x, y, s.paragraph, s.joined))
            a = starts[i]
            i += 1
        x, y = _trimmed(text, a, s.end)
        if y > x:
            out.append(Span(x, y, s.paragraph, s.joined))
    return out


def chunk_document(
    doc: Document,
    count_tokens: Callable[[str], int],
    target_tokens: int = 200,
    overlap: int = 1,
) -> list[Chunk]:
    """Cut ``doc`` into chunks of at most ``target_tokens`` tokens.

    Example:
        >>> d = Document("a", "a.txt", "A", "One two. Three four.\\n\\nFive six.")
        >>> [c.text for c in chunk_document(d, lambda s: len(s.split()), target_tokens=4)]
        ['One two. Three four.', 'Three four.\\n\\nFive six.']
    """
    text = doc.text
    units: list[tuple[Span, int, int]] = []  # (span, tokens, section index)
    section_starts = [s[0] for s in doc.sections]
    for s in _at_sections(text, split_units(text), section_starts):
        n = count_tokens(text[s.start : s.end])
        parts = [s] if n <= target_tokens else _pieces(text, s, target_tokens, count_tokens)
        for part in parts:
            tokens = n if part is s else count_tokens(text[part.start : part.end])
            sec = bisect.bisect_right(section_starts, part.start) - 1
            units.append((part, tokens, sec))

    chunks: list[Chunk] = []
    current: list[tuple[Span, int, int]] = []

    def flush() -> None:
        start, end = current[0][0].start, current[-1][0].end
        chunks.append(
            Chunk(
                doc_id=doc.doc_id,
                chunk_no=len(chunks),
                text=text[start:end],
                start=start,
                end=end,
                title=doc.title,
                section=label_at(doc.sections, start, ""),
                page=label_at(doc.pages, start, None),
                source=doc.source,
            )
        )

    for unit in units:
        _, tokens, sec = unit
        used = sum(u[1] for u in current)
        if current and current[-1][2] != sec:
            flush()
            current = []
        elif current and used + tokens > target_tokens:
            flush()
            keep = current[-overlap:] if overlap else []
            # Overlap only while it leaves room, and never repeat the whole previous chunk.
            while keep and (
                len(keep) == len(current) or sum(u[1] for u in keep) + tokens > target_tokens
            ):
                keep = keep[1:]
            current = keep
        current.append(unit)
    if current:
        flush()
    return chunks


def index_text(chunk: Chunk) -> str:
    """What the retrievers see for a chunk: title and section give it the document's context
    (an OCR'd page's label says how it was read, not what it is about: left out)."""
    head = [chunk.title] if chunk.title else []
    if chunk.section and chunk.section != chunk.title and not ocr_label(chunk.section):
        head.append(chunk.section)
    return "\n".join([*head, chunk.text])
