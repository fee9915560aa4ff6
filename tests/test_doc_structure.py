"""Documentation read as documentation: real pages as their projects ship them (Django's
Sphinx HTML, SQLite's man page as pandoc renders it, Docker's Markdown, Jansson's
reStructuredText). A term stays with its description and a sentence with the code block
it introduces, in the chunk and in the quote; every quote is an exact span."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, KeywordReranker, Passages

from mcp_rag.answer.extractive import extractive, pick, sentences_of, shown
from mcp_rag.ingest.chunking import BLOCK_CHARS, chunk_document, index_text, split_units
from mcp_rag.ingest.discover import SourceFile
from mcp_rag.ingest.html import parse_html
from mcp_rag.ingest.loaders import load_file
from mcp_rag.types import Chunk, Document, Hit

THIRD = REPO / "tests" / "fixtures" / "third_party"
DJANGO = THIRD / "django-docs" / "shortcuts.html"
MAN = THIRD / "man" / "sqlite3.1.html"
PG_DUMP = THIRD / "postgresql-docs" / "app-pgdump.html"
DOCKER = THIRD / "docker-docs" / "system_prune.md"
JANSSON = REPO / "tests" / "fixtures" / "documents" / "jansson-README.rst"
APACHE = THIRD / "apache-httpd" / "stopping.html"
LIBFFI = THIRD / "libffi-docs" / "The-Basics.html"
PIP_MYST = THIRD / "pip-docs" / "local-project-installs.md"
PIP_RST = THIRD / "pip-docs" / "upgrade-options.rst"
KILN_MKDOCS = REPO / "tests" / "fixtures" / "mkdocs-kiln" / "firing.md"


def load(path: Path) -> Document:
    (doc,) = load_file(SourceFile(path, path.parent)).docs
    return doc


def words(s: str) -> int:
    return len(s.split())


def units(doc: Document) -> list[str]:
    return [doc.text[u.start : u.end] for u in split_units(doc.text)]


def answer(doc: Document, question: str) -> tuple[str, list]:
    """The extractive answer over every chunk of ``doc``, ranked as a search would rank
    them (by the reranker, over each passage with its title and section, ties in reading
    order: the answer starts from the first, ``leading``); each quote checked as a span."""
    chunks = chunk_document(doc, words, target_tokens=200)
    ce = KeywordReranker()
    scores = ce.predict([(question, index_text(c)) for c in chunks])
    ranked = sorted(range(len(chunks)), key=lambda i: (-scores[i], i))
    hits = [Hit(chunks[i], float(scores[i])) for i in ranked]
    text, runs = extractive(question, hits, ce, budget=1)
    for r in runs:
        assert doc.text[r.start : r.end] == r.quote
        assert r.chunk.text[r.start - r.chunk.start : r.end - r.chunk.start] == r.quote
    return text, runs


def test_a_sphinx_signature_and_a_definition_term_stay_with_their_description():
    doc = load(DJANGO)
    got = units(doc)
    assert "¶" not in doc.text and "[source]" not in doc.text
    assert (
        "redirect(to, *args, permanent=False, **kwargs)\n"
        "Returns an HttpResponseRedirect to the appropriate URL for the arguments passed."
    ) in got
    assert "template_name\nThe full name of a template to use or sequence of template names." \
        in got
    for c in chunk_document(doc, words, target_tokens=40):
        lines = c.text.split("\n")
        assert lines[-1] not in ("template_name", "context", "status")  # never cut from its <dd>


@pytest.mark.parametrize(
    ("question", "quote"),
    [
        ("What does redirect() return?",
         "redirect(to, *args, permanent=False, **kwargs) Returns an HttpResponseRedirect to "
         "the appropriate URL for the arguments passed."),
        ("What is the template_name argument?",
         "template_name The full name of a template to use or sequence of template names."),
    ],
)
def test_a_quote_holds_the_signature_or_the_term(question, quote):
    text, runs = answer(load(DJANGO), question)
    assert text == f"{quote} [1]"


def test_a_sentence_ending_with_a_colon_is_quoted_with_its_code_block():
    doc = load(DJANGO)
    text, (run,) = answer(doc, "How do I redirect to a hardcoded URL?")
    assert run.quote == (
        "By passing a hardcoded URL to redirect to:\n\n"
        "    def my_view(request):\n"
        "        ...\n"
        "        return redirect('/some/url/')"
    )
    assert text == (
        "By passing a hardcoded URL to redirect to:\n"
        "    def my_view(request):\n"
        "        ...\n"
        "        return redirect('/some/url/') [1]"
    )


def test_a_man_page_option_is_quoted_with_its_description():
    doc = load(MAN)
    assert "-csv\nSet output mode to CSV (comma separated values)." in units(doc)
    text, (run,) = answer(doc, "Which option sets the output mode to CSV?")
    assert run.quote == "-csv\nSet output mode to CSV (comma separated values)."
    assert text == "-csv Set output mode to CSV (comma separated values). [1]"


def _quoted(doc: Document, sentence: str) -> list:
    """What ``pick`` quotes of ``doc`` (every chunk read) when ``sentence`` scores best and
    every other sentence far under it: the sentence and what it brings."""
    chunks = chunk_document(doc, words, target_tokens=200)
    cands, by_chunk = sentences_of([Hit(c, 1.0 - i / 1000) for i, c in enumerate(chunks)])
    scores = np.array([9.0 if c.text == sentence else -9.0 for c in cands])
    assert (scores > 0).sum() == 1
    runs = pick(cands, scores, by_chunk, budget=1, margin=4.0, min_score=0.0,
                corpus=Passages(chunks))
    for r in runs:
        assert doc.text[r.start : r.end] == r.quote
    return runs


@pytest.mark.parametrize(
    ("page", "sentence", "quote"),
    [
        # Django's Sphinx parameter list: terms and descriptions share a paragraph
        (DJANGO, "If a sequence is given, the first template that exists will be used.",
         "template_name\nThe full name of a template to use or sequence of template names. "
         "If a sequence is given, the first template that exists will be used."),
        (DJANGO, "Defaults to 'text/html'.",
         "content_type\nThe MIME type to use for the resulting document. "
         "Defaults to 'text/html'."),
        # SQLite's man page, as pandoc renders its options
        (MAN, "Default is '|'.",
         "-separator separator\nSet output field separator. Default is '|'."),
    ],
)
def test_a_later_sentence_of_an_options_description_is_quoted_with_the_option(
        page, sentence, quote):
    (run,) = _quoted(load(page), sentence)
    assert run.quote == quote
    assert run.score is not None  # one citation: the term, outside the budget, joins it


def test_a_later_paragraph_of_an_options_description_is_quoted_with_the_option():
    """pg_dump's reference page (DocBook): the description of `-j njobs` / `--jobs=njobs`
    is five paragraphs, longer than a passage; the fourth still reads under the option
    and is quoted with it, apart (not adjacent), the option read in a passage before."""
    doc = load(PG_DUMP)
    assert "\n\n-j njobs, --jobs=njobs\nRun the dump in parallel by dumping njobs" in doc.text
    assert "high enough to accommodate all connections.\nRequesting exclusive locks" \
        in doc.text
    sentence = "Without any precautions this would be a classic deadlock situation."
    term, run = _quoted(doc, sentence)
    assert (term.quote, run.quote) == ("-j njobs, --jobs=njobs", sentence)
    assert term.score is None and run.score is not None  # the term is outside the budget
    assert term.chunk.chunk_no < run.chunk.chunk_no  # read in an earlier passage
    # the next option's description is its own
    assert "\n\n--lock-wait-timeout=timeout\nDo not wait forever" in doc.text


def test_a_description_is_not_given_a_term_that_names_nothing_or_is_its_own():
    doc = load(DJANGO)
    # "context" is a word, not an option or identifier: the sentence is quoted alone
    (run,) = _quoted(doc, "By default, this is an empty dictionary.")
    assert run.quote == "By default, this is an empty dictionary."
    # a description's first sentence carries its term already, once
    (run,) = _quoted(doc, "template_name\nThe full name of a template to use or sequence "
                          "of template names.")
    assert run.quote.count("template_name") == 1


@pytest.mark.parametrize("linenos", ["inline", "table"])
def test_line_numbers_beside_code_are_not_read_as_code_or_a_table(linenos):
    """Sphinx's ``:linenos:`` and MkDocs' ``linenums`` number a code block's lines with
    Pygments, inline (CMake's guide: ``<span class="linenos">1</span>include(...)``) or
    as a table of two cells, the numbers and the code. The numbers are left out, so a
    command is quoted as written, and the table is read as the code block it is, not as a
    row "1 2 | make make install"."""
    pygments = pytest.importorskip("pygments")
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import BashLexer

    code = pygments.highlight("./configure --prefix=/opt\nmake\nmake install\n",
                              BashLexer(), HtmlFormatter(linenos=linenos))
    assert "linenos" in code  # the generator's own markup
    page = f"<h1>Build</h1><p>Build and install it with:</p>{code}<p>Then run it.</p>"
    text = parse_html(page, "build")[0]
    assert "Build and install it with:\n\n    ./configure --prefix=/opt\n    make\n" \
           "    make install\n\nThen run it." in text


def test_markdown_code_fences_are_blocks_their_sentence_introduces():
    doc = load(DOCKER)
    text, (run,) = answer(doc, "How do I prune volumes as well?")
    assert run.quote.startswith(
        "Use the --volumes\nflag when running the command to prune volumes as well:\n\n"
        "    $ docker system prune -a --volumes\n"
    )
    assert "\n    $ docker system prune -a --volumes\n" in text


def test_mkdocs_admonitions_and_tabs_read_as_prose_under_their_titles():
    """MkDocs' admonitions ("!!! warning", "??? info \"Title\"") and content tabs
    ('=== "Glaze"') indent their content four spaces; read as written it was a code block
    under a line of markers. Each reads as its title over its content, a term over its
    description; a fence inside a tab is a code block again; "!!! Do not ..." with nothing
    under it is a line of text; the syntax shown inside a fence stays code."""
    doc = load(KILN_MKDOCS)
    assert "Warning\nNever open the lid above 200 °C: the thermal shock cracks the ware" \
        in doc.text
    assert "Saving power\nFire at night on the off-peak tariff." in doc.text
    assert ("Glaze\nRun the glaze program and hold at peak for ten minutes:\n\n"
            "    kilnctl run --program glaze --cone 6 --hold 10\n") in doc.text
    assert "Note\nHolds longer than twenty minutes make glazes run." in doc.text
    assert "\n\nThe controller beeps when the firing ends." in doc.text  # no title asked
    assert "Error codes\nE1 means a thermocouple failure" in doc.text  # a /// block
    assert "\n!!! Do not fire wet pots\n" in doc.text
    assert "\n    !!! note\n        This block is an example of the syntax" in doc.text
    assert "!!! warning" not in doc.text and '===' not in doc.text and "```" not in doc.text
    assert ("Warning\nNever open the lid above 200 °C: the thermal shock cracks the ware "
            "and the elements.") in units(doc)
    text, (run,) = answer(doc, "How do I run the glaze program with a hold at peak?")
    assert "kilnctl run --program glaze --cone 6 --hold 10" in run.quote


def test_myst_admonitions_versions_roles_and_targets_read_as_sphinx_shows_them():
    """pip's documentation (MyST Markdown, as Debian's python3-pip ships it): "```{note}"
    and "```{caution}" are prose under their titles, "```{versionchanged} 21.3" reads
    "Changed in version 21.3", a label line "(editable-installs)=" is no text, and a
    directive that shows a command ("```{pip-cli}") stays a code block."""
    doc = load(PIP_MYST)
    assert "Caution\nIt is possible to see behaviour differences between regular installs" \
        in doc.text
    assert "Note\nThis is functionally the same as setuptools' develop mode" in doc.text
    assert "Changed in version 22.1\nThe --use-deprecated=out-of-tree-build option has " \
           "been removed." in doc.text
    assert "editable-installs" not in doc.text and "{" not in doc.text
    assert "in \"editable\" mode:\n\n    $ pip install -e path/to/SomeProject\n" in doc.text
    text, runs = answer(doc, "Which option was removed in version 22.1?")
    assert "Changed in version 22.1" in text
    from mcp_rag.ingest.markdown import parse_markdown
    # a note's argument starts its content, as in reStructuredText; an admonition's is
    # its title
    assert parse_markdown("```{warning} Never run it as root.\n```\n\n"
                          "```{admonition} Kiln safety\n:class: tip\nWear gloves.\n```\n",
                          "t")[0] == ("Warning\nNever run it as root.\n\n"
                                      "Kiln safety\nWear gloves.")
    assert parse_markdown("{pep}`508` and {ref}`the guide <a-label>`; `${name}` and "
                          "`GET /services/{id}` now return `CapAdd`.", "t")[0] == \
        "PEP 508 and the guide; ${name} and GET /services/{id} now return CapAdd."


def test_rst_admonitions_read_as_their_title_over_their_content():
    """pip's architecture notes (reStructuredText, as Debian's python3-pip ships them):
    ".. note::" and its content, indented four spaces, read as "Note" over the content,
    dedented, where they were a code block under a directive; the rest of the text is the
    file's own, markup and all, and sections still start at their titles. A directive
    shown in a literal block stays as written; ".. warning:: text" gives the text under its
    title, ".. versionadded:: 2.0" reads as Sphinx shows it."""
    from mcp_rag.ingest.rst import parse_rst

    doc = load(PIP_RST)
    assert ("Note\nThis section of the documentation needs to be updated per\n"
            ":ref:`Resolver changes 2020`.") in doc.text
    assert ".. note::" not in doc.text and "``--upgrade-strategy``" in doc.text
    assert ("Note\nThis section of the documentation needs to be updated per\n"
            ":ref:`Resolver changes 2020`.") in units(doc)
    for at, name in doc.sections:
        assert doc.text[at:].startswith(name.split(" > ")[-1]), name
    text, _, _ = parse_rst(
        "Kiln\n====\n\n.. warning:: Never open the lid above 200 C.\n\n"
        ".. versionadded:: 2.0\n   The ``--hold`` option.\n\nThe syntax::\n\n"
        "    .. note::\n       Shown, not read.\n", "k")
    assert text == ("Kiln\n====\n\nWarning\nNever open the lid above 200 C.\n\n"
                    "New in version 2.0\nThe ``--hold`` option.\n\nThe syntax::\n\n"
                    "    .. note::\n       Shown, not read.\n")
    # the sentence on the directive's line is a paragraph of its own, as written
    assert parse_rst(".. tip:: Use a venv.\n\n   It keeps things apart.\n", "k")[0] == \
        "Tip\nUse a venv.\n\nIt keeps things apart.\n"


def test_an_admonition_titled_by_a_heading_is_no_section():
    """DocBook writes a note as <div class="note"><h3 class="title">Note</h3> (456 of
    PostgreSQL 15's pages' admonitions), Apache httpd as <div class="warning"><h3>: read
    as headings, every option after pg_dump's first note was in the section "Options >
    Note". The heading is the admonition's title, a term over its text; the options stay
    in "Options"."""
    doc = load(PG_DUMP)
    names = [name for _, name in doc.sections]
    assert "Note" not in {n.split(" > ")[-1] for n in names} and "Options" in names
    assert "\nNote\nWhen -e is specified, pg_dump makes no attempt to dump any other " \
        "database objects" in doc.text
    at = doc.text.index("--exclude-table=pattern")  # an option after the notes
    assert max((o, n) for o, n in doc.sections if o <= at)[1] == "Options"
    apache = load(APACHE)
    assert not {n.split(" > ")[-1] for _, n in apache.sections} & {"Note", "Warning"}


@pytest.mark.parametrize("page", ["kiln.html", "kiln-tables.html"])
def test_a_docbook_admonition_reads_as_its_title_over_its_text(page):
    """DocBook XSL writes an admonition as a <div> titled by a heading, or, with icons,
    as a table of the icon and the title over the note (the Debian Reference's and
    Wireshark's guides): read as a table, the note was one row, "Tip." and its
    paragraphs and command run together on a line. Either way it reads as its title over
    its text, the command a code block, and no section starts."""
    doc = load(REPO / "tests" / "fixtures" / "docbook-kiln" / page)
    assert ("\n\nTip\nVent the room too: the smoke of burning binders is irritating. "
            "Start the extractor with:\n\n    $ fanctl start --speed high\n\n"
            "Close the plug once the kiln passes 600 °C.\n\nCone packs\nPlace a cone pack "
            "where you can see it through the spy hole.") in doc.text
    assert [name for _, name in doc.sections] == ["Kiln care", "Venting", "Cooling"]


def test_a_quoted_note_reads_as_its_title_over_the_quote():
    """Docker's reference writes a note as a quote under a bold label ("> **Note**", an
    empty quote line, the text); GitHub writes "> [!WARNING]". The label stood apart, a
    paragraph of one word ("[!WARNING]" as written); it is the title over the quote."""
    from mcp_rag.ingest.markdown import parse_markdown

    doc = load(THIRD / "docker-docs" / "secret_rm.md")
    assert ("\n\nNote\nThis is a cluster management command, and must be executed on a "
            "swarm\nmanager node.") in doc.text
    assert "\n\nWarning\nUnlike docker rm, this command does not ask for confirmation" \
        in doc.text
    text = parse_markdown("> [!TIP]\n> Prune weekly.\n\n> **Note** that bold is prose.\n",
                          "t")[0]
    assert text == "Tip\nPrune weekly.\n\nNote that bold is prose."


def test_an_asciidoc_admonition_reads_as_its_title_over_its_text():
    """AsciiDoc writes a note as a table of the title (in its icon cell) and the note, as
    git's manual does: read as a table, "NOTE: …" was the row "Note | …", and a warning's
    paragraph and command ran together on one line. Each reads as its title over its
    text, the command a code block (kiln-vent.html, made by asciidoc 10.2.0)."""
    doc = load(REPO / "tests" / "fixtures" / "asciidoc-kiln" / "kiln-vent.html")
    assert ("\n\nNote\nThe vent stays closed above 600 degrees whatever you ask.\n\n"
            "Warning\nNever open the vent during a glaze hold. To cancel an open request, "
            "run:\n\n    $ kiln vent --close\n\nThe controller logs") in doc.text
    text = parse_html('<div class="admonitionblock note"><table><tr><td class="icon">'
                      '<div class="title">Note</div></td><td class="content">Dry the pots '
                      'first.</td></tr></table></div>', "asciidoctor")[0]
    assert text == "Note\nDry the pots first."  # Asciidoctor's form


def test_markdown_code_spans_keep_their_placeholders():
    """`label=<key>=<value>` is a code span, not HTML: what it holds is the command."""
    doc = load(DOCKER)
    assert ("The label filter accepts two formats. One is the label=... (label=<key> or "
            "label=<key>=<value>),") in doc.text
    assert "\nuntil (<timestamp>) - only remove containers" in doc.text
    assert "Filtering (--filter)" in doc.text  # the anchor tag in the heading is gone
    text, runs = answer(doc, "Which filter removes only what was created before a timestamp?")
    assert "until (<timestamp>)" in text
    assert all(doc.text[r.start : r.end] == r.quote for r in runs)


def test_markdown_entities_tables_and_escapes_are_read_as_commonmark_renders_them():
    from mcp_rag.ingest.markdown import parse_markdown

    text, _, _ = parse_markdown(
        "| Option | Meaning |\n|---|---|\n| `--filter=<true|false>` | a &lt; b &amp; c |\n\n"
        "Use \\*args, `a_b_c` and **bold** [a link](http://x) ![logo](l.png) <b>x</b>.\n\n"
        "See the [install guide][inst] and [Docs].\n\n[inst]: https://a.b/c\n[docs]: /d\n", "t")
    assert text == ("Option | Meaning\n--filter=<true|false> | a < b & c\n\n"
                    "Use *args, a_b_c and bold a link logo x.\n\n"
                    "See the install guide and Docs.")


def test_a_sphinx_9_page_keeps_its_options_code_and_note():
    """Sphinx 9's HTML (tests/fixtures/sphinx-kiln/firing.html): an option term with its
    description, a literal block with the sentence that introduces it, a note's title."""
    doc = load(REPO / "tests" / "fixtures" / "sphinx-kiln" / "firing.html")
    assert "--cone <cone>\nThe pyrometric cone to fire to, for example 04 or 6." in units(doc)
    assert ("To start a bisque firing, run:\n\n    kiln fire --schedule bisque --cone 04"
            in doc.text)
    assert "\nNote\nA glaze firing needs the kiln vented for the first two hours." in doc.text
    text, runs = answer(doc, "Which option sets the cone to fire to?")
    assert text.startswith("--cone <cone> The pyrometric cone to fire to")
    assert all(doc.text[r.start : r.end] == r.quote for r in runs)


