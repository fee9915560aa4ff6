"""Does the evidence mention what the question is about? The check behind ``partial`` and
behind a refusal that names the missing thing.

The answerability decision judges whether the *corpus* looks like the question; a question
about a neighbouring product ("How do I commit a transaction in PostgreSQL?" of a
version-control manual) looks like it. This check reads the passages an answer would
quote. The question's *focal* terms are the rare words it writes as a name or as code
(``written_names``: a capital inside the question, unless the question is in title case;
or ``_ . : / @ #`` or a digit among letters, as in ``kb-err-2847``) whose idf is at least
``FOCAL_IDF`` of the idf of a word the corpus never mentions; what a how-to question asks
its steps in or with (``targets``: "... in PostgreSQL") is focal unless ``TARGET_DF`` of
the chunks mention it, and a command written in lower case there that the corpus never
mentions (``commands``: "... with mysqldump") counts as a name. Each is *held* when the
passages (title, section, text) contain it as indexed, or written another way: without
its hyphens or spaces, Greek letters spelled out (``TNF-α`` and ``TNF-alpha``), an
abbreviation spelled out (``PRR`` and ``pattern recognition receptors``), or a compound
by its named parts (``Rad53-dependent``); an identifier with an underscore the corpus
never writes (SQL Server's ``IDENTITY_INSERT`` asked of PostgreSQL's manual) only as
written, never by its parts. A keyword phrase in capitals (``WITHOUT ROWID``, ``CREATE
TYPE``) or, in a how-to question, a name of several words in title case (``Windows
Update``, ``Group Policy``) is focal too, however common its words, and held only where
the passages write them in a row, and so is a name ending in a symbol the index does not
keep (``C++``, ``C#``), held only where the passages write it; either, missing, makes the
answer partial, not refused, unless the corpus never writes the phrase anywhere
(``writes``: "How do I create an enum type with CREATE TYPE?" of SQLite's manual, which
has CREATE TABLE and column types but no CREATE TYPE): then it counts as a name the
documents never mention. A name the question gives only as an example ("a package such
as ZLIB": ``examples``) the passages lack makes the answer partial, never refused.

``state``: ``answered`` when every focal term is held (or the question has none),
``partial`` when some are, ``refused`` when none of its words is, or when the passages lack
what a how-to question asks its steps in or with (``steps_for``: a name the corpus mentions
in few chunks, or one it never mentions); the decision
(``answerability.Decision.checked``) turns a refusal into a partial answer for a question
as close to the corpus as its own sentences, unless it asks how to do something in a
product the passages never name (``steps_elsewhere``: "... in SQLite", not "... on
Linux"): what a how-to question names is what its steps are for. Measured on eight
corpora (``research/evidence_terms.py``; docs, Abstention).

``unheld`` and ``weighed``: after the answer's sentences are chosen, a how-to question's
rare words that are not names and that the quoted passages lack are weighed by the
cross-encoder on the best quote (``WEIGHED_LOGITS``); one it weighs makes the answer
partial (``Evidence.weighing``), never refused. So does a lower-case tool it asks its
steps with (``tools``: "... with kubectl") that they lack; one it asks them *in* ("... in
nginx": ``steps_inside``) refuses, as a name would.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from mcp_rag.index.lexical import STOPWORDS, tokenize
from mcp_rag.index.scope import Term
from mcp_rag.types import Reranker

State = Literal["answered", "partial", "refused"]

FOCAL_IDF = 0.5  # share of the largest idf (a word the corpus never mentions) a focal term has
# A name a how-to question asks its steps *in* or *with* ("... in PostgreSQL", "... in SQL
# Server") is focal, however often the documents mention it, unless at least this share
# of their chunks does: then it is what they are about ("... in SQLite" of SQLite's
# manual; "in Python" of Django's, 10 %). A neighbouring product a manual often compares
# itself with stays under it (PostgreSQL in SQLite's manual: 0.8 % of its chunks).
TARGET_DF = 0.05
# A rare word of a how-to question (not a name) that the quoted passages lack, and that the
# cross-encoder weighs: the best quote scores at least this many logits more without it.
# "How do I create a materialized view and refresh it?" of SQLite's manual quotes CREATE
# VIEW, +4.6 without "materialized"; the rare words of in-scope questions that the
# passages put another way weigh less ("parameterized", "regexes": under 2; "bulk" 3.2).
# It makes an answer partial, never a refusal by itself (chosen leave-one-manual-out on
# the docs benchmark: research/word_weight.py).
WEIGHED_LOGITS = 3.5
_WRITTEN = re.compile(r"[^\W_][\w.+#:/@'-]*[\w+#]|[^\W_]")
# "kb-err-2847" and "IL-6" are code; "0-dimensional" and "5-fold" are not
_CODE = re.compile(r"[_/:@#]|\w\.\w|(?<=[A-Za-z])-?\d|\d(?=[A-Za-z])")
_INITIALS = re.compile(r"(?:[^\W\d_]{1,2}\.)+[^\W\d_]{0,2}")  # e.g, i.e, H.C, R.A.De, Vol.
LONG_REQUEST = 300  # characters: a longer request is judged by its first sentence
# The first sentence, at least ASKED_CHARS long ("Hello. I am trying to ..." reads on)
ASKED_CHARS = 40
_FIRST_SENTENCE = re.compile(rf".{{{ASKED_CHARS},}}?(?:[.!?](?=\s)|$)", re.S)
_ALNUM = re.compile(r"[^\W_]+")
# "How do I ...", "how can we ...", "How to ...", at the start of a sentence
_ASKER = r"(?:do|can|could|should|would|may|might)\s+(?:i|we|you|one)"
_HOW_TO = re.compile(rf"(?:^|[.!?]\s+)\W*how\s+(?:{_ASKER}|to)\b", re.I)
_HOW_DO_I = re.compile(rf"(^|[.!?]\s+)(\W*how)\s+{_ASKER}\b", re.I)
# Where the steps run, not what they are for: "on Linux", "on a Raspberry Pi", "on macOS 14".
# Both are looked for at every preposition (a lookahead: the matches may overlap), so the
# words one takes do not hide the next: "with USR1 in Nginx" is USR1, and Nginx.
_ON = re.compile(r"(?=\bon\s+(?:(?:an?|the|my|our)\s+)?((?:[\w.+#-]+\s*){1,3}))", re.I)
# What the steps are for: "in PostgreSQL", "with Express", "using the SQL Server tools"
_IN = re.compile(
    r"(?=\b(?:in|with|using|via)\s+(?:(?:an?|the|my|our)\s+)?((?:[\w.+#'-]+\s*){1,3}))", re.I)
# What the steps are done *in* ("... in nginx"): the product they are for, not an
# instrument they use ("with regexes", "using parameterized queries").
_INSIDE = re.compile(r"(?=\bin\s+(?:(?:an?|the|my|our)\s+)?((?:[\w.+#'-]+\s*){1,3}))", re.I)
# Two or more words in capitals in a row ("WITHOUT ROWID", "CREATE TYPE", "CONNECT BY"):
# a statement's or a setting's keywords, held only where the passages write them together.
# A name that ends in a symbol the index does not keep (C++, C#, F#, Notepad++: BM25 reads
# "c"), checked as written in the passages, like a phrase.
_SYMBOL_NAME = re.compile(r"\w+(?:\+\+|#)")
_CAPS_PHRASE = re.compile(r"(?<![\w])[A-Z][A-Z0-9_]*[A-Z](?:[ \t]+[A-Z][A-Z0-9_]*[A-Z])+(?![\w])")
# In a how-to question, two or more words with a capital in a row, one of them in title
# case ("Windows Update", "Group Policy", "Task Scheduler", "SQL Server"): the name of the
# product or feature the steps are for, one thing however common each word is. Not from a
# sentence's first word (its capital says nothing); not a run of capitals and codes alone
# ("PRR MDA5", "AND AIMS": a claim's genes, a structured abstract's labels).
_NAME_WORD = r"[A-Z][A-Za-z0-9]+"
_TITLE_PHRASE = re.compile(rf"(?<![\w.'-]){_NAME_WORD}(?:[ \t]+{_NAME_WORD})+(?![\w-])")
_TITLE_WORD = re.compile(r"[A-Z][a-z]+")
_ACRONYM = re.compile(r"[A-Z]{2,6}s?")
_GREEK = {chr(0x3B1 + i): n for i, n in enumerate(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi "
    "rho sigmaf sigma tau upsilon phi chi psi omega".split())}
_GREEK["ς"] = "sigma"
# What a passage names only to set itself apart from it ("unlike in Ruby On Rails",
# "faster than MySQL", "instead of cron"): the words after the cue, up to the next
# punctuation, four at most.
_CONTRAST = re.compile(
    r"\b(?:unlike|than|compared\s+(?:to|with)|in\s+contrast\s+(?:to|with)|as\s+opposed\s+to|"
    r"instead\s+of|versus|vs\.?)\s+((?:(?:in|the|an?)\s+)?(?:[^\s,.;:!?()]+[ \t]*){1,4})", re.I)
# Three or more names in a row, a comma apart (the last may follow "and" or "or"): a list
# of peers ("the interpretation followed by PostgreSQL, MySQL, Firebird, and Oracle"),
# which names each of them without telling how any is used. A name is one to three words,
# each with a capital first.
_PEER = r"[A-Z][\w+#.-]*(?:[ \t]+[A-Z][\w+#.-]*){0,2}"
_PEERS = re.compile(
    rf"(?<![\w.-]){_PEER}(?:[ \t]*,[ \t]*{_PEER})+[ \t]*,?[ \t]+(?:and|or)[ \t]+{_PEER}"
    rf"|(?<![\w.-]){_PEER}(?:[ \t]*,[ \t]*{_PEER}){{2,}}")
# Three or more lines in a row, each a name and a few words more ("Microsoft Network Monitor
# captures", "Novell LANalyzer (*.tr1)"): a list of peers written one a line, as a page's
# bulleted list reads. Not code (indented), not a table row ("Name — Col: value"), not a
# sentence (it would end with its stop) and not a long line.
_LINE_PEER = rf"(?:[-*\u2022][ \t]+)?{_PEER}(?![\w+#])(?:[^\n\u2014:]|:(?!\s)){{0,80}}(?<![.!?:;])"
_LINE_PEERS = re.compile(rf"(?m)^(?:{_LINE_PEER}\n){{2,}}{_LINE_PEER}$")
# What a question gives as an example of what it asks about: "a third-party package such
# as ZLIB", "a database, e.g. PostgreSQL", up to the next punctuation or preposition.
_EXAMPLE = re.compile(r"\b(?:such\s+as|e\.\s?g\.|for\s+(?:example|instance))[\s,]+"
                      r"([^,.;:?!()]+)", re.I)
_EXAMPLE_END = re.compile(r"\s(?:in|on|with|using|via|for|to|from|into|so|that|which|when|"
                          r"where|because)\s", re.I)


def written_names(question: str) -> dict[str, str]:
    """The question's words written as a name or as code, lowercased, to how they were
    written: ``{"postgresql": "PostgreSQL"}`` for "How do I commit in PostgreSQL?".

    A capital counts inside the question, or inside a word (``MySQL``) at its start; a
    request longer than ``LONG_REQUEST`` is read to the end of its first sentence (what it
    asks, not the context and references after it); single letters and initials (``e.g``,
    ``H.C``) name nothing; a question in title case ("Is Dragon Fruit Good For You?": most
    words a capital and then lower case), or in capitals ("EFFORTS OF AMBASSADOR LODGE
    ..."), names nothing by its capitals.
    """
    text = asked(unicodedata.normalize("NFKC", question))
    found = [(m.group(), _opens(text, m.start())) for m in _WRITTEN.finditer(text)
             if len(m.group()) > 1 and not _INITIALS.fullmatch(m.group())]
    words = [w for w, _ in found if w[0].isalpha()]
    titled = len(words) >= 3 and (  # title case, or all capitals: the capitals say nothing
        sum(w[0].isupper() and w[1:].islower() for w in words) >= 0.6 * len(words)
        or sum(w.isupper() for w in words) >= 0.6 * len(words))
    out: dict[str, str] = {}
    for w, first in found:
        w = re.sub(r"'s$", "", w)
        caps = any(c.isupper() for c in (w[1:] if first else w))
        if _CODE.search(w) or (caps and not titled):
            out.setdefault(w.casefold(), w)
    if not titled:  # a keyword phrase in capitals names one thing: WITHOUT ROWID
        for m in _CAPS_PHRASE.finditer(text):
            out.setdefault(" ".join(_spelled(m.group())), " ".join(m.group().split()))
        if how_to(text):  # and so do words in title case: Windows Update
            for phrase in _title_phrases(text):
                out.setdefault(" ".join(_spelled(phrase)), phrase)
    return out


def examples(question: str, names: dict[str, str]) -> frozenset[str]:
    """Of ``names`` (``written_names(question)``), those the question writes only as an
    example of what it asks ("How do I use an installed third-party package such as ZLIB
    in my project?": ``zlib``; after "such as", "e.g." or "for example"/"for instance",
    up to the next punctuation or preposition). Passages that lack an example may still
    answer the question (``find_package`` is how any package is used): the answer is
    partial, naming it, never refused for it."""
    text = asked(unicodedata.normalize("NFKC", question))

    def words(text: str) -> set[str]:  # as ``written_names`` keys them
        return {re.sub(r"'s$", "", w.group()).casefold() for w in _WRITTEN.finditer(text)}

    inside, outside = set(), text
    for m in _EXAMPLE.finditer(text):
        a, b = m.span(1)
        stop = _EXAMPLE_END.search(f" {text[a:b]} ")
        b = a + stop.start() if stop else b
        inside |= words(text[a:b])
        outside = outside[:a] + " " * (b - a) + outside[b:]  # same length: spans keep
    if not inside:
        return frozenset()
    elsewhere = words(outside)
    return frozenset(k for k in names
                     if all(w in inside and w not in elsewhere for w in k.split()))


def _title_phrases(text: str) -> list[str]:
    """Runs of two or more words with a capital (``_TITLE_PHRASE``) in ``text``, one of
    them in title case, without a sentence's first word: "Windows Update" in "How do I
    limit the bandwidth Windows Update uses?", "Task Scheduler" in "Windows Task Scheduler"
    at a sentence's start; not "PRR MDA5"."""
    out = []
    for m in _TITLE_PHRASE.finditer(text):
        words = m.group().split()
        if _opens(text, m.start()):
            words = words[1:]
        if len(words) >= 2 and any(_TITLE_WORD.fullmatch(w) for w in words):
            out.append(" ".join(words))
    return out


def asked(question: str) -> str:
    """What a request asks: a request over ``LONG_REQUEST`` characters up to the end of its
    first sentence of at least ``ASKED_CHARS`` (not the context and references after it;
    a greeting or a short title reads on into the next); a shorter one whole."""
    if len(question) <= LONG_REQUEST:
        return question
    return _FIRST_SENTENCE.match(question).group()  # type: ignore[union-attr]


def how_to(question: str) -> bool:
    """Whether the question (what it asks: ``asked``) asks how to do something: "How do I
    commit a transaction in SQLite?", "how to ...". Such a question's named product, tool or
    language is what the steps are for: passages that never name it tell how it is done
    somewhere else."""
    return _HOW_TO.search(asked(question)) is not None


def how_to_form(question: str) -> str:
    """``question`` with "how do I" (can, should ... I, we, you, one) as "how to", as a
    search engine is asked: "how do i turn on write-ahead logging" -> "how to turn on
    write-ahead logging" (the cross-encoder's training queries; answers score their
    sentences for it)."""
    return _HOW_DO_I.sub(r"\1\2 to", question)


def steps_elsewhere(question: str, e: Evidence) -> bool:
    """Whether ``question`` asks how to do something and the passages lack a name it asks
    the steps *for* ("... in SQLite", "... with Flask"), not only where they run ("... on
    Linux", "... on a Raspberry Pi": the documents' steps may hold there too)."""
    if not e.missing or not how_to(question):
        return False
    # "on a table in MySQL": the table only
    where = {p for w in _after(_ON, question) for p in _spelled(w)}
    return any(not set(_spelled(name)) <= where for name in e.missing)


def _after(pattern: re.Pattern[str], question: str) -> list[str]:
    """The words ``pattern`` (``_ON``, ``_IN``) takes after its preposition in what
    ``question`` asks, casefolded, without trailing punctuation or ``'s``, each run to its
    first stop word."""
    out: list[str] = []
    for m in pattern.finditer(asked(unicodedata.normalize("NFKC", question))):
        for w in m.group(1).split():
            w = re.sub(r"'s$", "", w.rstrip("?.,;:!)")).casefold()
            if not w or w in STOPWORDS:
                break
            out.append(w)
    return out


def steps_words(question: str) -> list[str]:
    """The words a how-to question (``how_to``) asks its steps in or with, casefolded: after
    "in", "with", "using" or "via", up to the first stop word ("How do I create a trigger
    in SQL Server?": ``sql``, ``server``). A claim's "in Escherichia coli" is where it
    holds, not what steps are for: none."""
    return _after(_IN, question) if how_to(question) else []


def steps_inside(question: str) -> list[str]:
    """Of ``steps_words``, those a how-to question asks its steps *in* (after "in"), not
    with, using or via: "How do I enable gzip compression in nginx?": ``nginx``."""
    return _after(_INSIDE, question) if how_to(question) else []


def commands(question: str, words: Collection[str], terms: Sequence[Term]) -> dict[str, str]:
    """Of what a how-to question asks its steps in or with (``steps_words``), the commands
    written in lower case that the corpus never mentions (of ``terms``): words with a
    letter and a part (between ``- _ . /``) that ``words``, the whole words of the models'
    vocabulary (``models.rerank.vocabulary``), does not hold: ``mysqldump``,
    ``virt-install``; not "a batch job", "read-only", nor a word the corpus does mention
    ("parameterized", "regexes": an inflected word the vocabulary lacks). Like
    ``written_names``: lowercased, to as written (empty when ``words`` is)."""
    if not words:
        return {}
    never = {t.word.casefold() for t in terms if t.df == 0}
    return {w: w for w in steps_words(question) if w in never and _unknown(w, words)}


def _unknown(word: str, words: Collection[str]) -> bool:
    """``word`` (casefolded) has a letter, and a part (between ``- _ . /``) that ``words``,
    the whole words of the models' vocabulary, does not hold: a command or a tool's name
    ("mysqldump", "virt-install", "nginx"), not "batch" or "read-only"."""
    return any(c.isalpha() for c in word) and any(p not in words for p in _ALNUM.findall(word))


def tools(question: str, words: Collection[str], terms: Sequence[Term], n_chunks: int,
          names: dict[str, str], target: float = TARGET_DF) -> list[Term]:
    """Of what a how-to question asks its steps in or with (``steps_words``), the words
    written in lower case that are not ``names`` and that ``words`` (the models'
    vocabulary) does not hold whole, that the corpus mentions in under ``target`` of its
    ``n_chunks`` (``commands`` takes those it never mentions): ``nginx`` of Apache httpd's
    manual, which names it once. An answer whose passages never mention one it asks the
    steps *with* is partial, not refused: in-scope questions ask with such words too,
    which the passages may put another way ("regexes"), and the rarest are in 2 to 5
    passages. One it asks the steps *in* (``steps_inside``: "... in nginx") is what they
    are for, as "in Nginx" is: lacking it, the answer is refused."""
    if not words:
        return []
    asked = set(steps_words(question))
    return [t for t in terms if (w := t.word.casefold()) in asked and w not in names
            and 0 < t.df < target * n_chunks and _unknown(w, words)]


def targets(question: str, names: dict[str, str]) -> frozenset[str]:
    """Of ``names`` (``written_names(question)``), those the question asks its steps in or
    with (``steps_words``): the product, tool or language the steps must be for."""
    return frozenset(w for w in steps_words(question) if w in names)


def _opens(text: str, at: int) -> bool:
    """The word at ``at`` opens a sentence (its capital says nothing)."""
    before = text[:at].rstrip()
    return not before or before[-1] in ".!?:;\n"


def focal_terms(terms: Sequence[Term], names: dict[str, str], n_chunks: int,
                share: float = FOCAL_IDF, steps_in: frozenset[str] = frozenset(),
                target: float = TARGET_DF) -> list[Term]:
    """The question's ``terms`` it writes as a name or code (``names``) that are rare here:
    an idf of at least ``share`` of the largest; for a name it asks its steps in
    (``steps_in``: ``targets``), in under ``target`` of the chunks."""
    top = math.log(1.0 + (n_chunks + 0.5) / 0.5)
    return [t for t in terms if t.word.casefold() in names and (
        t.idf(n_chunks) >= share * top
        or (t.word.casefold() in steps_in and t.df < target * n_chunks))]


def _spelled(text: str) -> list[str]:
    """Lowercase alphanumeric runs, Greek letters spelled out."""
    text = "".join(_GREEK.get(c, c) for c in text.casefold())
    return _ALNUM.findall(text)


@dataclass(frozen=True)
class Passages:
    """What the passages an answer would quote say, in the forms a term is looked up in."""

    stems: frozenset[str]  # as indexed (tokenize)
    words: tuple[str, ...]  # lowercase alphanumeric runs, Greek letters spelled out
    content: tuple[str, ...]  # the same without stop words
    raw: str = ""  # the texts, casefolded

    @classmethod
    def of(cls, texts: Iterable[str]) -> Passages:
        stems: set[str] = set()
        words: list[str] = []
        raw: list[str] = []
        for text in texts:
            stems.update(tokenize(text))
            words += _spelled(text)
            raw.append(text.casefold())
        return cls(frozenset(stems), tuple(words),
                   tuple(w for w in words if w not in STOPWORDS), "\n".join(raw))

    def written(self, name: str) -> bool:
        """``name`` (casefolded) as written, not inside a longer word: ``c++``, ``c#``."""
        return re.search(rf"(?<![\w+#]){re.escape(name)}(?![\w+#])", self.raw) is not None

    def joined(self, target: str) -> bool:
        """1-3 consecutive words spell ``target`` ("tnf alpha" for "tnfalpha")."""
        ws = self.words
        for i, w in enumerate(ws):
            if not target.startswith(w):
                continue
            run = w
            for nxt in ws[i + 1:i + 3]:
                if run == target:
                    break
                run += nxt
            if run == target:
                return True
        return False

    def together(self, phrase: list[str]) -> bool:
        """The words of ``phrase`` (lowercase, as ``_spelled`` gives them) in a row, as the
        whole index is asked it (``phrase_pattern``)."""
        return phrase_pattern(phrase).search(self.raw) is not None

    def spelled_out(self, acronym: str) -> bool:
        """2-6 consecutive content words have ``acronym``'s letters as initials."""
        ws, n = self.content, len(acronym)
        return any(all(ws[i + j][0] == acronym[j] for j in range(n))
                   for i in range(len(ws) - n + 1) if ws[i][0] == acronym[0])

    def _holds(self, written: str) -> bool:
        if "".join(_spelled(written)) and self.joined("".join(_spelled(written))):
            return True
        return _ACRONYM.fullmatch(written) is not None and self.spelled_out(
            written.removesuffix("s").lower())

    def hold(self, term: Term, written: str) -> bool:
        """The passages contain ``term`` (written in the question as ``written``); an
        identifier the corpus never writes (``IDENTITY_INSERT``: an underscore in it) is
        not held by its parts written apart ("AS IDENTITY ... INSERT")."""
        if term.stem in self.stems:
            return True
        if "_" in written and term.df == 0:
            return False
        if self._holds(written):
            return True
        # A compound ("Rad53-dependent", "Fz/PCP"): each part written as a name or code.
        parts = [p for p in re.split(r"[-/.:_@#]+", written)
                 if p and (_CODE.search(p) or any(c.isupper() for c in p))]
        return bool(parts) and parts != [written] and all(self._holds(p) for p in parts)


@dataclass(frozen=True)
class Evidence:
    """What the check found: the focal terms, those the passages lack, and of those the
    ones the corpus mentions elsewhere (the passages are about something else) and the ones
    it never mentions (a phrase is elsewhere in neither: its words are counted, not the
    phrase; it is nowhere when the corpus was read and never writes it)."""

    focal: tuple[str, ...]
    missing: tuple[str, ...]
    elsewhere: tuple[str, ...]
    nowhere: tuple[str, ...] = ()  # and the phrases the corpus never writes (``writes``)
    phrases: tuple[str, ...] = ()  # the focal phrases in capitals, and C++, C#
    # what the quotes lack that makes an answer partial only: rare words the cross-encoder
    # weighs (``weighed``), lower-case tools the steps are asked with (``tools``; one they
    # are asked *in* is in ``steps_for`` too, and refuses)
    weighed: tuple[str, ...] = ()
    steps_for: tuple[str, ...] = ()  # the focal names a how-to question asks its steps in
    examples: tuple[str, ...] = ()  # the focal names it gives as examples only (``examples``)
    # of ``missing``, the names the passages write only to set themselves apart from them
    # ("unlike in Ruby On Rails": ``uncontrasted``), and those they write only in a list of
    # peers ("PostgreSQL, MySQL, Firebird, and Oracle": ``unlisted``)
    contrasted: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()

    @property
    def state(self) -> State:
        """A phrase the passages do not write in a row makes an answer partial, never a
        refusal by itself, unless the corpus never writes it (``nowhere``; then its words
        are not judged on their own): "HTTP API" may be asked of passages that write "an
        API over HTTP". So does a weighed word or a lower-case tool (``weighed``): the
        passages may put it another way. What a how-to question asks its steps in or with
        (``steps_for``), when the corpus never mentions it, refuses whatever else is held:
        "How do I turn a video into a GIF with ImageMagick?" of FFmpeg's manual holds GIF,
        but no page of it can say how ImageMagick does it. So does a name of it the
        passages lack that the corpus mentions in few chunks (a focal term: ``TARGET_DF``):
        "How do I apply a LUT to a clip in Final Cut Pro?" holds LUT, and the manual names
        Final Cut Pro in passing, as where a file came from; its LUT passages tell how
        ffmpeg applies one. Not a phrase alone ("SQL Server", "C++"): its words may be
        common, and the passages may name it another way. Nor a name given as an example
        (``examples``: "a package such as ZLIB"): passages on the thing it exemplifies
        answer it, partly."""
        if not self.missing:
            return "answered"
        lacked = set(self.steps_for) & set(self.missing)
        if lacked & set(self.nowhere) or lacked - set(self.phrases):  # "... with ImageMagick?"
            return "refused"
        partial_only = (set(self.phrases) - set(self.nowhere)) | set(self.weighed) \
            | set(self.examples)
        # the words of a phrase the corpus never writes count as that phrase: "the
        # declared type" holds TYPE, not CREATE TYPE
        parts = {w.casefold() for p in self.phrases if p in self.nowhere for w in p.split()}
        words = [f for f in self.focal if f not in partial_only and f.casefold() not in parts]
        return "refused" if words and set(words) <= set(self.missing) else "partial"

    def weighing(self, words: Sequence[Term], inside: Sequence[Term] = ()) -> Evidence:
        """This evidence with ``words`` (weighed words, lower-case tools) missing too, as
        making it partial only; but those of them in ``inside`` (lower-case tools a how-to
        question asks its steps *in*: "... in nginx") as what the steps are for, which
        refuses, as "... in Nginx" does."""
        w = tuple(t.word for t in words)
        return replace(
            self, focal=self.focal + w, missing=self.missing + w,
            elsewhere=self.elsewhere + tuple(t.word for t in words if t.df > 0),
            nowhere=self.nowhere + tuple(t.word for t in words if t.df == 0),
            weighed=self.weighed + w,
            steps_for=self.steps_for + tuple(t.word for t in inside if t in words))

    @property
    def lacks(self) -> tuple[str, ...]:
        """``missing`` as the answer names it: a phrase the passages lack whole, not also
        word by word ('Final Cut Pro', not 'Final', 'Cut', 'Pro' and it)."""
        parts = {w.casefold() for p in self.missing if p in self.phrases for w in p.split()}
        return tuple(w for w in self.missing if w in self.phrases or w.casefold() not in parts)

    def reason(self) -> str | None:
        """What the passages lack, in plain words (None when they lack nothing)."""
        if not self.missing:
            return None
        contrasted = [w for w in self.lacks if w in self.contrasted]
        listed = [w for w in self.lacks if w in self.listed]
        lacks = [w for w in self.lacks if w not in self.contrasted and w not in self.listed]
        said = ""
        if lacks:
            elsewhere = [w for w in self.elsewhere if w in lacks]  # not a lacking phrase's words
            said = f"the best passages never mention {', '.join(repr(w) for w in lacks)}"
            if elsewhere:
                where = ", ".join(repr(w) for w in elsewhere)
                verb = "appears" if len(elsewhere) == 1 else "appear"
                said += f" ({where} {verb} elsewhere in the documents, not where this is " \
                        f"answered)"
            elif self.state == "refused" and self.nowhere == self.missing:
                said += f" (the documents never mention {'it' if len(lacks) == 1 else 'them'})"
        if contrasted:
            them = "it" if len(contrasted) == 1 else "them"
            said = f"{said}; " if said else ""
            said += (f"the best passages name {', '.join(repr(w) for w in contrasted)} only "
                     f"to set themselves apart from {them} (\"unlike …\", \"than …\")")
        if listed:
            said = f"{said}; " if said else ""
            said += (f"the best passages name {', '.join(repr(w) for w in listed)} only in a "
                     f"list beside others (\"A, B and C\"), not how to do it there")
        return said


def uncontrasted(text: str) -> str:
    """``text`` with what it names only to set itself apart blanked out (``_CONTRAST``):
    "This includes the migrations - unlike in Ruby On Rails, for example, ..." does not
    tell how it is done in Rails. The same length: offsets keep."""
    return _CONTRAST.sub(
        lambda m: m.group()[: m.start(1) - m.start()] + " " * len(m.group(1)), text)


def unlisted(text: str) -> str:
    """``text`` with the names it lists among peers blanked out (``_PEERS``): "The
    interpretation used by SQLite is the same and is the interpretation followed by
    PostgreSQL, MySQL, Firebird, and Oracle." tells nothing of how MySQL is used, nor
    does a list of such names one a line (``_LINE_PEERS``). The same length: offsets
    keep."""
    text = _LINE_PEERS.sub(lambda m: re.sub(r"\S", " ", m.group()), text)
    return _PEERS.sub(lambda m: re.sub(r"[^,\s]", " ", m.group()), text)


def as_written(names: dict[str, str]) -> list[str]:
    """Of ``names`` (``written_names``), those checked as written rather than by their
    index terms: phrases in capitals and names ending in ``++`` or ``#``."""
    return [k for k in names if " " in k or _SYMBOL_NAME.fullmatch(k)]


Writes = Callable[[list[str]], bool | None]  # ``check``'s ``writes``


def phrase_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """``words`` (lowercase, as ``_spelled`` gives them) in a row in casefolded text:
    "create type" in "CREATE  TYPE" and "create_type", not in "recreate types"."""
    return re.compile(r"(?<![^\W_])" + r"[\W_]+".join(map(re.escape, words)) + r"(?![^\W_])")


def check(terms: Sequence[Term], names: dict[str, str], n_chunks: int,
          texts: Iterable[str], steps_in: frozenset[str] = frozenset(),
          share: float = FOCAL_IDF, paraphrase: bool = True,
          target: float = TARGET_DF, writes: Writes | None = None,
          examples: frozenset[str] = frozenset()) -> Evidence:
    """The evidence check of a question (its ``terms``, the ``names`` it writes, those it
    asks its steps in: ``targets``) against the ``texts`` of the passages an answer would
    quote; ``writes``, given a phrase's words, says whether the corpus writes them in a
    row anywhere (False: the phrase is ``nowhere``; None: not known). ``share``,
    ``paraphrase`` and ``target``: the study's variants. ``examples``: the names it gives as
    examples only (``examples``)."""
    focal = focal_terms(terms, names, n_chunks, share, steps_in, target)
    phrases = as_written(names)
    if not focal and not phrases:
        return Evidence((), (), ())
    texts = list(texts)
    seen = Passages.of(texts)
    # what the steps are for is held only where a passage does not name it to set itself
    # apart, nor among peers: "unlike in Ruby On Rails" tells nothing of how Rails does it,
    # "followed by PostgreSQL, MySQL, Firebird, and Oracle" nothing of how MySQL does
    asked_in = any(t.word.casefold() in steps_in for t in focal) or any(
        set(k.split()) <= steps_in for k in phrases)
    uncontrasted_texts = [uncontrasted(t) for t in texts] if asked_in else texts
    apart_from = Passages.of(map(unlisted, uncontrasted_texts)) if asked_in else seen

    def held_by(words: Iterable[str]) -> Passages:
        return apart_from if set(words) <= steps_in else seen

    def phrase_in(passages: Passages, k: str) -> bool:  # a phrase in a row, C++ as written
        return passages.together(k.split()) if " " in k else passages.written(k)

    missing = [t for t in focal if not (
        held_by([t.word.casefold()]).hold(t, names[t.word.casefold()]) if paraphrase
        else t.stem in seen.stems)]
    apart = [k for k in phrases if not phrase_in(held_by(k.split()), k)]
    # held only where set apart or listed: which of the two, for the reason
    set_apart = [names[t.word.casefold()] for t in missing
                 if paraphrase and seen.hold(t, names[t.word.casefold()])] + [
        names[k] for k in apart if phrase_in(seen, k)]
    listing = Passages.of(uncontrasted_texts) if set_apart else seen
    listed = [names[t.word.casefold()] for t in missing
              if paraphrase and listing.hold(t, names[t.word.casefold()])] + [
        names[k] for k in apart if phrase_in(listing, k)]
    contrasted = [n for n in set_apart if n not in listed]
    unwritten = [k for k in apart if " " in k and writes is not None
                 and writes(k.split()) is False]
    return Evidence(
        tuple(names[t.word.casefold()] for t in focal) + tuple(names[k] for k in phrases),
        tuple(names[t.word.casefold()] for t in missing) + tuple(names[k] for k in apart),
        tuple(names[t.word.casefold()] for t in missing if t.df > 0),
        tuple(names[t.word.casefold()] for t in missing if t.df == 0)
        + tuple(names[k] for k in unwritten),
        tuple(names[k] for k in phrases),
        steps_for=tuple(names[t.word.casefold()] for t in focal if t.word.casefold() in steps_in)
        + tuple(names[k] for k in phrases if set(k.casefold().split()) <= steps_in),
        examples=tuple(names[k] for k in examples if k in names),
        contrasted=tuple(contrasted),
        listed=tuple(listed),
    )


def rare_words(terms: Sequence[Term], names: dict[str, str], n_chunks: int,
               share: float = FOCAL_IDF) -> list[Term]:
    """The question's rare content words (an idf of at least ``share`` of the largest) that
    are not names (``names``: the check looks for those)."""
    top = math.log(1.0 + (n_chunks + 0.5) / 0.5)
    return [t for t in terms if t.word.casefold() not in names and t.word.isalpha()
            and t.idf(n_chunks) >= share * top]


def unheld(terms: Sequence[Term], names: dict[str, str], n_chunks: int,
           texts: Iterable[str], share: float = FOCAL_IDF) -> list[Term]:
    """The question's rare words (``rare_words``) that the ``texts`` lack, in any of the
    forms ``Passages.hold`` accepts."""
    return lacking(rare_words(terms, names, n_chunks, share), texts)


def lacking(terms: Sequence[Term], texts: Iterable[str]) -> list[Term]:
    """Of ``terms``, those the ``texts`` do not hold (``Passages.hold``)."""
    if not terms:
        return []
    seen = Passages.of(texts)
    return [t for t in terms if not seen.hold(t, t.word)]


def without(question: str, stem: str) -> str:
    """``question`` with the words indexed as ``stem`` taken out."""
    out = _ALNUM.sub(lambda m: "" if stem in tokenize(m.group()) else m.group(), question)
    return " ".join(out.split())


def weighed(question: str, quote: str, words: Sequence[Term], ce: Reranker,
            logits: float = WEIGHED_LOGITS) -> list[Term]:
    """Of ``words`` (``unheld``), those ``quote`` answers worse for: the cross-encoder
    scores it at least ``logits`` higher for the question without the word. One pair a
    word, and one for the question whole."""
    if not words:
        return []
    scores = ce.predict([(question, quote)] + [(without(question, t.stem), quote) for t in words])
    return [t for t, x in zip(words, scores[1:], strict=True) if x - scores[0] >= logits]
