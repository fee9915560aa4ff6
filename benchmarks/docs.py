"""Documentation as people ask it: does `search` find the page, does `answer` hold the
command, option or function that answers, and does it refuse what the docs do not cover?

Runs on any documentation you have indexed, with a question file of JSON lines:

    {"id": "sqlite-01", "kind": "in_scope", "question": "How do I ...?",
     "pages": ["lang_vacuum.html"], "keys": ["VACUUM"]}
    {"id": "sqlite-same-01", "kind": "same_field", "question": "How do I ... (PostgreSQL)?"}
    {"id": "sqlite-task-01", "kind": "same_task", "question": "How do I ... in MySQL?"}
    {"id": "sqlite-other-01", "kind": "other_field", "question": "How do I bake bread?"}

``pages`` are doc ids (paths relative to the indexed folder) where the answer is; ``keys``
the strings a useful answer holds (any one, as written). ``same_field`` questions ask about
a neighbouring product the docs do not cover (a feature only it has); ``same_task`` ones
ask for a task these docs do explain, in another product ("How do I commit a transaction
in SQLite?" of PostgreSQL's manual: the passages answer the task, for the wrong product);
``other_field`` ones about another field.

    mcp-rag --index /tmp/dx/sqlite index /usr/share/doc/sqlite3
    python benchmarks/docs.py --index /tmp/dx/sqlite benchmarks/data/docs/sqlite.jsonl

Reports, per file: in-scope questions answered; the expected page at `search`'s rank 1 and
in its top 3 (hit@1, hit@3, MRR over the top 10), reranked and first stage only; the
expected page among the cited passages or `search`'s top 3; the answer holding a key;
same-field, same-task and other-field questions refused (and answered as partial, naming
what the passages lack); `answer` p50; the CPU. Each rate comes with its 95 % Wilson interval
(``ci95``). Every question goes
through the service the MCP tools call, cache off, at the index's default settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from mcp_rag.app.service import RagService
from mcp_rag.evaluate.latency import cpu
from mcp_rag.evaluate.metrics import wilson
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

KINDS = ("in_scope", "same_field", "same_task", "other_field")


def load_questions(path: Path) -> list[dict[str, Any]]:
    """The questions of a JSON-lines file, checked: a bad line is an error naming it."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        q = json.loads(line)
        if q.get("kind") not in KINDS or not q.get("question"):
            raise ValueError(f"{path}:{n}: needs a question and a kind of {', '.join(KINDS)}")
        if q["kind"] == "in_scope" and not (q.get("pages") and q.get("keys")):
            raise ValueError(f"{path}:{n}: an in-scope question needs pages and keys")
        out.append(q)
    return out


def page_rank(doc_ids: list[str], pages: list[str]) -> int | None:
    """1-based rank of the first result on an expected page (None: not in the list)."""
    return next((i for i, d in enumerate(doc_ids, start=1) if d in pages), None)


def ask(svc: RagService, q: dict[str, Any]) -> dict[str, Any]:
    """One question through `search` (reranked and first stage) and `answer`."""
    t = time.perf_counter()
    a = svc.answer(q["question"], no_cache=True)
    ms = (time.perf_counter() - t) * 1000
    row: dict[str, Any] = {"id": q["id"], "kind": q["kind"], "answered": a.answered,
                           "state": a.state, "answer_ms": round(ms, 1),
                           "reason": a.no_answer_reason, "missing": a.missing,
                           "answer": a.answer}
    if q["kind"] != "in_scope":
        return row
    pages = q["pages"]
    s = svc.search(q["question"], k=10, no_cache=True)
    first = svc.search(q["question"], k=10, rerank=False, no_cache=True)
    ranked = [h.doc_id for h in s.results]
    cited = {c.doc_id for c in a.citations}
    row |= {
        "rank": page_rank(ranked, pages),
        "first_stage_rank": page_rank([h.doc_id for h in first.results], pages),
        "page_cited_or_top3": bool(cited & set(pages))
        or (page_rank(ranked[:3], pages) is not None),
        "holds_key": a.answered and any(k in a.answer for k in q["keys"]),
    }
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rates over ``rows`` (answers of one question file), each with its 95 % Wilson
    interval under ``ci95``."""
    ins = [r for r in rows if r["kind"] == "in_scope"]
    ci95: dict[str, list[float]] = {}

    def rate(xs: list[Any], name: str | None = None) -> float | None:
        if not xs:
            return None
        k = sum(map(bool, xs))
        if name is not None:
            ci95[name] = wilson(k, len(xs))
        return round(k / len(xs), 3)

    def mrr(key: str) -> float | None:
        return round(statistics.mean(1 / r[key] if r[key] else 0 for r in ins), 3) if ins \
            else None

    out: dict[str, Any] = {
        "in_scope": len(ins),
        "answered": rate([r["answered"] for r in ins], "answered"),
        "partial": rate([r["state"] == "partial" for r in ins]),
        "hit@1": rate([r["rank"] == 1 for r in ins], "hit@1"),
        "hit@3": rate([r["rank"] is not None and r["rank"] <= 3 for r in ins], "hit@3"),
        "mrr@10": mrr("rank"),
        "first_stage_hit@1": rate([r["first_stage_rank"] == 1 for r in ins]),
        "first_stage_mrr@10": mrr("first_stage_rank"),
        "page_cited_or_top3": rate([r["page_cited_or_top3"] for r in ins],
                                   "page_cited_or_top3"),
        "holds_key": rate([r["holds_key"] for r in ins], "holds_key"),
    }
    for kind in KINDS[1:]:
        xs = [r for r in rows if r["kind"] == kind]
        out[f"{kind}_questions"] = len(xs)
        out[f"{kind}_refused"] = rate([not r["answered"] for r in xs], f"{kind}_refused")
        out[f"{kind}_partial"] = rate([r["state"] == "partial" for r in xs])
    times = [r["answer_ms"] for r in rows]
    out["answer_p50_ms"] = round(statistics.median(times), 1) if times else None
    out["ci95"] = ci95
    return out


def run(svc: RagService, questions: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [ask(svc, q) for q in questions]
    return {"summary": summary(rows), "questions": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("questions", type=Path, nargs="+", help="question files (JSON lines)")
    ap.add_argument("--index", type=Path, required=True,
                    help="the index of the docs (one index per file, or give one file)")
    ap.add_argument("--json", type=Path, default=None, help="write every answer here")
    args = ap.parse_args()
    s = Settings.load(index=str(args.index), cache_enabled=False)
    svc = RagService(Pipeline.from_settings(s))
    report: dict[str, Any] = {"cpu": cpu(), "index": str(args.index), "sets": {}}
    for path in args.questions:
        result = run(svc, load_questions(path))
        report["sets"][path.stem] = result
        print(path.stem, json.dumps(result["summary"]), file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(json.dumps({"cpu": report["cpu"],
                      "sets": {k: v["summary"] for k, v in report["sets"].items()}}, indent=1))


if __name__ == "__main__":
    main()