def test_restructuredtext_literal_blocks_are_quoted_with_their_sentence():
    doc = load(JANSSON)
    text, (run,) = answer(doc, "Which commands build it from a source tarball?")
    assert run.quote.endswith("::\n\n   $ ./configure\n   $ make\n   $ make install")
    assert text.endswith("\n   $ ./configure\n   $ make\n   $ make install [1]")


def test_code_is_cut_only_between_lines_and_the_bound_holds():
    code = "\n".join(f"    step_{i:03d}(argument_one, argument_two)  # comment" for i in range(40))
    text = f"Run the migration with:\n\n{code}\n\nThen restart."
    got = split_units(text)
    first = text[got[0].start : got[0].end]
    assert first.startswith("Run the migration with:\n\n    step_000(")
    assert len(first) <= len("Run the migration with:") + 2 + BLOCK_CHARS
    for u in got[1:-1]:  # the rest of the block: runs of whole lines
        assert text[u.start - 4 : u.start] == "    " and text[u.end] == "\n"
        assert text[u.start : u.end].startswith("step_")
    assert text[got[-1].start : got[-1].end] == "Then restart."


def test_a_paragraph_followed_by_code_keeps_it_without_a_colon():
    text = "Set the mode and run a query. The output is CSV.\n\n    .mode csv\n    SELECT 1;"
    assert [text[u.start : u.end] for u in split_units(text)] == [
        "Set the mode and run a query.",
        "The output is CSV.\n\n    .mode csv\n    SELECT 1;",
    ]


