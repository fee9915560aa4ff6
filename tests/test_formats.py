"""Every format through a real file the test writes: loaded with exact spans, indexed, found
through a real MCP client session, cited at the right place; damaged files skipped with
their reason while the rest of the run goes on."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest
from helpers import REPO, KeywordEmbedder
from mcp import Client

from mcp_rag.errors import LoaderError, NotIndexed
from mcp_rag.index.update import index_paths
from mcp_rag.ingest.code import parse_code
from mcp_rag.ingest.discover import SourceFile, discover
from mcp_rag.ingest.loaders import load_file
from mcp_rag.ingest.rst import parse_rst
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.serve.server import build_server


def write_docx(path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Quarterly report", 1)
    d.add_paragraph("Revenue grew twelve percent thanks to the wombat subscription line.")
    d.add_heading("Risks", 1)
    d.add_paragraph("Supplier delays in Shenzhen may slow the platypus rollout.")
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text, t.cell(0, 1).text = "Region", "Sales"
    t.cell(1, 0).text, t.cell(1, 1).text = "EMEA", "1.1M"
    d.save(path)


def write_pptx(path: Path) -> None:
    from pptx import Presentation

    p = Presentation()
    s = p.slides.add_slide(p.slide_layouts[1])
    s.shapes.title.text = "Roadmap"
    s.placeholders[1].text = "Launch the numbat API in May"
    s = p.slides.add_slide(p.slide_layouts[1])
    s.shapes.title.text = "Hiring"
    s.placeholders[1].text = "Two engineers for the echidna team"
    p.save(path)


def write_xlsx(path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Inventory"
    ws.append(["Item", "Count"])
    ws.append(["Bilby plush toy", 42])
    wb.save(path)


def write_epub(path: Path) -> None:
    from ebooklib import epub

    b = epub.EpubBook()
    b.set_identifier("guide-1")
    b.set_title("Field Guide")
    b.set_language("en")
    c1 = epub.EpubHtml(title="Marsupials", file_name="c1.xhtml", lang="en")
    c1.content = "<h1>Marsupials</h1><p>Quokkas carry their young in a pouch.</p>"
    c2 = epub.EpubHtml(title="Birds", file_name="c2.xhtml", lang="en")
    c2.content = "<h1>Birds</h1><p>The cassowary guards its eggs.</p>"
    for c in (c1, c2):
        b.add_item(c)
    b.toc = (c1, c2)
    b.spine = ["nav", c1, c2]
    b.add_item(epub.EpubNcx())
    b.add_item(epub.EpubNav())
    epub.write_epub(str(path), b)


def write_ipynb(path: Path) -> None:
    path.write_text(json.dumps({
        "cells": [
            {"cell_type": "markdown", "metadata": {},
             "source": ["# Analysis\n", "We fit a dugong population model."]},
            {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
             "source": ["import numpy as np\n", "print(np.mean([1, 2]))"]},
        ],
        "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5,
    }))


def write_eml(path: Path) -> None:
    m = EmailMessage()
    m["Subject"] = "Kookaburra survey results"
    m["From"] = "Ana <ana@example.com>"
    m["To"] = "Bo <bo@example.com>"
    m["Date"] = "Mon, 2 Nov 2026 10:00:00 +0000"
    m.set_content("The survey counted 312 kookaburras on the west ridge.")
    m.add_alternative("<p>The survey counted <b>312</b> kookaburras on the west ridge.</p>",
                      subtype="html")
    m.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="map.pdf")
    path.write_bytes(bytes(m))


RST = """\
==========
Ops Manual
==========

How this service is run.

Deploying
=========

Run the galah deploy script.

Rollback
--------

Revert with the cockatoo command.
"""

PY = '''\
"""Tools for counting marsupials."""
import math


@cache
def wallaby_count(area):
    return math.floor(area * 3)


class Census:
    """A census of one reserve."""

    def tally_possums(self, n):
        return n + 1
'''

TS = """\
export function addTaipan(a: number, b: number): number { return a + b; }
export const dingoScale = (x: number) => x * 2;
interface Shape { area(): number }
class Circle implements Shape {
  area() { return 3.14; }
}
"""

GO = """\
package main

type Server struct{}

func (s *Server) StartEmu() error { return nil }
"""

RS = """\
struct Point { x: f64 }

impl Point {
    fn norm_goanna(&self) -> f64 { self.x.abs() }
}
"""

JAVA = """\
public class Kennel {
    public int countDingoes() { return 3; }
}
"""

C = """\
#include <stdio.h>

