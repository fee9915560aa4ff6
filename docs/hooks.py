"""MkDocs hook: the settings reference, made from the ``Settings`` fields at build time.

Each field's environment variable, type, default, bounds and description come from
``mcp_rag.settings.Settings`` itself, so the page cannot drift from the code. The CLI
reference is made the same way, from the click commands (mkdocs-click, in cli.md).
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic.fields import FieldInfo

from mcp_rag.settings import GROUPS, Settings

MARK = "<!-- settings-reference -->"
# Defaults computed on the machine that runs it, said in words.
COMPUTED = {
    "index": "`default` (a folder in the user data folder)",
    "models": "the user cache folder's `models/`",
    "threads": "all cores",
    "model_workers": "2 (1 on a 1-core machine)",
    "ray_actors": "the CPUs Ray sees",
}


def _type(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args:
        return " \\| ".join(_type(a) for a in args) + (" or none" if len(args) < len(
            typing.get_args(annotation)) else "")
    return getattr(annotation, "__name__", str(annotation))


def _bounds(field: FieldInfo) -> str:
    got = {type(m).__name__: getattr(m, type(m).__name__.lower()) for m in field.metadata
           if type(m).__name__ in ("Ge", "Gt", "Le", "Lt")}
    lo = f"{got['Ge']} ≤ " if "Ge" in got else f"{got['Gt']} < " if "Gt" in got else ""
    hi = f" ≤ {got['Le']}" if "Le" in got else f" < {got['Lt']}" if "Lt" in got else ""
    return f"{lo}x{hi}" if lo or hi else ""


def _default(name: str, field: FieldInfo) -> str:
    if name in COMPUTED:
        return COMPUTED[name]
    if field.default_factory is not None:
        return "computed"
    d = field.get_default()
    return "none" if d is None else f"`{d}`"


def reference() -> str:
    """The settings, a table a group (in ``GROUPS`` order), each field as ``Settings`` has it.

    A field of ``Settings`` that no group holds is listed last, under "Other".
    """
    out = []
    grouped: set[str] = set()
    for group in GROUPS:
        out.append(f"## {group.__name__}\n\n{' '.join((group.__doc__ or '').split())}\n")
        out.append(_table(group.model_fields))
        grouped |= set(group.model_fields)
    rest = [f for f in Settings.model_fields if f not in grouped]
    if rest:
        out.append("## Other\n")
        out.append(_table(rest))
    return "\n".join(out)


def _table(names: Any) -> str:
    rows = ["| environment variable | type | default | what it sets |", "|---|---|---|---|"]
    for name in names:
        field = Settings.model_fields[name]
        kind = _type(field.annotation)
        bounds = _bounds(field)
        desc = " ".join((field.description or "").split()).replace("|", "\\|")
        rows.append(f"| `MCP_RAG_{name.upper()}` | {kind}{f' ({bounds})' if bounds else ''} | "
                    f"{_default(name, field)} | {desc} |")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, **_: Any) -> str:
    return markdown.replace(MARK, reference()) if MARK in markdown else markdown