def test_a_paragraph_that_stops_mid_sentence_is_quoted_with_the_lines_that_finish_it():
    """SQLite's rowid page defines a rowid table by a sentence that runs on into a list
    (HTML's, without markers); it was quoted as '... in an SQLite schema that [1]'."""
    doc = load(THIRD / "sqlite-rowid" / "rowidtable.html")
    defined = ('A "rowid table" is any table in an SQLite schema that\n\n'
               "is not a virtual table, and\nis not a WITHOUT ROWID table.")
    assert defined in units(doc)
    text, (run,) = answer(doc, "What is a rowid table?")
    assert run.quote == defined
    assert text == ('A "rowid table" is any table in an SQLite schema that is not a virtual '
                    "table, and is not a WITHOUT ROWID table. [1]")
    # a heading that ends on a preposition is not a sentence the next one finishes
    text = "How to log a user in\n\nIf you have a user, call login().\n\nA URL is at\n\nhttps://x.org/"
    assert [text[u.start : u.end] for u in split_units(text)] == [
        "How to log a user in", "If you have a user, call login().",
        "A URL is at\n\nhttps://x.org/"]


def test_a_sentence_that_runs_on_past_its_code_block_is_quoted_whole():
    """PostgreSQL's numeric page writes "Thus, a column declared as" / NUMERIC(2, -3) /
    "will round values to the nearest thousand ...": one sentence with code in it, whose
    last part was quoted alone, without the declaration that answers."""
    doc = load(THIRD / "postgresql-docs" / "datatype-numeric.html")
    whole = ("Thus, a column declared as\n\n    NUMERIC(2, -3)\n\nwill round values to the "
             "nearest thousand and can store values between -99000 and 99000, inclusive.")
    assert whole in units(doc)
    text, (run,) = answer(doc, "How do I declare a column that rounds to the nearest thousand?")
    assert run.quote == whole
    assert "NUMERIC(2, -3)" in text and text.endswith("inclusive. [1]")
    # not after a sentence that ends with punctuation or a colon (what follows a block
    # that a colon introduces is as often a list's next item), nor into a paragraph that
    # opens with a name, is under three words or introduces a block of its own, nor after
    # a label ("Usage"); what the sentence that finishes it introduces comes with it
    text = ("It is set so.\n\n    x = 1\n\nwhich is the default value here.\n\n"
            "The options are:\n\n    -a\n\nfor all of the rows of a table.\n\n"
            "Set it with\n\n    y = 2\n\nos.environ holds the value of it.\n\n"
            "Set it with\n\n    y = 2\n\nor\n\n    z = 3\n\n"
            "Set it with\n\n    y = 2\n\nor read it from a file:\n\n    open(f)\n\n"
            "Lines of the form\n\n    #x VAR\n\nwill be replaced with either\n\n"
            "    #define VAR 0\n\n"
            "Usage\n\n    $ tool run\n\ncommand is one of the commands below.\n\n"
            "The end.")
    assert [text[u.start : u.end] for u in split_units(text)] == [
        "It is set so.\n\n    x = 1", "which is the default value here.",
        "The options are:\n\n    -a", "for all of the rows of a table.",
        "Set it with\n\n    y = 2", "os.environ holds the value of it.",
        "Set it with\n\n    y = 2", "or\n\n    z = 3",
        "Set it with\n\n    y = 2", "or read it from a file:\n\n    open(f)",
        "Lines of the form\n\n    #x VAR\n\nwill be replaced with either\n\n    #define VAR 0",
        "Usage\n\n    $ tool run", "command is one of the commands below.",
        "The end."]


