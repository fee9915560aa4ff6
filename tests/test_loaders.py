from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from helpers import minimal_pdf

from mcp_rag.errors import LoaderError
from mcp_rag.ingest.chunking import split_sentences
from mcp_rag.ingest.discover import SourceFile, discover
from mcp_rag.ingest.loaders import load_file


def load(path: Path, root: Path | None = None):
    return load_file(SourceFile(path, root or path.parent))


def test_markdown_strips_markup_keeps_headings_as_sections(tmp_path):
    f = tmp_path / "guide.md"
    f.write_text(
        "---\ntitle: The Guide\n---\n# Intro\n\nRead the **docs** at [our site](https://x.io).\n\n"
        "## Setup\n\n```bash\npip install thing\n```\n\n- Use `KB-ERR-2847` and snake_case_name.\n"
        "> quoted *text*\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    (doc,) = load(f).docs
    assert doc.title == "The Guide"
    assert doc.doc_id == "guide.md"
    assert doc.format == "md"
    assert "Read the docs at our site." in doc.text
    assert "pip install thing" in doc.text
    assert "Use KB-ERR-2847 and snake_case_name." in doc.text
    assert "quoted text" in doc.text
    assert "a | b" in doc.text and "---" not in doc.text
    assert not re.search(r"[*#`\[\]]", doc.text)
    names = [name for _, name in doc.sections]
    assert names == ["Intro", "Intro > Setup"]
    assert doc.text[doc.sections[1][0] :].startswith("Setup")


def test_html_drops_scripts_and_styles_and_keeps_structure(tmp_path):
    f = tmp_path / "page.html"
    f.write_text(
        "<html><head><title>Page T</title><style>p{}</style></head><body>"
        "<script>var secret = 1;</script><h1>Top</h1><p>First &amp; <i>only</i>  para.</p>"
        "<h2>Sub</h2><ul><li>one</li><li>two</li></ul><noscript>enable js</noscript></body></html>"
    )
    (doc,) = load(f).docs
    assert doc.title == "Page T"
    assert doc.text == "Top\n\nFirst & only para.\n\nSub\n\none\ntwo"
    assert [n for _, n in doc.sections] == ["Top", "Top > Sub"]
    assert doc.text[doc.sections[1][0] :].startswith("Sub")


def test_html_table_rows_keep_their_column_headers(tmp_path):
    f = tmp_path / "sla.html"
    f.write_text(
        "<h1>SLA</h1><table><caption>Targets</caption><tr><th>Plan</th><th>P1</th><th>P2</th></tr>"
        "<tr><td>Enterprise</td><td>15 minutes</td><td>1 hour</td></tr>"
        "<tr><td>Starter</td><td>8 hours</td><td></td></tr></table>"
        "<table><tr><td>a</td><td>b<table><tr><td>nested</td></tr></table></td></tr></table>"
        "<p>After.</p>"
    )
    (doc,) = load(f).docs
    assert doc.text == (
        "SLA\n\nTargets\n\nEnterprise — P1: 15 minutes; P2: 1 hour.\nStarter — P1: 8 hours."
        "\n\na | b nested.\n\nAfter."
    )
    rows = [doc.text[s.start : s.end] for s in split_sentences(doc.text)]
    assert "Enterprise — P1: 15 minutes; P2: 1 hour." in rows


def test_invisible_characters_are_dropped_and_offsets_follow(tmp_path, settings):
    """PostgreSQL's manual writes a zero-width space inside long identifiers where a line
    may break (``administrable_role_\u200bauthorizations``, as Debian ships the page): the
    identifier is read whole, in the text, the title and the section, so BM25, the
    evidence check and a quote copied from an answer see it as written; a soft hyphen, a
    word joiner and a stray byte-order mark go too, and section offsets follow the text."""
    from helpers import KeywordEmbedder

    from mcp_rag.index.update import index_paths
    from mcp_rag.retrieve.pipeline import Pipeline
    from mcp_rag.types import Mode

    page = Path(__file__).parent / "fixtures" / "third_party" / "postgresql-docs" / \
        "infoschema-administrable-role-authorizations.html"
    assert "administrable_role_\u200bauthorizations" in page.read_text(encoding="utf-8")
    (doc,) = load_file(SourceFile(page, page.parent)).docs
    assert doc.title == "37.4. administrable_role_authorizations"
    assert doc.sections == ((0, "37.4. administrable_role_authorizations"),)
    assert "The view administrable_role_authorizations identifies all roles" in doc.text
    md = tmp_path / "notes.md"
    md.write_text("# Intro\n\nA docu\u00admented \ufeffword\u2060joiner.\n\n"
                  "# Second\u200b part\n\nMore text here.\n", encoding="utf-8")
    (notes,) = load_file(SourceFile(md, tmp_path)).docs
    assert "A documented wordjoiner." in notes.text and "\u200b" not in notes.text
    at = dict((name, o) for o, name in notes.sections)
    assert notes.text[at["Second part"]:].startswith("Second part")
    # indexed and asked with the identifier pasted from the page, invisible space and all
    index_paths(settings.index, [page.parent], KeywordEmbedder(), quiet=True)  # 5 pages
    p = Pipeline(settings, embedder=KeywordEmbedder())
    r = p.search("administrable_role_\u200bauthorizations", k=1, mode=Mode.BM25)
    assert r.query == "administrable_role_authorizations" and r.hits[0].chunk.doc_id == page.name
    assert "administrable_role_authorizations" in r.hits[0].chunk.text


def test_text_title_from_first_short_line_or_file_name(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("Travel rules\n\nBook trains for trips under 4 hours.")
    b = tmp_path / "b.txt"
    b.write_text("This file starts with a sentence.\nMore.")
    assert load(a).docs[0].title == "Travel rules"
    assert load(b).docs[0].title == "b"


def test_crlf_and_cp1252_text_are_read(tmp_path):
    f = tmp_path / "win.txt"
    f.write_bytes("Caf\xe9 menu\r\nline two\r\n".encode("cp1252"))
    (doc,) = load(f).docs
    assert doc.text == "Café menu\nline two\n"


def test_pdf_pages_and_title(tmp_path):
    f = tmp_path / "manual.pdf"
    f.write_bytes(minimal_pdf(["First page text.", "Second page text."], title="Manual"))
    (doc,) = load(f).docs
    assert doc.title == "Manual"
    assert doc.format == "pdf"
    assert [p for _, p in doc.pages] == [1, 2]
    assert doc.text[doc.pages[1][0] :].startswith("Second page")


def test_pdf_without_pypdf_says_how_to_install(tmp_path, monkeypatch):
    f = tmp_path / "x.pdf"
    f.write_bytes(minimal_pdf(["hello"]))
    monkeypatch.setitem(sys.modules, "pypdf", None)
    with pytest.raises(LoaderError, match=re.escape("pip install 'mcp-rag-server[pdf]'")):
        load(f)


def test_broken_pdf_is_a_loader_error(tmp_path):
    f = tmp_path / "bad.pdf"
    f.write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with pytest.raises(LoaderError, match="bad.pdf"):
        load(f)


def test_beir_jsonl_keeps_ids_and_skips_bad_lines(tmp_path):
    f = tmp_path / "corpus.jsonl"
    lines = [
        json.dumps({"_id": "d1", "title": "T1", "text": "alpha"}),
        "{not json",
        json.dumps({"_id": "d2", "text": "beta"}),
        json.dumps({"title": "no id", "text": "x"}),
        json.dumps({"_id": "d1", "text": "duplicate"}),
        "",
        json.dumps({"_id": 7, "title": "", "text": "numeric id"}),
        json.dumps({"_id": "t", "title": "Title-only paper", "text": " "}),
    ]
    f.write_text("\n".join(lines))
    got = load_file(SourceFile(f, f))
    assert [(d.doc_id, d.title, d.text) for d in got.docs] == [
        ("d1", "T1", "alpha"),
        ("d2", "", "beta"),
        ("7", "", "numeric id"),
        ("t", "Title-only paper", "Title-only paper"),  # found and quoted by its title
    ]
    assert len(got.warnings) == 3
    assert any(":2: not JSON" in w for w in got.warnings)
    assert any("duplicate _id 'd1'" in w for w in got.warnings)


def test_binary_empty_and_unreadable_files_are_refused_with_reason(tmp_path):
    b = tmp_path / "blob.txt"
    b.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(LoaderError, match="binary"):
        load(b)
    e = tmp_path / "empty.md"
    e.write_text("  \n")
    with pytest.raises(LoaderError, match="no text"):
        load(e)
    dangling = tmp_path / "gone.txt"
    dangling.symlink_to(tmp_path / "missing-target.txt")
    with pytest.raises(LoaderError, match="unreadable"):
        load(dangling)


def test_discover_recurses_filters_and_reports_skips(tmp_path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / ".git").mkdir()
    (tmp_path / "docs" / "a.md").write_text("a")
    (tmp_path / "docs" / "sub" / "b.txt").write_text("b")
    (tmp_path / "docs" / "sub" / "draft.md").write_text("d")
    (tmp_path / "docs" / ".hidden.md").write_text("h")
    (tmp_path / "docs" / ".git" / "config").write_text("x")
    (tmp_path / "docs" / "tool.exe").write_bytes(b"MZ")
    found = discover([tmp_path / "docs"], exclude=["*draft*"])
    rels = sorted(f.path.relative_to(tmp_path / "docs").as_posix() for f in found.files)
    assert rels == ["a.md", "sub/b.txt"]
    reasons = {Path(p).name: why for p, why in found.skipped}
    assert reasons == {
        ".git": "hidden folder",
        ".hidden.md": "hidden file",
        "tool.exe": "unsupported file type .exe",
    }
    only_md = discover([tmp_path / "docs"], include=["*.md"])
    assert [f.path.name for f in only_md.files] == ["a.md", "draft.md"]


def test_discover_missing_path_is_an_error(tmp_path):
    with pytest.raises(LoaderError, match="no such file or folder"):
        discover([tmp_path / "nope"])
