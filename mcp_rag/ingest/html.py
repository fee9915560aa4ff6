"""HTML to plain text with heading paths (stdlib parser); table rows keep their headers.

Documentation's structure is kept in the text the way ``split_units`` reads it: a code
block (``<pre>``, or a paragraph that is one ``<code>`` element, as Apache httpd's
manual shows a command) is indented by four spaces; a definition list's term (``<dt>``: an
option, a Sphinx signature) and an admonition's title stand on the line just above their
description, never a paragraph away, and a description's later paragraphs follow its
first one line by line, so that each stays under its term (``<dd>``: "--track-origins=<yes|no>"
over "When set to yes, …" and "For uninitialised values originating from a stack
allocation, …"; a code block or a table inside it still stands apart, and the prose after
a code block stands under the term again, repeated on the line above it: Sphinx's
``str.split(sep=None, maxsplit=-1)`` over "If sep is not given, …" after the examples);
a code block Sphinx anchors that is one call (CMake's "list(APPEND <list> [<element>
...])") is a signature, a term over the paragraph after it; a heading's link to itself
(Sphinx's and Apache httpd's "¶", FFmpeg's "#" and "TOC") is dropped. Page chrome
(navigation bars, sidebars, search boxes, buttons, footers; Texinfo's "Next: …, Up: …"
bars) is left out: it is not the page, and it wrote the titles of a page's neighbours
into it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from mcp_rag.ingest.chunking import reads_as_term

# ``h`` is XHTML 2's heading without a number, a level below the numbered one it follows:
# SQLite's pragma page heads each of its 74 PRAGMAs with one (hidden, for its search).
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6", "h"}
_BLOCK = {
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
    "main", "aside", "blockquote", "pre", "hr", "dl", "dt", "dd", "figure", "figcaption",
    "td", "th", "caption", "address",
} | _HEADINGS
_SKIP = {"script", "style", "noscript", "template", "svg", "iframe", "object", "canvas", "head",
         # controls and navigation: a search box, "hide"/"show" buttons, a menu
         "button", "form", "select", "nav", "footer"}
# Sphinx: "¶" after headings, "[source]"; Pygments' line numbers beside code (inline
# spans, or the gutter of a table: "1 include(...)" would be copied with the command)
_SKIP_CLASSES = {"headerlink", "viewcode-link", "linenos", "lineno", "linenodiv"}
# A heading's link to itself, "¶" or "#" beside its words: Apache httpd's manual marks it
# "permalink", Docusaurus "hash-link", others by its title, or hide it from screen readers
# (``aria-hidden``: GitHub's rendered Markdown; Texinfo's Bootstrap pages, FFmpeg's manual,
# with a "TOC" link back to the contents beside it); only a link within the page.
_PERMALINK_CLASSES = {"permalink", "hash-link", "anchor-link", "heading-anchor",
                      "copiable-anchor", "copiable-link"}  # Texinfo 6 and 7: "¶" by a definition
_PERMALINK_TITLES = {"permanent link", "permalink", "permalink to this headline",
                     "permalink to this heading", "link to this heading"}
# Page chrome, not the page: what the ARIA landmarks mark as navigation, search and the
# site's footer, and what documentation generators that mark none put around every page:
# Sphinx's sidebar and footer, DocBook's "Prev | Up | Home | Next" bars (with the titles
# of the pages before and after), Django's header bar and sidebar, AsciiDoc's "Last
# updated", what SQLite's pages mark "nosearch" (its menu and tagline), and Apache httpd's
# header menu, breadcrumb ("Apache > HTTP Server > Documentation"), lists of the page's
# languages and its floating contents box ("quickview": the page's sections, "See also");
# and the "Skip to content" link themes put first for keyboards (MkDocs Material's
# "md-skip", the usual "skip-link").
_CHROME_ROLES = {"navigation", "search", "contentinfo"}
_CHROME_CLASSES = {"sphinxsidebar", "footer", "navheader", "navfooter", "nav", "navbar",
                   "nosearch", "toplang", "bottomlang", "md-skip", "skip-link"}
_CHROME_IDS = {"sidebar", "footer", "global-nav", "page-header", "quickview"}
_CHROME_DIV_IDS = {"path"}  # on a <div> only: another element may be about PATH
# What Texinfo (``makeinfo``, ``texi2any``: the GNU manuals) puts around every node: the
# "Next: …, Previous: …, Up: …" bar (a <div class="header">, "nav-panel" from Texinfo 7)
# and the list of the node's sections under its heading; only on a page it generated
# (its <meta name="Generator">), as another page's "header" may hold its title.
_TEXINFO_CHROME_CLASSES = {"header", "nav-panel", "section-toc", "mini-toc"}
_TEXINFO = ("makeinfo", "texi2any")
# What Node.js's API reference (its doc tool's template, as Debian's nodejs-doc ships it)
# puts before every page's text: a sidebar of every module (<div id="column2">) and a header
# of pickers (the page's contents, the index of modules again, other versions, "View as
# JSON": <header class="header">), 2,000 characters of the same links on each of its 65
# pages; only on a page of that template (its <div id="apicontent">), as another page's
# "column2" may be its text.
_NODE_API = re.compile(r'<div id="apicontent"')
# blocks that end a line, not a paragraph ("br": XHTML's <br /> reaches the end tag too)
_LINE_BLOCKS = {"br", "li", "tr", "td", "th", "dt", "dd"}
_TERM_CLASSES = {"admonition-title"}  # "Note", "Warning": a label over what follows
# An admonition whose title is a heading (DocBook's <div class="note"><h3 class="title">,
# PostgreSQL's 456; Apache httpd's <div class="warning"><h3>, 273): the heading is the
# admonition's title, a term over its text, not a section that what follows belongs to
# AsciiDoc's admonitionblock is a table of the title ("Note", in its icon cell) and the
# note, whose paragraphs and code the table read as one row ("Warning | … run: $ kiln
# vent --close."): git's manual writes its notes so.
_ADMONITION_DIVS = {"note", "tip", "warning", "caution", "important", "danger", "hint", "example",
                    "attention", "error", "admonition", "admonitionblock"}
_CODE_INDENT = "    "
# A code block that Sphinx anchors (``<div class="highlight-cmake" id="append">``) and that
# is one call of at most ``_SIGNATURE_LINES`` lines is a signature: CMake's reference heads
# each sub-command of its list(), string(), file() and install() pages so ("list(APPEND
# <list> [<element> ...])" over "Appends elements to the list. …"). It stands as a term
# over the paragraph that follows it (after a "New in version 3.12." note, if one comes
# first), not as a code block that closes the paragraph before it.
_SIGNATURE_LINES = 3
_CALL = re.compile(r"[A-Za-z_][\w.:]*\(")
_VERSION_NOTES = {"versionadded", "versionchanged", "deprecated"}
_LABEL_CHARS = 60  # a toggle's label longer than this is a sentence: it stays
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")  # Font Awesome and other icon fonts


@dataclass
class _Description:
    """An open ``<dd>``."""

    term: tuple[str, ...]  # its term's lines: the <dt>s just before it
    # Does its next paragraph follow on the next line (its term still above it)? Not
    # before its first text, nor after a list of its own (a nested <dl> has terms of its
    # own) or a code block (which must stand apart).
    follows: bool = False
    after_code: bool = False  # its next prose follows a code block: under the term again


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.skip = 0  # open elements named ``skipped``: > 0 inside what is left out
        self.skipped = ""  # the tag of the outermost element left out
        self.texinfo = False  # the page says Texinfo made it
        self.node_api = False  # Node.js's doc tool made it (``_NODE_API``)
        # An open link to itself (``href="#x" id="x"``): where its text starts in ``parts``
        # (and ``length`` there) and in ``heading_buf``; a glyph is all it says, if anything.
        self.self_link: tuple[int, int, int] | None = None
        self.pre = 0
        self.title = ""
        self.in_title = False
        self.heading_level: int | None = None
        self.heading_tag = ""
        self.numbered = 0  # the level of the last numbered heading (h1-h6)
        self.heading_buf: list[str] = []
        self.path: list[tuple[int, str]] = []
        self.sections: list[tuple[int, str]] = []
        self.heading_start = 0
        self.table_depth = 0
        # Tables that lay out, not tabulate, open ones: Pygments' table of line numbers
        # and code (Sphinx, MkDocs), a code block; DocBook's admonition, an icon and a title
        # over the note's paragraphs (the Debian Reference's, Wireshark's guide's)
        self.layout_tables = 0
        self.divs: list[bool] = []  # the open <div>s: whether each is an admonition
        self.headers: list[str] | None = None  # header cells of the current table
        self.row: list[tuple[str, bool]] | None = None  # (text, is header cell)
        self.cell: list[str] | None = None
        self.cell_header = False
        self.table_rows = 0
        self.pre_start = False
        self.term_open = False  # a term just ended: its description goes on the next line
        self.term_tags: list[str] = []  # open elements whose text is a term
        self.descriptions: list[_Description] = []  # the open <dd>s
        self.dt_terms: list[str] = []  # the <dt>s read since the last <dd> began
        self.dt_from: int | None = None  # where the open <dt>'s text starts in ``parts``
        self.lists: list[int] = []  # per open <dl>: how many <dd> were open at its start
        self.owed = False  # a paragraph break was made a line break: the <dd>'s end owes it
        # A paragraph that is a label and a show/hide button ("returning-clause: [hide]")
        # labels what follows it; when no text follows before the next paragraph or
        # heading (what it shows is an SVG diagram), the label goes too: it names a
        # figure the text does not carry.
        self.para: tuple[int, int, bool] | None = None  # (parts, length, holds a button)
        self.label: tuple[int, int] | None = None  # where such a label starts
        # A paragraph that is one code element ("<p><code>htpasswd -c passwords rbowen
        # </code></p>", as Apache httpd's manual shows a command) is a code block: how deep
        # in a <code> the text is, how many the paragraph holds, whether it says anything
        # outside them.
        self.code = 0
        self.para_codes = 0
        self.para_prose = False
        self.items = 0  # open <li>: a list item that is a name is no code block
        self.links = 0  # open <a>: a linked name is a reference ("See also: RequestFactory")
        # An anchored code block: where it starts in ``parts`` (and ``length`` there) from
        # its <div> on, while open; once closed, kept while it may be a signature (nothing
        # but a version note has come after it yet); ``version_note``: the <div>s open at
        # a version note that follows a signature.
        self.anchored: tuple[int, int, int] | None = None  # (parts, length, open <div>s)
        self.signature: tuple[int, int, str] | None = None
        self.version_note: int | None = None

    def _add(self, s: str) -> None:
        self.parts.append(s)
        self.length += len(s)

    def _break(self, n: int = 2) -> None:
        if self.term_open:
            n = 1
        if self.cell is not None:  # inside a table cell: the row is emitted as one line
            self.cell.append(" ")
            return
        if self.parts and self.parts[-1].endswith(" "):
            last = self.parts[-1].rstrip(" ")
            self.length -= len(self.parts[-1]) - len(last)
            self.parts[-1] = last
        tail = "".join(self.parts[-3:])
        have = len(tail) - len(tail.rstrip("\n"))
        if self.length and have < n:
            self._add("\n" * (n - have))

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "title" and (not self.skip or self.skipped == "head"):  # not an <svg>'s
            self.in_title = True
        if tag == "meta":
            m = dict(attrs)
            self.texinfo |= (m.get("name") or "").casefold() == "generator" \
                and (m.get("content") or "").casefold().startswith(_TEXINFO)
        if self.skip:  # inside what is left out: no structure either
            if tag == "body" and self.skipped == "head":  # HTML5 lets a page omit </head>
                self.skip = 0
            else:
                if tag == self.skipped:
                    self.skip += 1
                return
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        if self._left_out(tag, a, classes):
            self.skipped, self.skip = tag, 1
            if tag == "button" and self.para is not None:
                self.para = (*self.para[:2], True)
            return
        if self.label is not None and (tag == "p" or tag in _HEADINGS):
            self._drop_label()
        self._anchors(tag, a, classes)
        if tag == "p":
            self.para = (len(self.parts), self.length, False)
            self.para_codes, self.para_prose = 0, False
        if tag == "code" and not self.pre:
            self.code += 1
            self.para_codes += self.code == 1
        if tag == "li":
            self.items += 1
        if tag == "a":
            self.links += 1
        if tag == "pre":
            self.pre += 1
            self.pre_start = True
        in_note = bool(self.divs) and self.divs[-1]  # directly in an admonition
        if tag == "div":
            self.divs.append(bool(classes & _ADMONITION_DIVS))
        if tag == "table" and ("highlighttable" in classes or in_note):
            self.layout_tables += 1
        # an admonition's title: a heading in it, or in its layout table the header cell
        # (DocBook) or the element marked "title" (AsciiDoc's, in the icon cell)
        titles = in_note and (tag in _HEADINGS or self.layout_tables > 0 and (
            tag == "th" or "title" in classes))
        if tag == "dt" or classes & _TERM_CLASSES or titles:
            self.term_tags.append(tag)
        if not self.layout_tables and self._table_tag(tag, start=True):
            return
        if tag == "br" and self.term_tags:  # one term's names, on one line
            self._names()
            return
        if tag in _BLOCK:
            self._break(self._gap(tag))
        if tag == "dl":
            self.lists.append(len(self.descriptions))
            if self.descriptions:  # a list inside a description: its terms stand as before,
                self.descriptions[-1].follows = False  # and what follows it is not under them
        if tag == "dd":
            self._end_term()  # HTML lets a page leave a <dt> open
            self.descriptions.append(_Description(tuple(self.dt_terms)))
            self.dt_terms = []
        if tag == "dt":
            self._end_term()
            self.dt_from = len(self.parts)
        if tag in _HEADINGS and not titles:
            self.heading_level = int(tag[1]) if tag != "h" else self.numbered + 1
            self.heading_tag = tag
            self.heading_buf = []
            self.heading_start = self.length

    def _left_out(self, tag: str, a: dict[str, str | None], classes: set[str]) -> bool:
        """``tag`` (its attributes ``a``, its ``classes``) opens what is left out: what is
        not text (scripts, styles), page chrome, a heading's link to itself."""
        return bool(
            tag in _SKIP or classes & (_SKIP_CLASSES | _CHROME_CLASSES)
            or a.get("role") in _CHROME_ROLES or a.get("id") in _CHROME_IDS
            or (tag == "div" and a.get("id") in _CHROME_DIV_IDS)
            or (self.texinfo and classes & _TEXINFO_CHROME_CLASSES)
            or (self.node_api and (a.get("id") == "column2"
                                   or (tag == "header" and "header" in classes)))
            or (tag == "a" and _permalink(a, classes)))

    def _anchors(self, tag: str, a: dict[str, str | None], classes: set[str]) -> None:
        """At ``tag``: a signature waiting for what it describes becomes a term over the
        paragraph (or version note) ``tag`` opens, or stays a code block; an anchored code
        block and a link to itself are marked where they start."""
        if self.signature is not None:
            note = tag == "div" and bool(classes & _VERSION_NOTES)
            if tag == "p" or note:
                self._as_term(*self.signature)
                if note:
                    self.version_note = len(self.divs) + 1
            self.signature = None
        if tag == "div" and a.get("id") and self.anchored is None and not self.pre \
                and any(c.startswith("highlight-") for c in classes):
            self.anchored = (len(self.parts), self.length, len(self.divs) + 1)
        href = a.get("href") or ""
        if tag == "a" and href.startswith("#") and len(href) > 1 and a.get("id") == href[1:]:
            self.self_link = (len(self.parts), self.length, len(self.heading_buf))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if self.skip:
            if tag == self.skipped:
                self.skip -= 1
            return
        if tag == "div" and self.divs:
            if self.anchored is not None and self.anchored[2] == len(self.divs):
                n, length, _ = self.anchored
                self.anchored = None
                line = _signature("".join(self.parts[n:]))
                if line is not None:
                    self.signature = (n, length, line)
            if self.version_note == len(self.divs):  # the description goes on under it
                self.version_note = None
                self._trim_breaks()
                self.term_open = True
            self.divs.pop()
        if tag == "code" and self.code:
            self.code -= 1
        if tag == "li" and self.items:
            self.items -= 1
        if tag == "a" and self.links:
            self.links -= 1
        if tag == "a" and self.self_link is not None:
            self._drop_glyph(*self.self_link)
            self.self_link = None
        if tag == "p" and self.para is not None:
            n, length, button = self.para
            label = "".join(self.parts[n:]).strip()
            self.label = (n, length) if button and label.endswith(":") \
                and len(label) <= _LABEL_CHARS else None
            if self.para_codes == 1 and not self.para_prose \
                    and not self._in_description() \
                    and not self.term_tags and self.cell is None and not self.items:
                self._as_code(n, length)
            self.para = None
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag == "dl":  # a term with no description keeps nothing after the list close
            self.term_open = False
            self.dt_terms, self.dt_from = [], None
            opened = self.lists.pop() if self.lists else 0
            del self.descriptions[opened:]  # <dd> left open
        if tag == "dt":
            self._end_term()
        if tag == "dd" and self._in_description():
            self.descriptions.pop()
            if self.owed:  # its last paragraph ends as it did before
                self._break(2)
        if tag == "pre" and self._in_description():
            self.descriptions[-1].follows = False
            self.descriptions[-1].after_code = True
        if self.term_tags and self.term_tags[-1] == tag:
            self.term_tags.pop()
            self._break(1)
            self.term_open = True
            return
        if self.layout_tables:  # its rows and cells are lines and blocks
            if tag == "table":
                self.layout_tables -= 1
        elif self._table_tag(tag, start=False):
            return
        if self.heading_level is not None and tag == self.heading_tag:
            if tag != "h":
                self.numbered = self.heading_level
            text = " ".join("".join(self.heading_buf).split())
            if text:
                while self.path and self.path[-1][0] >= self.heading_level:
                    self.path.pop()
                self.path.append((self.heading_level, text))
                self.sections.append((self.heading_start, " > ".join(h for _, h in self.path)))
            self.heading_level = None
        if tag == "br" and self.term_tags:
            return
        if tag in _BLOCK:
            self._break(self._gap(tag))

    def _names(self) -> None:
        """A line break inside a term separates the names it gives one description
        (DocBook's "-j njobs<br/>--jobs=njobs", "c<br/>custom"): they stay on one line,
        "-j njobs, --jobs=njobs", as a man page prints them, so the term is one line."""
        if self.parts and self.parts[-1].strip() and not self.parts[-1].endswith("\n"):
            last = self.parts[-1].rstrip(" ")
            self.length -= len(self.parts[-1]) - len(last)
            self.parts[-1] = last
            self._add(", ")

    def _in_description(self) -> bool:
        """Inside a ``<dd>`` of the innermost open ``<dl>`` (not in a list nested in it)."""
        return len(self.descriptions) > (self.lists[-1] if self.lists else 0)

    def _gap(self, tag: str) -> int:
        """The line breaks at the start or end of block ``tag``: one after a line, two
        after a paragraph, but one between two paragraphs of a description (``<dd>``)."""
        if tag in _LINE_BLOCKS:
            return 1
        if self._in_description() and self.descriptions[-1].follows and not self.pre \
                and tag not in ("pre", "dl"):
            self.owed = True
            return 1
        return 2

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
            return
        if self.skip:
            return
        data = _PRIVATE_USE.sub("", data)  # icon fonts' glyphs say nothing in text
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
            # a space is kept between words, and between inline elements ("<code>attrelid
            # </code> <code>oid</code>"), judged by the text it follows: a table cell's own
            if self.cell is not None:
                at_start = not self.cell or self.cell[-1].endswith(" ")
            else:
                at_start = not self.length or bool(self.parts) \
                    and self.parts[-1].endswith((" ", "\n"))
            if at_start:
                data = data.lstrip(" ")
        elif self.cell is None:
            data = self._code(data)
        if not data:
            return
        if data.strip():
            if not self.pre:
                self.signature = None
            self.para_prose = self.para_prose or not self.code or self.links > 0
            self.term_open = False
            self.label = None  # the label has something to label
            self.owed = False
            if self._in_description() and not self.pre and self.cell is None:
                if self.descriptions[-1].after_code:
                    self._term_again()
                self.descriptions[-1].follows = True
        if self.cell is not None:
            self.cell.append(data)
            return
        if self.heading_level is not None:
            self.heading_buf.append(data)
        self._add(data)

    def close(self) -> None:
        super().close()
        if self.label is not None:  # a label at the end of the page labels nothing
            self._drop_label()

    def _end_term(self) -> None:
        """The open ``<dt>``'s text, one line, among the terms of the next ``<dd>``."""
        if self.dt_from is not None:
            self.dt_terms.append(" ".join("".join(self.parts[self.dt_from:]).split()))
            self.dt_from = None

    def _term_again(self) -> None:
        """The open ``<dd>``'s term, on the lines above the prose that follows a code block
        of its description: that prose describes the term too ("If sep is not given, …"
        under ``str.split(sep=None, maxsplit=-1)``, after its examples), and the text can
        only say so by placing it under the term. Not above a label such as "Note" (a term
        of its own), nor when the term would not read as one (``reads_as_term``)."""
        self.descriptions[-1].after_code = False
        term = self.descriptions[-1].term
        if not term or self.term_tags or not all(t and reads_as_term(t) for t in term):
            return
        self._add("\n".join(term) + "\n")

    def _as_code(self, n: int, length: int) -> None:
        """The paragraph written from ``parts[n]`` on (``length`` before it), which is all
        code, as a code block: each of its lines indented."""
        text = self._take_back(n, length)
        body = text.lstrip("\n")  # the break before the paragraph stays as it was
        self._add(text[: len(text) - len(body)] + "\n".join(
            _CODE_INDENT + ln.strip() for ln in body.split("\n") if ln.strip()))

    def _as_term(self, n: int, length: int, line: str) -> None:
        """The code block written from ``parts[n]`` on (``length`` before it), a signature,
        as ``line``, a term over what follows: one line break after it."""
        text = self._take_back(n, length)
        self._add(text[: len(text) - len(text.lstrip("\n"))] + line + "\n")
        self.term_open = True

    def _trim_breaks(self) -> None:
        """End the text with one line break, not a paragraph's two: what comes next goes on
        under the term (a version note's text, then the description)."""
        while self.parts and self.parts[-1].endswith("\n"):
            last = self.parts[-1].rstrip("\n")
            self.length -= len(self.parts[-1]) - len(last)
            if last:
                self.parts[-1] = last
                break
            self.parts.pop()
        self._add("\n")

    def _drop_glyph(self, n: int, length: int, h: int) -> None:
        """Take back the text of a link to itself written from ``parts[n]`` on (``length``
        before it; ``heading_buf[h]`` on) when it is a glyph, not words: Node.js's
        reference ends each of its 8,000 headings with a "#" that links the heading to
        itself (``<a class="mark" href="#fsmkdir…" id="fsmkdir…">#</a>``)."""
        text = "".join(self.parts[n:])
        if not text.strip() or any(ch.isalnum() for ch in text):
            return
        self._take_back(n, length)
        del self.heading_buf[h:]

    def _drop_label(self) -> None:
        """Take back the pending toggle label and the breaks after it."""
        n, length = self.label  # type: ignore[misc]
        self._take_back(n, length)
        self.label = None

    def _take_back(self, n: int, length: int) -> str:
        """The text written from ``parts[n]`` on (``length`` before it), taken back."""
        text = "".join(self.parts[n:])
        del self.parts[n:]
        self.length = length
        return text

    def _code(self, data: str) -> str:
        """Text inside ``<pre>``, each line indented (HTML drops the newline that opens it)."""
        if self.pre_start:
            data = data[1:] if data.startswith("\n") else data
            self.pre_start = False
        at_line_start = not self.length or "".join(self.parts[-2:]).endswith("\n")
        data = data.replace("\n", "\n" + _CODE_INDENT)
        return (_CODE_INDENT if at_line_start else "") + data

    def _table_tag(self, tag: str, start: bool) -> bool:
        """Tables become one line per row with each cell labelled by its column header
        ("Enterprise — P1: 15 minutes; P2: 1 hour."), so a row still says what its
        numbers are when it is read, retrieved or quoted alone. True if ``tag`` was handled.
        Nested tables are flattened into the cell that holds them.
        """
        if tag == "table":
            if start:
                self.table_depth += 1
                if self.table_depth == 1:
                    self._break(2)
                    self.headers, self.table_rows = None, 0
                return True
            self.table_depth = max(0, self.table_depth - 1)
            if self.table_depth == 0:
                if self.headers and not self.table_rows:  # a header row and nothing else
                    self._emit(" | ".join(self.headers))
                self.headers = None
                self._break(2)
            return True
        if self.table_depth != 1 or tag not in ("tr", "td", "th"):
            return False
        if tag == "tr":
            if start:
                self.row = []
            elif self.row:
                self._end_row(self.row)
                self.row = None
        elif start:
            self.cell, self.cell_header = [], tag == "th"
        elif self.cell is not None:
            if self.row is None:
                self.row = []
            self.row.append((" ".join("".join(self.cell).split()), self.cell_header))
            self.cell = None
        return True

    def _end_row(self, row: list[tuple[str, bool]]) -> None:
        cells = [c for c, _ in row]
        if all(h for _, h in row) and self.headers is None:
            self.headers = cells
            return
        if self.headers and len(self.headers) == len(cells):
            pairs = [f"{h}: {c}" for h, c in zip(self.headers[1:], cells[1:], strict=True) if c]
            line = f"{cells[0]} — " + "; ".join(pairs) if pairs else cells[0]
        else:
            line = " | ".join(c for c in cells if c)
        if line:
            self.table_rows += 1
            self._emit(line if line.endswith((".", "!", "?")) else line + ".")

    def _emit(self, line: str) -> None:
        self._break(1)
        self._add(line)
        self._break(1)


