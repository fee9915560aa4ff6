"""The command line, through click's runner (same process, real index on disk)."""

from __future__ import annotations

import json

import pytest

from mcp_rag.cli import cli


@pytest.fixture
def indexed(runner, tmp_path, sample_dir):
    """An index of the sample, built through the CLI; returns its folder."""
    idx = str(tmp_path / "idx")
    r = runner.invoke(cli, ["--index", idx, "index", str(sample_dir), "-q"])
    assert r.exit_code == 0, r.output
    assert "added 6" in r.output and "generation 1" in r.output
    return idx


def test_index_again_changes_nothing(runner, indexed, sample_dir):
    r = runner.invoke(cli, ["--index", indexed, "index", str(sample_dir), "--json"])
    rep = json.loads(r.stdout)
    assert (rep["unchanged"], rep["embedded_chunks"], rep["changed"]) == (6, 0, False)


def test_status_json_is_the_index_status_tool_output(runner, indexed):
    r = runner.invoke(cli, ["--index", indexed, "status", "--json"])
    st = json.loads(r.stdout)
    assert st["docs"] == 6 and st["generation"] == 1 and st["chunks"] > 6
    assert st["embedder"] == "test/keyword-hash" and st["embedder_dim"] == 256
    assert {k: st["last_run"][k] for k in ("added", "updated", "removed", "unchanged",
                                            "embedded_chunks", "skipped")} == {
        "added": 6, "updated": 0, "removed": 0, "unchanged": 0, "embedded_chunks": 18,
        "skipped": 0,
    }


def test_status_text_is_the_tools_text(runner, indexed):
    r = runner.invoke(cli, ["--index", indexed, "status"])
    assert r.output.startswith("6 documents, 18 chunks, generation 1")
    assert "last run: added 6" in r.output


def test_search_json_has_what_a_citation_needs(runner, indexed):
    r = runner.invoke(cli, ["--index", indexed, "search", "KB-ERR-2847", "-k", "2", "--json"])
    out = json.loads(r.stdout)
    assert out["query"] == "KB-ERR-2847"
    first = out["results"][0]
    assert set(first) >= {"doc_id", "chunk_id", "source", "title", "section", "text", "score",
                          "bm25_rank", "dense_rank"}
    assert first["doc_id"] == "support/error-codes.md"
    assert set(out["timings_ms"]) >= {"bm25", "dense", "fusion"}


def test_search_text_is_the_tools_text(runner, indexed):
    r = runner.invoke(cli, ["--index", indexed, "search", "KB-ERR-2847", "-k", "1"])
    assert r.exit_code == 0
    assert r.stdout.startswith("1 passages for: KB-ERR-2847")
    assert "\n[1] Error codes — " in r.stdout and "error-codes.md § Error codes > KB-ERR-2847" \
        in r.stdout


def test_search_filters_by_doc_id_prefix(runner, indexed):
    r = runner.invoke(cli, ["--index", indexed, "search", "refund", "--doc-id-prefix",
                            "support/", "--json"])
    assert all(x["doc_id"].startswith("support/") for x in json.loads(r.stdout)["results"])


def test_remove_by_doc_id(runner, indexed):
    r = runner.invoke(cli, ["--index", indexed, "remove", "README.md"])
    assert "removed 1 documents; generation 2" in r.output


def test_errors_are_one_line_with_the_fix(runner, tmp_path):
    idx = str(tmp_path / "nothing")
    r = runner.invoke(cli, ["--index", idx, "search", "hello"])
    assert r.exit_code == 1
    assert "Error: no index at" in r.output and f"mcp-rag --index {idx} index PATH..." in r.output
    r = runner.invoke(cli, ["--index", idx, "search", "hello", "-k", "0"])
    assert r.exit_code == 2 and "0 is not in the range 1<=x<=50" in r.output
    r = runner.invoke(cli, ["--index", idx, "index", str(tmp_path / "missing")])
    assert r.exit_code == 1 and "no such file or folder" in r.output
    r = runner.invoke(cli, ["--index", idx, "index", str(tmp_path), "--chunk-tokens", "1"])
    assert r.exit_code == 2 and "chunk_tokens" in r.output


def test_models_list_reports_missing_pack(runner, tmp_path):
    r = runner.invoke(cli, ["--models-dir", str(tmp_path), "models", "list", "--json"])
    rows = json.loads(r.stdout)
    assert {x["name"] for x in rows} == {
        "BAAI/bge-small-en-v1.5",
        "cross-encoder/ms-marco-MiniLM-L-12-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
    }
    assert not any(x["present"] for x in rows)