def test_list_lines_and_prose_are_not_terms():
    text = "- first item\n- second item\nA heading like line\nIt is followed by prose."
    got = [text[u.start : u.end] for u in split_units(text)]
    assert got[:2] == ["- first item", "- second item"]
    assert got[2] == "A heading like line\nIt is followed by prose."


def test_shown_keeps_code_lines_and_joins_prose():
    assert shown("One\nwrapped line.") == "One wrapped line."
    assert shown("Do this:\n\n    a = 1\n\n    b = 2") == "Do this:\n    a = 1\n    b = 2"
    assert shown("Use:\n   make check") == "Use:\n   make check"
    assert shown("pip-list(1)\n    List installed packages.") == \
        "pip-list(1) List installed packages."  # a term's description is prose


def test_a_restructuredtext_definition_list_keeps_its_terms():
    doc = load(THIRD / "pip-man" / "index.rst")
    assert "pip-freeze(1)\n    Output installed packages in requirements format." in units(doc)
    text, (run,) = answer(doc, "Which command outputs installed packages in requirements format?")
    assert text == "pip-freeze(1) Output installed packages in requirements format. [1]"


def test_a_picked_sentence_brings_the_code_example_that_closes_its_paragraph():
    """Django's tutorial: the sentence that answers is followed by the command."""
    text = ("First we’ll need to create a user who can login to the admin site. Run the "
            "following command:\n\n    $ python manage.py createsuperuser\n\nEnter your "
            "desired username and press enter.")
    c = Chunk("t", 0, text, 0, len(text), title="Writing your first Django app, part 2",
              source="s")
    cands, by_chunk = sentences_of([Hit(c, 1.0)])
    assert [s.text.split("\n")[0] for s in cands] == [
        "First we’ll need to create a user who can login to the admin site.",
        "Run the following command:",
        "Enter your desired username and press enter.",
    ]
    (run,) = pick(cands, np.array([5.0, -6.0, -5.0]), by_chunk, budget=3, margin=4.0,
                  min_score=0.0)
    assert run.quote == text[: text.index("createsuperuser") + len("createsuperuser")]
    assert shown(run.quote).endswith("command:\n    $ python manage.py createsuperuser")