# Sphinx's viewcode extension writes each module's source as a page under ``_modules/``
# ("Source code for django.db.models.query") and an index of them. Sphinx's own search
# leaves these pages out, and so does the index: the pages people wrote document the same
# code (153 of python-django-doc's 692 pages, whose listings answered "How do I fetch
# related objects efficiently?" with Django's internals), and source files are indexed
# as code where they are wanted.
_VIEWCODE = re.compile(r'class="viewcode-(?:block|back)"|<h1>(?:Source code for |All modules '
                       r"for which code is available)")


# The pages Sphinx generates to find the others: the general index (``genindex.html``: every
# name the pages define, each with its links), a module index (``py-modindex.html``) and the
# search page, which works by script only. Sphinx's own search leaves them out, and so does
# the index: a list of names is no answer, and it crowds out the pages it links to (CMake's
# reference: its general index was 709 of 7,100 passages, one in ten, and the first stage's
# second for "How do I add a header search path to just one target?").
_SPHINX_FINDER = re.compile(r'<table\b[^>]*\bclass="indextable (genindextable|modindextable)"'
                            r'|<div id="(search-results)">')
_FINDER_KINDS = {"genindextable": "its general index", "modindextable": "a module index",
                 "search-results": "its search page"}


def sphinx_finder(raw: str) -> str | None:
    """What a page Sphinx generated to find the others is ("its general index"), or None
    for a page people wrote."""
    m = _SPHINX_FINDER.search(raw)
    return None if m is None else _FINDER_KINDS[m.group(1) or m.group(2)]


