"""The references in the docs are made from the code: every setting and command is there,
described (the site itself is built with --strict by `make docs`, part of `make test`)."""

from __future__ import annotations

import click

from docs import hooks
from mcp_rag.cli import cli
from mcp_rag.settings import Settings


def test_every_setting_is_described_and_in_the_reference():
    table = hooks.reference()
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no description for the reference"
        assert f"`MCP_RAG_{name.upper()}`" in table


def test_a_new_setting_shows_up_in_the_reference(monkeypatch):
    from pydantic import Field
    from pydantic_settings import BaseSettings

    class More(Settings):
        shiny_knob: int = Field(7, ge=1, le=9, description="A knob added later.")

    assert issubclass(More, BaseSettings)
    monkeypatch.setattr(hooks, "Settings", More)
    assert "| `MCP_RAG_SHINY_KNOB` | int (1 ≤ x ≤ 9) | `7` | A knob added later. |" in \
        hooks.reference()


def test_every_command_has_a_one_line_help():
    def walk(group: click.Group, prefix: str):
        for name, cmd in group.commands.items():
            yield f"{prefix} {name}", cmd
            if isinstance(cmd, click.Group):
                yield from walk(cmd, f"{prefix} {name}")

    for name, cmd in walk(cli, "mcp-rag"):
        assert cmd.get_short_help_str(), f"{name} has no help"


def test_every_setting_belongs_to_exactly_one_group():
    from collections import Counter

    from mcp_rag.settings import GROUPS

    seen = Counter(f for g in GROUPS for f in g.model_fields)
    assert set(seen) == set(Settings.model_fields) and max(seen.values()) == 1
    assert "## Other" not in hooks.reference()