def test_console_tabs_and_icon_glyphs_do_not_come_between_a_sentence_and_its_command():
    """Django's tutorial puts Linux/macOS and Windows tabs, labelled with Font Awesome
    glyphs, between "Run the following command:" and the command."""
    doc = load(THIRD / "django-docs" / "tutorial02.html")
    assert not any("\ue000" <= ch <= "\uf8ff" for ch in doc.text)
    unit = next(u for u in units(doc) if u.startswith("Run the following command:\n"))
    assert "$ python manage.py createsuperuser" in unit
    text, runs = answer(doc, "How do I create a user who can login to the admin site?")
    assert "Run the following command:\n    $ python manage.py createsuperuser" in text


def test_a_sentence_that_leans_back_is_scored_with_the_one_it_leans_on():
    """PostgreSQL's CREATE INDEX: "This method ..." names CONCURRENTLY; which method it is
    only the sentence before says, so the cross-encoder reads both."""
    text = ("PostgreSQL supports building indexes without locking out writes. This method "
            "is invoked by specifying the CONCURRENTLY option of CREATE INDEX.")
    c = Chunk("p", 0, text, 0, len(text), title="CREATE INDEX", source="s")
    cands, by_chunk = sentences_of([Hit(c, 1.0)])
    seen: list[str] = []

    class Reader(KeywordReranker):
        def predict(self, pairs):
            seen.extend(p for _, p in pairs)
            return super().predict(pairs)

    text_, runs = extractive("How do I build an index without locking out writes?",
                             [Hit(c, 1.0)], Reader(), budget=3)
    assert text in seen  # "This method ..." read with its antecedent
    assert text_ == f"{text} [1]"
    assert len(cands) == 2 and by_chunk


def test_an_admonition_title_stays_with_what_it_says():
    """Sphinx's admonitions ("Philosophy", "Note") are a title paragraph over the text."""
    doc = load(THIRD / "django-docs" / "tutorial02.html")
    assert ("Philosophy\nA model is the single, definitive source of information about your "
            "data.") in units(doc)


def test_code_longer_than_a_chunk_is_chunked_between_lines():
    code = "\n".join(f"    call_{i:02d}(alpha, beta, gamma)" for i in range(30))
    doc = Document("c", "c.md", "C", f"Run all of these with:\n\n{code}\n\nDone.")
    chunks = chunk_document(doc, words, target_tokens=20, overlap=0)
    assert chunks[0].text.startswith("Run all of these with:")
    for c in chunks[1:]:  # whole lines
        assert c.text.startswith("call_") and doc.text[c.start - 4 : c.start] == "    "
        assert c.text.endswith(")") or c is chunks[-1] and c.text.endswith(")\n\nDone.")


def test_a_term_without_a_description_does_not_pull_the_next_heading_up():
    text, _, _ = parse_html("<dl><dt>-x</dt><dd></dd></dl><h2>Next</h2><p>Use:</p>"
                            "<pre>\na = 1\nb = 2\n</pre><p>After.</p>", "t")
    assert text == "-x\n\nNext\n\nUse:\n\n    a = 1\n    b = 2\n\nAfter."


def test_a_descriptions_paragraphs_stay_under_its_term_and_its_code_stands_apart():
    """A <dd>'s later paragraphs follow its first line by line (one paragraph for
    ``split_units``, under the term); a code block stands apart, and the prose after it
    stands under the term again; what comes after a list nested in it or after the list
    ends is a paragraph of its own."""
    text, _, _ = parse_html(
        "<dl><dt>--x</dt><dd><p>One.</p><p>Two.</p><pre>code\nmore</pre><p>Three.</p>"
        "<p>Four.</p></dd>"
        "<dt>--y</dt><dd><p>Y.</p><dl><dt>inner</dt><dd><p>I1.</p><p>I2.</p></dd></dl>"
        "<p>Y again.</p></dd></dl><p>After.</p><p>Next.</p>", "t")
    assert text == ("--x\nOne.\nTwo.\n\n    code\n    more\n\n--x\nThree.\nFour.\n\n"
                    "--y\nY.\n\ninner\nI1.\nI2.\n\nY again.\n\nAfter.\n\nNext.")
    assert [text[u.start:u.end] for u in split_units(text) if u.term_end][:2] == [
        "--x\nOne.", "--x\nThree."]
    # not above a label ("Note": a term of its own), nor a term too long to read as one
    text, _, _ = parse_html(
        "<dl><dt>f(a)</dt><dd><p>F.</p><pre>f(1)</pre><div class='admonition note'><p "
        "class='admonition-title'>Note</p><p>Careful.</p></div></dd>"
        f"<dt>{'g' * 130}</dt><dd><p>G.</p><pre>g()</pre><p>More.</p></dd></dl>", "t")
    assert "    f(1)\n\nNote\nCareful." in text and text.endswith("    g()\n\nMore.")
    # a term left open (HTML allows it) is not repeated, and never runs into the next
    text, _, _ = parse_html("<dl><dt>-a<dd><p>A.<pre>a</pre><p>More A.<dt>-b<dd><p>B."
                            "<pre>b</pre><p>More B.</dl>", "t")
    assert text == "-a\n\nA.\n\n    a\n\nMore A.\n-b\n\nB.\n\n    b\n\nMore B."
    # DocBook's names of one option, split by XHTML's <br />: one term line, as a man
    # page prints them; elsewhere <br /> is a line break, not a paragraph's
    for names in ("-j n", "--jobs=n"), ("c", "custom"):
        text, _, _ = parse_html(f'<dl><dt><span class="term">{names[0]}<br /></span><span '
                                f'class="term">{names[1]}</span></dt><dd><p>Run it.</p></dd>'
                                "</dl><p>a<br/>b<br>c</p><p>d</p>", "t")
        assert text == f"{names[0]}, {names[1]}\nRun it.\n\na\nb\nc\n\nd"
        assert text[: split_units(text)[0].end] == f"{names[0]}, {names[1]}\nRun it."
    # a <dd> left open (HTML allows it) ends with its list
    text, _, _ = parse_html("<dl><dt>-a<dd><p>A one.<p>A two.</dl><p>After.<p>Next.", "t")
    assert text.endswith("A one.\nA two.\n\nAfter.\n\nNext.")


