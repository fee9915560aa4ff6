"""What the question-asking studies share: their command line (``collect`` questions from
an index, ``study`` the files written) and the questions it names."""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.docs import load_questions
from mcp_rag.evaluate.beir import judged_queries, load_qrels, load_queries
from mcp_rag.index.store import read_current
from mcp_rag.limits import MAX_QUERY_CHARS
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

KINDS = ("in_scope", "same_field", "other_field")


def parser(doc: str, n: int, lines: bool = False) -> argparse.ArgumentParser:
    """``collect --index (--questions F | --dataset D [--split S] | --lines L) [--kind K]
    [--n N] --out F`` and ``study FILES... [--out F]``."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--index", type=Path, required=True)
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--questions", type=Path, help="a docs benchmark question file")
    g.add_argument("--dataset", type=Path, help="a BEIR dataset folder (judged queries)")
    if lines:
        g.add_argument("--lines", type=Path,
                       help="a folder of .txt questions, one a line, or a file (.txt, or "
                            ".jsonl with a question field)")
        c.add_argument("--kind", choices=KINDS,
                       help="the questions' kind (default: in scope for a dataset, other "
                            "field for --lines)")
    c.add_argument("--split", default="test")
    c.add_argument("--n", type=int, default=n, help="at most this many (seeded sample)")
    c.add_argument("--out", type=Path, required=True)
    st = sub.add_parser("study")
    st.add_argument("files", type=Path, nargs="+")
    st.add_argument("--out", type=Path)
    return ap


def run(doc: str, n: int, collect: Callable[[argparse.Namespace], None],
        study: Callable[[argparse.Namespace], None], lines: bool = False) -> None:
    """A study's command line: ``collect`` (then say what it wrote) or ``study``."""
    args = parser(doc, n, lines).parse_args()
    if args.cmd == "collect":
        collect(args)
        print(f"{args.out} written", file=sys.stderr)
    else:
        study(args)


def docs_index(args: argparse.Namespace, study: str) -> tuple[Settings, Pipeline, Path]:
    """A docs study's settings and pipeline over ``--index`` (default settings, cache off),
    and the metadata database of its current generation; it needs ``--questions``."""
    if not args.questions:
        raise SystemExit(f"{study} needs --questions: a docs benchmark file (its pages)")
    s = Settings.load(index=args.index, cache_enabled=False)
    return s, Pipeline.from_settings(s), args.index / read_current(args.index) / "meta.sqlite"


def questions(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``{"id", "kind", "text", "rel"}`` of the questions ``collect`` names: a docs file's
    all (``rel``: their pages), else a seeded sample of ``n`` (a dataset's judged queries,
    ``rel`` their judgments; ``--lines`` questions, no ``rel``)."""
    kind = getattr(args, "kind", None)
    if args.questions:
        return [{"id": q["id"], "kind": q["kind"], "text": q["question"][:MAX_QUERY_CHARS],
                 "rel": dict.fromkeys(q.get("pages", []), 1)}
                for q in load_questions(args.questions)]
    qs: list[dict[str, Any]] = []
    if args.dataset:
        qrels = load_qrels(args.dataset, args.split)
        qs = [{"id": qid, "kind": kind or "in_scope", "text": text, "rel": qrels[qid]}
              for qid, text in judged_queries(load_queries(args.dataset), qrels)]
    else:
        files = sorted(args.lines.glob("*.txt")) if args.lines.is_dir() else [args.lines]
        for f in files:
            for i, ln in enumerate(f.read_text().splitlines()):
                text = json.loads(ln)["question"] if f.suffix == ".jsonl" and ln.strip() \
                    else ln.strip()
                if text and not text.startswith("#"):
                    qs.append({"id": f"{f.stem}-{i}", "kind": kind or "other_field",
                               "text": text, "rel": {}})
    random.Random(7).shuffle(qs)
    return [q | {"text": q["text"][:MAX_QUERY_CHARS]} for q in qs[: args.n]]