static int add_bandicoot(int a, int b) { return a + b; }
"""

CPP = """\
namespace zoo {
class Koala {
 public:
  int sleep_hours() { return 20; }
};
}
"""

# file, how it is written, format, a phrase only it holds, the section it sits in
FILES = [
    ("report.docx", write_docx, "docx", "wombat subscription", "Quarterly report"),
    ("deck.pptx", write_pptx, "pptx", "echidna team", "Slide 2: Hiring"),
    ("stock.xlsx", write_xlsx, "xlsx", "Bilby plush toy", "Inventory"),
    ("guide.epub", write_epub, "epub", "cassowary guards", "Birds"),
    ("analysis.ipynb", write_ipynb, "ipynb", "dugong population model", "Analysis"),
    ("survey.eml", write_eml, "eml", "312 kookaburras", ""),
    ("ops.rst", lambda p: p.write_text(RST), "rst", "cockatoo command",
     "Ops Manual > Deploying > Rollback"),
    ("census.py", lambda p: p.write_text(PY), "code", "tally_possums", "Census.tally_possums"),
    ("shapes.ts", lambda p: p.write_text(TS), "code", "dingoScale", "dingoScale"),
    ("server.go", lambda p: p.write_text(GO), "code", "StartEmu", "Server.StartEmu"),
    ("point.rs", lambda p: p.write_text(RS), "code", "norm_goanna", "Point.norm_goanna"),
    ("Kennel.java", lambda p: p.write_text(JAVA), "code", "countDingoes",
     "Kennel.countDingoes"),
    ("math.c", lambda p: p.write_text(C), "code", "add_bandicoot", "add_bandicoot"),
    ("zoo.cpp", lambda p: p.write_text(CPP), "code", "sleep_hours", "zoo.Koala.sleep_hours"),
]
DAMAGED = ["broken.docx", "broken.pptx", "broken.xlsx", "broken.epub", "broken.ipynb"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("formats") / "docs"
    d.mkdir()
    for name, write, *_ in FILES:
        write(d / name)
    for name in DAMAGED:
        (d / name).write_bytes(b"PK\x03\x04 this is not what the suffix says")
    (d / "empty.eml").write_text("not an e-mail at all\n")
    return d


@pytest.mark.parametrize(("name", "fmt", "phrase", "section"),
                         [(f, fmt, p, s) for f, _, fmt, p, s in FILES])
def test_each_format_loads_with_its_sections(folder, name, fmt, phrase, section):
    (doc,) = load_file(SourceFile(folder / name, folder)).docs
    assert doc.format == fmt
    at = doc.text.index(phrase)
    here = [label for start, label in doc.sections if start <= at]
    assert (here[-1] if here else "") == section


def test_the_email_keeps_its_headers_names_attachments_and_prefers_plain_text(folder):
    (doc,) = load_file(SourceFile(folder / "survey.eml", folder)).docs
    assert doc.title == "Kookaburra survey results"
    assert doc.text.startswith("Subject: Kookaburra survey results\nFrom: Ana <ana@example.com>")
    assert "Attachments: map.pdf" in doc.text and "<b>" not in doc.text


def test_code_sections_start_at_decorators_and_nest_methods():
    text, title, sections = parse_code(PY, ".py", "census.py")
    assert text == PY and title == "census.py"
    assert [name for _, name in sections] == ["wallaby_count", "Census", "Census.tally_possums"]
    assert PY[sections[0][0]:].startswith("@cache\ndef wallaby_count")


def test_code_offsets_are_characters_not_bytes():
    src = 'NAME = "café ☕"\n\ndef brew():\n    return "☕"\n'
    _, _, sections = parse_code(src, ".py", "x.py")
    assert src[sections[0][0]:].startswith("def brew")


def test_minified_or_generated_code_is_skipped_with_its_reason(tmp_path):
    """Sphinx writes searchindex.js as one line of packed JSON; bundles are minified."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "searchindex.js").write_text(
        "Search.setIndex({" + ",".join(f'"t{i}":[{i},"p{i}"]' for i in range(600)) + "})\n"
    )
    (site / "app.js").write_text("export function greet(name) {\n  return `hi ${name}`;\n}\n")
    with pytest.raises(LoaderError, match=r"searchindex.js: minified or generated code "
                                          r"\(a line of [\d,]+ characters\)"):
        load_file(SourceFile(site / "searchindex.js", site))
    (doc,) = load_file(SourceFile(site / "app.js", site)).docs
    assert doc.format == "code"