@pytest.mark.parametrize(
    ("page", "unit"),
    [
        # Django's Sphinx HTML: the note after require_http_methods' example
        (THIRD / "django-docs" / "http-decorators.html",
         "require_http_methods(request_method_list)\n"
         "Note that request methods should be in uppercase."),
        # PostgreSQL's DocBook: libpq's function described on after its prototype
        (THIRD / "postgresql-docs" / "libpq-single-row-mode.html",
         "PQsetSingleRowMode\nThis function can only be called immediately after "
         "PQsendQuery or one of its sibling functions, before any other operation on the "
         "connection such as PQconsumeInput or PQgetResult."),
    ],
)
def test_a_description_that_goes_on_after_its_code_is_quoted_with_its_term(page, unit):
    """Real pages as shipped: the prose after a code block of a <dd> stands under the
    term again, so it is chunked, read and quoted with the function it describes."""
    doc = load(page)
    assert unit in units(doc)
    (run,) = _quoted(doc, unit)
    assert run.quote == unit
    assert any(unit in c.text for c in chunk_document(doc, words, target_tokens=200))


ASCIIDOC = REPO / "tests" / "fixtures" / "asciidoc-kiln" / "kiln-fire.html"


def test_an_asciidoc_man_page_keeps_its_synopsis_options_and_listings():
    """AsciiDoc's HTML (tests/fixtures/asciidoc-kiln, as `asciidoc -d manpage` makes it):
    the SYNOPSIS stays code, an option (two of them, `-n` and `--dry-run`, over one
    description) stays with its description, "...with:" with its listing, a later
    paragraph of a description with its option."""
    doc = load(ASCIIDOC)
    assert ("SYNOPSIS\n\n    kiln fire [--cone <cone>] [--hold <minutes>] [--dry-run] <batch>…\n"
            "    kiln fire --resume <log>") in doc.text
    assert "-n\n--dry-run\nShow the firing schedule without heating the kiln." in units(doc)
    text, (run,) = answer(doc, "How do I fire a batch that cracked again from where it stopped?")
    assert run.quote.endswith("stopped with:\n\n    $ kiln fire --resume firing.log")
    assert text.endswith("stopped with:\n    $ kiln fire --resume firing.log [1]")
    text, _ = answer(doc, "Which option shows the firing schedule without heating?")
    assert text == "-n --dry-run Show the firing schedule without heating the kiln. [1]"
    # an option described in three paragraphs (AsciiDoc's "+" continuation, as git's
    # manual writes them): the third is quoted with the option
    assert ("--vent <when>\nOpen the vent at the given stage: early, late or never.\n"
            "Venting early lets the steam out") in doc.text
    text, _ = answer(doc, "When does glazed ware craze?")
    assert text == ("--vent <when> [1] Glazed ware crazes when the vent stays shut above 600 "
                    "degrees. [2]")


@pytest.mark.parametrize(("page", "kept", "chrome"), [
    # Sphinx 9, alabaster: the sidebar (navigation, related topics) and the footer
    (REPO / "tests" / "fixtures" / "sphinx-kiln" / "firing.html",
     "--cone <cone>", ["Related Topics", "Powered by Sphinx", "Previous: Kiln"]),
    # Django's own Sphinx theme: the header bar, the sidebar's contents and search box,
    # the titles of the topics before and after, the date
    (DJANGO, "Django shortcut functions",
     ["Home | Table of contents", "« previous | up | next »", "Previous topic",
      "File Uploads", "Quick search", "Last update"]),
    # DocBook XSL (PostgreSQL): the Prev | Up | Home | Next bars, with the titles of the
    # pages before and after (CLOSE, COMMENT)
    (THIRD / "postgresql-docs" / "sql-cluster.html",
     "CLUSTER — cluster a table according to an index", ["Prev | Up", "CLOSE", "COMMENT"]),
    # SQLite: what its pages mark "nosearch" (the menu, the tagline), and the "hide"
    # buttons of its syntax diagrams
    (THIRD / "sqlite-docs" / "lang_vacuum.html", "The VACUUM command rebuilds",
     ["Small. Fast. Reliable.", "Purchase", "Search Documentation", "vacuum-stmt: hide"]),
    # AsciiDoc: the footer's "Last updated"
    (ASCIIDOC, "Fire a batch of pots in the kiln", ["Last updated"]),
    # Apache httpd's manual: the header menu, the breadcrumb, the lists of the page's
    # languages, the floating contents box with its "See also", the footer
    (APACHE, "Stopping and Restarting Apache HTTP Server\n\nThis document covers",
     ["Modules | Directives", "Apache > HTTP Server", "Available Languages", "See also",
      "Copyright"]),
    # MkDocs Material (this project's own docs): the "Skip to content" link, the header,
    # the navigation, the search box, the footer
    (REPO / "tests" / "fixtures" / "mkdocs-material" / "security.html",
     "Security and reliability\n\nWhat is guaranteed", ["Skip to content", "Made with",
                                                         "Initializing search"]),
])
def test_page_chrome_is_left_out(page, kept, chrome):
    doc = load(page)
    assert kept in doc.text
    assert not [c for c in chrome if c in doc.text]


def test_a_table_cell_keeps_the_space_between_its_inline_elements():
    """PostgreSQL's catalog tables write a column's name and type as two <code> elements
    a space apart in one cell; the space stays, as it does outside a table (it was lost:
    "attrelidoid", one word to BM25, and "a AND b" read "aAND b")."""
    doc = load(THIRD / "postgresql-docs" / "catalog-pg-am.html")
    assert "\noid oid Row identifier.\n" in doc.text
    assert ("amhandler regproc (references pg_proc.oid) OID of a handler function"
            in doc.text)
    raw = ("<table><tr><td><b>a</b> <i>AND</i> b <code>x</code></td><td> y </td></tr>"
           "</table><p><code>c</code> <code>d</code></p>")
    text, _, _ = parse_html(f"<html><body>{raw}</body></html>", "page")
    assert text == "a AND b x | y.\n\nc d"