def test_settings_precedence_flag_env_default(monkeypatch, tmp_path):
    from mcp_rag.settings import Settings

    assert Settings().relevance_floor == -5.0
    monkeypatch.setenv("MCP_RAG_RELEVANCE_FLOOR", "none")
    monkeypatch.setenv("MCP_RAG_INDEX", str(tmp_path / "from-env"))
    monkeypatch.setenv("MCP_RAG_RERANK_CANDIDATES", "12")
    s = Settings.load(index=tmp_path / "from-flag", rerank_candidates=None)
    assert s.relevance_floor is None
    assert s.index == tmp_path / "from-flag"  # a flag beats the environment
    assert s.rerank_candidates == 12  # an unset flag (None) leaves the environment's value


@pytest.mark.parametrize("form", ["after", "before", "env"])
def test_global_options_work_before_and_after_the_subcommand(runner, tmp_path, sample_dir,
                                                              monkeypatch, form):
    idx = tmp_path / "idx"
    args = {"after": ["index", str(sample_dir), "--index", str(idx)],
            "before": ["--index", str(idx), "index", str(sample_dir)],
            "env": ["index", str(sample_dir)]}[form]
    if form == "env":
        monkeypatch.setenv("MCP_RAG_INDEX", str(idx))
    r = runner.invoke(cli, [*args, "-q", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added"] == 6
    st = runner.invoke(cli, ["status", "--json", "--index", str(idx)])
    assert json.loads(st.stdout)["index"] == str(idx)


def test_a_named_index_lives_in_the_user_data_folder(runner, tmp_path, sample_dir, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    r = runner.invoke(cli, ["index", str(sample_dir), "--index", "notes", "-q"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "data" / "mcp-rag" / "indexes" / "notes" / "CURRENT").exists()
    monkeypatch.chdir("/")  # the same name finds it from any working directory
    st = runner.invoke(cli, ["--index", "notes", "status", "--json"])
    assert json.loads(st.stdout)["docs"] == 6


def test_the_command_a_missing_index_suggests_builds_it(runner, tmp_path, sample_dir):
    import shlex

    idx = tmp_path / "nothing yet"
    r = runner.invoke(cli, ["search", "refund", "--index", str(idx)])
    assert r.exit_code == 1
    suggested = r.output.strip().split("Build one with: ", 1)[1]
    args = [str(sample_dir) if a == "PATH..." else a for a in shlex.split(suggested)[1:]]
    assert runner.invoke(cli, [*args, "-q"]).exit_code == 0
    assert runner.invoke(cli, ["search", "refund", "--index", str(idx)]).exit_code == 0


def test_log_level_goes_to_stderr_only(runner, tmp_path):
    r = runner.invoke(cli, ["models", "list", "--json", "--log-level", "debug",
                            "--models-dir", str(tmp_path)])
    assert r.exit_code == 0 and json.loads(r.stdout)


def test_demo_indexes_the_sample_alone(runner, tmp_path, monkeypatch):
    from mcp_rag import cli as cli_mod

    async def no_session(env, question):  # the stdio session needs the real pack
        return None

    monkeypatch.setattr(cli_mod, "_demo_session", no_session)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.md").write_text("# Mine\n\nA note that is not part of the sample.")
    assert runner.invoke(cli, ["--index", "demo", "index", str(other), "-q"]).exit_code == 0
    r = runner.invoke(cli, ["demo"])
    assert r.exit_code == 0, r.output
    st = json.loads(runner.invoke(cli, ["--index", "demo", "status", "--json"]).stdout)
    assert st["docs"] == 6


def _options(cmd):
    """Every option of ``cmd`` and its subcommands, with the command's name."""
    for p in cmd.params:
        yield cmd.name, p
    for sub in getattr(cmd, "commands", {}).values():
        yield from _options(sub)


def test_a_default_the_help_names_is_the_settings_default():
    """``[default N; env MCP_RAG_X]`` in an option's help is the default of setting x: the
    help said 3 passages and 30 candidates after the settings had moved to 4 and 10."""
    import re

    from mcp_rag.settings import Settings

    said = re.compile(r"\[default:? ([^;\]]+); env\s+MCP_RAG_(\w+)\]|"
                      r"\[env\s+MCP_RAG_(\w+); default:? ([^;\]]+)\]")
    checked = []
    for name, p in _options(cli):
        m = said.search(" ".join((getattr(p, "help", None) or "").split()))
        if m is None:
            continue
        value, field = (m[1], m[2]) if m[1] else (m[4], m[3])
        if field.lower() not in Settings.model_fields or field == "INDEX":
            continue  # the log level is the command line's own; the index is said in words
        default = Settings.model_fields[field.lower()].default
        if isinstance(default, bool):
            default = "on" if default else "off"
        assert value.strip() == str(default), (name, p.name, value, default)
        checked.append(p.name)
    assert {"candidates", "k", "max_sentences", "debounce_ms", "rerank"} <= set(checked)