def _signature(block: str) -> str | None:
    """``block`` (a code block as written, indented) as one term line, when it is one call
    or a few (at most ``_SIGNATURE_LINES`` lines) and the line reads as a term: a call's
    lines joined by spaces, calls by commas ("file(WRITE <filename> <content>...),
    file(APPEND <filename> <content>...)", as a term line gives one description's names);
    None otherwise."""
    lines = [" ".join(ln.split()) for ln in block.split("\n") if ln.strip()]
    if not 0 < len(lines) <= _SIGNATURE_LINES or _CALL.match(lines[0]) is None \
            or not lines[-1].endswith(")"):
        return None
    calls = [lines[0]]
    for ln in lines[1:]:
        if _CALL.match(ln) and calls[-1].endswith(")"):
            calls.append(ln)
        else:
            calls[-1] += f" {ln}"
    line = ", ".join(calls)
    return line if reads_as_term(line) else None


def _permalink(a: dict[str, str | None], classes: set[str]) -> bool:
    """An ``<a>`` (its attributes ``a``) that links a heading to itself (or to where the
    page's contents list it)."""
    return (a.get("href") or "").startswith("#") and bool(
        classes & _PERMALINK_CLASSES
        or (a.get("title") or "").strip().casefold() in _PERMALINK_TITLES
        or (a.get("aria-hidden") or "").strip().casefold() == "true")