def test_what_is_left_out_ends_where_its_element_ends():
    """Chrome nested in chrome, and structure inside it (a table, a heading), leave
    nothing behind and take nothing after them."""
    raw = ("<html><body><div class='navheader'><table><tr><th>Up</th></tr></table>"
           "<div><div>menu</div></div>tagline</div>"
           "<nav><nav>inner</nav>outer</nav><h1>Title</h1><div role='navigation'><h2>Contents"
           "</h2></div><p>Body <button>hide</button>text.</p><table><tr><th>Plan</th>"
           "<th>Price</th></tr><tr><td>Pro</td><td>9</td></tr></table>"
           "<div id='footer'><div>Last updated</div></div><p>After.</p></body></html>")
    text, _, sections = parse_html(raw, "page")
    assert text == "Title\n\nBody text.\n\nPro — Price: 9.\n\nAfter."
    assert [s for _, s in sections] == ["Title"]


def test_a_diagram_behind_a_show_hide_button_leaves_no_label():
    """SQLite's pages put each syntax diagram (an SVG) behind a "hide"/"show" button under
    a label ("savepoint-stmt:"); the diagram is not text, so its label is left out too. A
    label over text (an example behind a button) stays with it."""
    doc = load(THIRD / "sqlite-docs" / "lang_savepoint.html")
    assert not [x for x in ("savepoint-stmt:", "release-stmt:", "rollback-stmt:")
                if x in doc.text]
    assert doc.text.startswith("1. Syntax\n\n2. Savepoints\n\nSAVEPOINTs are a method")
    raw = ("<html><body><h1>Dump</h1><p><b>dump-stmt:</b><button>hide</button></p>"
           "<div class='imgcontainer'><svg><text>DUMP</text></svg></div>"
           "<p><b>Example:</b> <button>show</button></p><div style='display:none'>"
           "<pre>.dump</pre></div><p>Writes SQL text.</p></body></html>")
    assert parse_html(raw, "page")[0] == "Dump\n\nExample:\n\n    .dump\n\nWrites SQL text."


def test_a_headings_link_to_itself_is_left_out():
    """Apache httpd's manual ends each heading with a "¶" link to itself (1,499 of them in
    its 244 English pages); it was read into the text and into every section's name
    ("Graceful Restart ¶"). Docusaurus marks such a link "hash-link", others only by its
    title; a link to another page, or one that says something, stays."""
    doc = load(APACHE)
    assert "¶" not in doc.text
    assert [p for _, p in doc.sections][-2:] == [
        "Stopping and Restarting Apache HTTP Server > Restart Now",
        "Stopping and Restarting Apache HTTP Server > Graceful Stop"]
    assert "\n\nGraceful Restart\n\nSignal: USR1\n" in doc.text
    raw = ("<html><body><h1 id='a'>Alpha<a class='hash-link' href='#a'>#</a></h1>"
           "<h2 id='b'>Beta <a href='#b' title='Link to this heading'>§</a></h2>"
           "<p>See <a class='permalink' href='other.html#b'>Gamma</a> and "
           "<a href='#b'>Beta</a>.</p></body></html>")
    text, _, sections = parse_html(raw, "page")
    assert text == "Alpha\n\nBeta\n\nSee Gamma and Beta."
    assert [s for _, s in sections] == ["Alpha", "Alpha > Beta"]


NODE = THIRD / "nodejs-docs" / "string_decoder.html"


def test_nodes_sidebar_header_and_heading_marks_are_left_out():
    """Node.js's API reference (its string_decoder page as Debian's nodejs-doc ships it)
    opens each page with a sidebar of every module and a header of pickers (the index of
    modules again, other versions, "View as JSON"), and ends each heading with a "#" that
    links it to itself; they were read into its text and every section's name
    ("stringDecoder.write(buffer)#"). Its own contents list stays, as every manual's does.
    The sidebar is left out only on a page of that template."""
    doc = load(NODE)
    assert doc.text.startswith("Table of contents\n\nString decoder\n")
    assert "#" not in "".join(p for _, p in doc.sections)
    assert [p for _, p in doc.sections][-1] == \
        "String decoder > Class: StringDecoder > stringDecoder.write(buffer)"
    assert not [c for c in ("Assertion testing", "Other versions", "View as JSON",
                            "Node.js v18.20.4 documentation") if c in doc.text]
    raw = NODE.read_text(encoding="utf-8").replace('<div id="apicontent"', '<div id="main"')
    assert "Assertion testing" in parse_html(raw, "page")[0]  # another site's "column2"
    # a link to itself that says something stays; one that is a glyph goes
    text, _, sections = parse_html(
        "<h2>Beta<a class='mark' href='#b' id='b'>#</a></h2><p>See "
        "<a href='#c' id='c'>Gamma</a> and <a href='#d' id='d'>(1)</a>.</p>", "page")
    assert text == "Beta\n\nSee Gamma and (1)."
    assert [s for _, s in sections] == ["Beta"]


def test_texinfos_navigation_and_links_to_definitions_are_left_out():
    """Texinfo (the GNU manuals; libffi's, as Debian ships it) puts a "Next: …, Up: …" bar
    above and below every node and a "¶" after every definition's signature; both are
    navigation, not the page. A function's signature is quoted with the sentence under it.
    Only on a page Texinfo made: another page's "header" may hold its title."""
    doc = load(LIBFFI)
    assert "Next:" not in doc.text and "Up:" not in doc.text and "¶" not in doc.text
    assert doc.text.startswith("2.1 The Basics\n\nlibffi assumes")
    sig = ("Function: ffi_status ffi_prep_cif (ffi_cif *cif, ffi_abi abi, unsigned int "
           "nargs, ffi_type *rtype, ffi_type **argtypes)")
    assert f"{sig}\nThis initializes cif according to the given parameters." in units(doc)
    raw = ("<html><body><div class='header'><p>Kiln Works</p></div><ul class='section-toc'>"
           "<li>Firing</li></ul></body></html>")
    assert parse_html(raw, "page")[0] == "Kiln Works\n\nFiring"


def test_a_link_within_the_page_hidden_from_screen_readers_is_left_out():
    """FFmpeg's manual (Texinfo with its own Bootstrap templates) ends every heading with
    a "#" link to itself and a "TOC" link to its line in the contents, both marked
    ``aria-hidden``; they were read into each of its 5,000 sections' names ("8.92
    loudnorm# TOC"). A hidden link to another page, or a shown one, stays."""
    raw = ("<html><body><h3 class='section'>8.92 loudnorm<span class='pull-right'><a "
           "class='anchor hidden-xs' href='#loudnorm' aria-hidden='true'>#</a> <a class="
           "'anchor hidden-xs'href='#toc-loudnorm' aria-hidden='true'>TOC</a></span></h3>"
           "<p>EBU R128 loudness normalization. See <a href='#ebur128'>ebur128</a> and <a "
           "href='filters.html' aria-hidden='true'>filters</a>.</p></body></html>")
    text, _, sections = parse_html(raw, "page")
    assert text == "8.92 loudnorm\n\nEBU R128 loudness normalization. See ebur128 and filters."
    assert [s for _, s in sections] == ["8.92 loudnorm"]