def test_sphinx_source_listings_are_left_out_and_leave_an_index(tmp_path):
    """Sphinx's viewcode pages (``_modules/``) are Django's source, not its documentation:
    left out as Sphinx's own search leaves them out, and what an index held of one goes
    (a file that cannot be read now keeps what it had)."""
    from shutil import copy

    listing = REPO / "tests" / "fixtures" / "third_party" / "django-docs" / "_modules" / \
        "decorators.html"
    page = REPO / "tests" / "fixtures" / "third_party" / "django-docs" / "shortcuts.html"
    site = tmp_path / "html"
    (site / "_modules").mkdir(parents=True)
    copy(page, site / "shortcuts.html")  # its "[source]" links point into _modules/
    copy(page, site / "_modules" / "kept.html")  # a folder of that name holds no listing
    (site / "_modules" / "decorators.html").write_text(
        page.read_text())  # indexed first as a page, then Sphinx writes the listing there
    embedder = KeywordEmbedder()
    r = index_paths(tmp_path / "index", [site], embedder, quiet=True)
    assert r.added == 3
    copy(listing, site / "_modules" / "decorators.html")
    r = index_paths(tmp_path / "index", [site], embedder, quiet=True)
    assert r.removed == 1 and r.unchanged == 2
    (path, why), = r.skipped
    assert path.endswith("decorators.html") and why.startswith(
        "a source-code listing Sphinx generated (viewcode), not indexed")
    with pytest.raises(NotIndexed, match="decorators.html: a source-code listing"):
        load_file(SourceFile(site / "_modules" / "decorators.html", site))


def test_the_pages_sphinx_generates_to_find_the_others_are_left_out(tmp_path):
    """Sphinx's general index, module index and search page list names and links (or run a
    script), and crowd out the pages they link to: left out, as Sphinx's own search leaves
    them out. Django's module index and CMake's search page as Debian ships them; the
    general index's table as Sphinx writes it (CMake's is 2.7 MB); a page that shows the
    class in its text is still read."""
    from shutil import copy

    third = REPO / "tests" / "fixtures" / "third_party"
    site = tmp_path / "html"
    site.mkdir()
    copy(third / "django-docs" / "py-modindex.html", site)
    copy(third / "cmake-docs" / "search.html", site)
    copy(third / "django-docs" / "shortcuts.html", site)
    (site / "genindex.html").write_text(
        '<html><body><h1 id="index">Index</h1><h2 id="A">A</h2>\n<table style="width: 100%" '
        'class="indextable genindextable"><tr><td style="width: 33%; vertical-align: top;">'
        '<ul><li><a href="command/add_library.html">add_library</a></li></ul></td></tr>'
        '</table></body></html>')
    (site / "about.html").write_text(
        '<h1>Themes</h1><p>Style <code>class="indextable genindextable"</code> in CSS.</p>')
    r = index_paths(tmp_path / "index", [site], KeywordEmbedder(), quiet=True)
    assert r.added == 2  # shortcuts.html and about.html
    assert sorted((Path(p).name, why) for p, why in r.skipped) == [
        ("genindex.html", "its general index, a page Sphinx generated to find the others, "
                          "not indexed: the pages it links to are"),
        ("py-modindex.html", "a module index, a page Sphinx generated to find the others, "
                             "not indexed: the pages it links to are"),
        ("search.html", "its search page, a page Sphinx generated to find the others, not "
                        "indexed: the pages it links to are"),
    ]
    with pytest.raises(NotIndexed, match="py-modindex.html: a module index"):
        load_file(SourceFile(site / "py-modindex.html", site))


def test_the_page_sources_sphinx_copies_are_not_indexed_twice(tmp_path):
    """A Sphinx build (sphinx-build 9, tests/fixtures/sphinx-kiln) holds each page twice:
    as HTML and as the source copied under _sources/ for "Show Source"."""
    from shutil import copytree

    site = tmp_path / "html"
    copytree(REPO / "tests" / "fixtures" / "sphinx-kiln", site)
    (site / "_sources" / "notes.txt").write_text("Notes whose page was never built.\n")
    (site / "guide").mkdir()  # pages in folders: _sources/guide/ mirrors guide/
    (site / "guide" / "kilns.html").write_text("<h1>Kilns</h1><p>Electric kilns.</p>")
    (site / "_sources" / "guide").mkdir()
    (site / "_sources" / "guide" / "kilns.rst.txt").write_text("Kilns\n=====\n\nElectric.\n")
    r = index_paths(tmp_path / "index", [site], KeywordEmbedder(), quiet=True)
    assert r.added == 4  # firing.html, index.html, guide/kilns.html, the copy without a page
    assert sorted((Path(p).name, why) for p, why in r.skipped) == [
        ("firing.rst.txt", "the source Sphinx copied beside its page (firing.html, indexed), "
                           "not indexed twice"),
        ("index.rst.txt", "the source Sphinx copied beside its page (index.html, indexed), "
                          "not indexed twice"),
        ("kilns.rst.txt", "the source Sphinx copied beside its page (kilns.html, indexed), "
                          "not indexed twice"),
    ]