def source_listing(path: Path, raw: str) -> bool:
    """True for a page Sphinx's viewcode extension wrote (under a ``_modules`` folder)."""
    return "_modules" in path.parts and _VIEWCODE.search(raw) is not None


def sphinx_source_copy(path: Path) -> Path | None:
    """The page Sphinx built from ``path`` when ``path`` is the copy of a page's source it
    writes under ``_sources/`` for "Show Source" (``_sources/guide/intro.rst.txt`` beside
    ``guide/intro.html``): the same words as the page, a second time. None otherwise."""
    parts = path.parts
    if path.suffix != ".txt" or "_sources" not in parts[:-1]:
        return None
    at = len(parts) - 1 - parts[::-1].index("_sources")
    name = path.name.removesuffix(".txt")  # intro.rst (Sphinx >= 1.5) or intro
    stem = Path(name).stem if Path(name).suffix in (".rst", ".md", ".txt", ".ipynb") else name
    page = Path(*parts[:at], *parts[at + 1:-1], f"{stem}.html")
    return page if page.is_file() else None


def parse_html(raw: str, fallback_title: str) -> tuple[str, str, tuple[tuple[int, str], ...]]:
    """HTML to text with the stdlib parser; scripts, styles and <head> are dropped."""
    p = _HTMLText()
    p.node_api = _NODE_API.search(raw) is not None
    p.feed(raw)
    p.close()
    text = "".join(p.parts).rstrip()
    title = " ".join(p.title.split())
    if not title and p.sections:
        title = p.sections[0][1].split(" > ")[0]
    return text, title or fallback_title, tuple(p.sections)
