"""What the development docs promise of the code's shape, checked so it cannot drift."""

from __future__ import annotations

import ast
from pathlib import Path

import mcp_rag

MAX_FUNCTION_LINES = 80  # docs/development.md, "Function length"


def _length(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from ``def`` (decorators not counted) to the function's last, its docstring
    left out: what is read as code."""
    lines = (fn.end_lineno or fn.lineno) - fn.lineno + 1
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        lines -= (body[0].end_lineno or body[0].lineno) - body[0].lineno + 1
    return lines


def test_no_function_is_over_80_lines():
    root = Path(mcp_rag.__file__).parent
    long = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) \
                    and _length(node) > MAX_FUNCTION_LINES:
                long.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} "
                            f"({_length(node)} lines)")
    assert not long, "split these into named steps (docs/development.md): " + ", ".join(long)


def test_the_count_leaves_out_the_docstring_only():
    fn = ast.parse('def f():\n    """One.\n\n    Two."""\n    x = 1\n    return x\n').body[0]
    assert isinstance(fn, ast.FunctionDef) and _length(fn) == 3