def test_a_paragraph_that_is_all_code_is_a_code_block():
    """Apache httpd's manual shows a command as a paragraph of code (``<div class=
    "example"><p><code>``), not ``<pre>``: it is a code block, so the sentence that
    introduces it is quoted with it. A list item, a description or a link that is only a
    name stays what it was."""
    doc = load(APACHE)
    assert ("To send a signal to the parent you should issue a command such as:\n\n"
            "    kill -TERM `cat /usr/local/apache2/logs/httpd.pid`") in units(doc)
    raw = ("<html><body><p>Type:</p><p><code>htpasswd -c pw rbowen<br>New password: x"
           "</code></p><ul><li><p><code>UNLISTEN</code></p></li></ul><p><a href='x.html'>"
           "<code>RequestFactory</code></a></p><p>Use <code>ab</code> here.</p>"
           "<dl><dt>-k</dt><dd><p><code>apachectl -k graceful</code></p></dd></dl>"
           "<div>Run it:<p><code>ab -n 100 http://localhost/</code></p></div>"
           "</body></html>")
    assert parse_html(raw, "page")[0] == (
        "Type:\n\n    htpasswd -c pw rbowen\n    New password: x\n\nUNLISTEN\n\n"
        "RequestFactory\n\nUse ab here.\n\n-k\napachectl -k graceful\n\nRun it:\n\n"
        "    ab -n 100 http://localhost/")


def test_a_page_without_its_closing_head_tag_is_read():
    """HTML5 lets a page leave out </head> (and more); an <svg>'s <title> names the
    picture, not the page."""
    raw = ("<!doctype html><html><head><title>Runbook</title><meta charset=utf-8>"
           "<body><svg><title>diagram</title></svg><p>Restart the worker.</p></body></html>")
    assert parse_html(raw, "page") == ("Restart the worker.", "Runbook", ())


def test_an_unnumbered_h_heading_heads_its_section():
    """XHTML 2's ``<h>`` is a heading a level below the numbered one before it: SQLite's
    pragma page (as Debian ships it) heads each of its PRAGMAs with one, hidden, for its
    own search. Each PRAGMA is a section of its own, and its name no longer ends the
    previous PRAGMA's last paragraph ("... any previously set busy handler. PRAGMA
    cache_size")."""
    doc = load(THIRD / "sqlite-pragma" / "pragma.html")
    paths = [p for _, p in doc.sections]
    assert "PRAGMA Statements > List Of PRAGMAs > PRAGMA cache_size" in paths
    assert sum(p.startswith("PRAGMA Statements > List Of PRAGMAs > PRAGMA ") for p in paths) == 74
    at = {p: s for s, p in doc.sections}["PRAGMA Statements > List Of PRAGMAs > PRAGMA cache_size"]
    assert doc.text[at:].startswith("PRAGMA cache_size\n\nPRAGMA schema.cache_size;\n")
    assert doc.text[:at].endswith("overwriting any previously set busy handler.\n\n")
    # consecutive <h> are siblings; a numbered heading closes them
    raw = ("<html><body><h1>Pragmas</h1><h2>List</h2><h style='display:none'> PRAGMA a</h>"
           "<p>Sets a.</p><h>PRAGMA b</h><p>Sets b.</p><h2>Notes</h2><p>Done.</p></body></html>")
    assert [p for _, p in parse_html(raw, "page")[2]] == [
        "Pragmas", "Pragmas > List", "Pragmas > List > PRAGMA a", "Pragmas > List > PRAGMA b",
        "Pragmas > Notes"]


CMAKE_LIST = THIRD / "cmake-docs" / "command" / "list.html"


@pytest.mark.parametrize(
    ("sentence", "quote"),
    [
        ("list(APPEND <list> [<element> ...])\nAppends elements to the list.",
         "list(APPEND <list> [<element> ...])\nAppends elements to the list."),
        # the description's later sentence, and one after a version note, keep the call
        ("If no variable named <list> exists in the current scope its value is treated as "
         "empty and the elements are appended to that empty list.",
         "list(APPEND <list> [<element> ...])\nAppends elements to the list. If no variable "
         "named <list> exists in the current scope its value is treated as empty and the "
         "elements are appended to that empty list."),
        ("Returns a string joining all list's elements using the glue string.",
         "list(JOIN <list> <glue> <output variable>)\nNew in version 3.12.\nReturns a string "
         "joining all list's elements using the glue string."),
    ],
)
def test_an_anchored_signature_is_the_term_over_its_description(sentence, quote):
    """CMake's reference (its list() page as Debian's cmake-doc ships it) heads each
    sub-command with a code block Sphinx anchors, one call: it stands as a term over the
    paragraph after it, and never closes the paragraph before it as its code example
    ("… appended to that empty list." is not quoted with list(FILTER …))."""
    doc = load(CMAKE_LIST)
    got = units(doc)
    assert "list(APPEND <list> [<element> ...])\nAppends elements to the list." in got
    assert not any("list(FILTER" in u for u in got if "empty list." in u)
    runs = _quoted(doc, sentence)
    assert "\n".join(r.quote for r in runs).replace("\n", " ") == " ".join(quote.split())


def test_a_page_named_in_capitals_is_quoted_with_its_name():
    """CMake's reference gives each property a page headed by its name alone, in capitals
    (prop_test/ENVIRONMENT.html, as Debian's cmake-doc ships it): "Specify environment
    variables that should be defined for running a test." never says ENVIRONMENT, the
    property to set; the quote comes with the page's heading. Not a man page's sections
    ("DESCRIPTION" is no page's name), nor when the quote writes the name already."""
    from mcp_rag.answer.extractive import page_name

    doc = load(THIRD / "cmake-docs" / "prop_test" / "ENVIRONMENT.html")
    runs = _quoted(doc, "Specify environment variables that should be defined for running a "
                        "test.")
    assert [r.quote for r in runs] == [
        "ENVIRONMENT",
        "Specify environment variables that should be defined for running a test."]
    assert runs[0].score is None
    man = chunk_document(load(MAN), words, target_tokens=200)
    assert {c.section for c in man} >= {"NAME", "DESCRIPTION"}
    assert {page_name(c) for c in man} <= {"SQLITE3", None}  # its title, not its sections
    named = _quoted(doc, "Those environment variables will be defined while running the test.")
    assert [r.quote for r in named][0] == "ENVIRONMENT"
    said = Document("d", "s", "ENVIRONMENT", "ENVIRONMENT\n\nThe ENVIRONMENT property lists "
                    "the variables a test runs with.", sections=((0, "ENVIRONMENT"),))
    assert [r.quote for r in _quoted(said, "The ENVIRONMENT property lists the variables a "
                                           "test runs with.")] == [
        "The ENVIRONMENT property lists the variables a test runs with."]