def test_code_without_a_grammar_is_plain_text(monkeypatch):
    from mcp_rag.ingest import code

    monkeypatch.setattr(code, "_parsers", {".py": None})
    assert parse_code(PY, ".py", "x.py") == (PY, "x.py", ())


def test_rst_that_docutils_cannot_parse_is_still_indexed(monkeypatch):
    import docutils.core

    def broken(*a, **k):
        raise RecursionError("nested too deep")

    monkeypatch.setattr(docutils.core, "publish_doctree", broken)
    assert parse_rst(RST, "ops") == (RST, "ops", ())


def test_rst_never_reads_other_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    raw = f"Title\n=====\n\n.. include:: {secret}\n\n.. raw:: html\n\n   <b>x</b>\n"
    text, _, _ = parse_rst(raw, "x")
    assert text == raw and "TOP-SECRET-VALUE" not in text


def test_damaged_files_are_skipped_with_their_reason_and_the_rest_indexed(folder, tmp_path):
    rep = index_paths(tmp_path / "index", [folder], KeywordEmbedder(), quiet=True)
    skipped = dict(rep.skipped)
    for name in DAMAGED:
        reason = skipped[str(folder / name)]
        assert "unreadable" in reason, reason
    assert "not an e-mail" in skipped[str(folder / "empty.eml")]
    assert rep.added == len(FILES)


async def test_every_format_is_found_and_cited_exactly_through_mcp(folder, tmp_path, settings):
    index_paths(settings.index, [folder], KeywordEmbedder(), quiet=True)
    async with Client(build_server(Pipeline(settings, embedder=KeywordEmbedder()))) as c:
        for name, _, _, phrase, section in FILES:
            r = await c.call_tool("search", {"query": phrase, "k": 3, "rerank": False})
            assert not r.is_error, r.content[0].text
            hit = next(h for h in r.structured_content["results"] if h["doc_id"] == name)
            doc = await c.call_tool("get_document", {"doc_id": name})
            text = doc.structured_content["text"]
            a, b = hit["span"]
            assert text[a:b] == hit["text"] and phrase in hit["text"], name
            assert hit["section"] == section, name


# Debian ships documentation gzipped (/usr/share/doc/docker-doc/reference/*.md.gz)
def test_a_gzipped_text_format_reads_as_the_format_inside(tmp_path):
    import gzip

    md = Path(__file__).parent / "fixtures" / "third_party" / "docker-docs" / "system_prune.md"
    (tmp_path / "system_prune.md.gz").write_bytes(gzip.compress(md.read_bytes()))
    (tmp_path / "changelog.Debian.gz").write_bytes(gzip.compress(b"docker (20.10) unstable"))
    (tmp_path / "api.yaml.gz").write_bytes(gzip.compress(b"openapi: 3.0.0"))
    found = discover([tmp_path])
    assert [f.path.name for f in found.files] == ["system_prune.md.gz"]
    assert sorted(why for _, why in found.skipped) == [
        "unsupported file type .Debian.gz", "unsupported file type .yaml.gz"]
    plain = load_file(SourceFile(md, md.parent)).docs[0]
    doc = load_file(found.files[0]).docs[0]
    assert doc.doc_id == "system_prune.md.gz" and doc.format == "md"
    assert (doc.text, doc.title, doc.sections) == (plain.text, plain.title, plain.sections)


def test_a_gzip_file_that_is_damaged_or_too_big_is_refused_with_its_reason(tmp_path):
    import gzip

    from mcp_rag.ingest.text import gunzipped

    path = tmp_path / "x.txt.gz"
    with pytest.raises(LoaderError, match="decompresses to more than"):
        gunzipped(path, gzip.compress(b"a" * 3_000_000), limit=2 << 20)  # a bomb, bounded
    with pytest.raises(LoaderError, match="truncated"):
        gunzipped(path, gzip.compress(b"some text " * 100)[:-12])
    with pytest.raises(LoaderError, match="not a readable gzip file"):
        gunzipped(path, b"plain text, not gzip")
    assert gunzipped(path, gzip.compress(b"fine")) == b"fine"
    assert gunzipped(path, gzip.compress(b"one, ") + gzip.compress(b"two")) == b"one, two"
    with pytest.raises(LoaderError, match="decompresses to more than"):  # bounded over members
        gunzipped(path, gzip.compress(b"a" * (1 << 20)) * 3, limit=2 << 20)
