"""Abstention of the `answer` tool as a matrix: corpora x question sources.

    python research/abstention.py \\
        --corpus scifact=/tmp/sf:../shared/datasets/scifact:test \\
        --corpus nfcorpus=/tmp/nf:../shared/datasets/nfcorpus:test \\
        --corpus sample=/tmp/kb:tests/golden/sample_questions.jsonl \\
        --ood research/data/ood --ood research/data/ood_questions.txt \\
        [--limit 40] [--own-limit 150] [--json out.json] [--plot reliability.png]

Every question goes through ``RagService.answer`` at the default settings, cache off. A
corpus's own questions should be answered; every other source (each out-of-scope file,
and the other corpora's questions) should be refused, except that two corpora of one
field (SciFact and NFCorpus are both biomedical) are shown but not counted. Questions over
the tool's length limit are truncated, and the run says how many. Prints, per corpus,
refusal precision, refusal recall and in-scope answer rate against the targets (0.90,
0.90, 0.95), the answer latency, and a reliability table of ``confidence``: in each bin,
the share of answers whose citations include a document judged relevant (qrels; out of
scope answers count as unsupported).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from mcp_rag.app.service import RagService
from mcp_rag.evaluate.beir import judged_queries, load_qrels, load_queries
from mcp_rag.retrieve.pipeline import MAX_QUERY_CHARS, Pipeline
from mcp_rag.settings import Settings

TARGETS = {"refusal_precision": 0.9, "refusal_recall": 0.9, "in_scope_answer_rate": 0.95}
SAME_FIELD = {frozenset({"scifact", "nfcorpus"})}  # neighbours: labels unsure, not counted


def own_questions(spec: str) -> list[tuple[str, set[str]]]:
    """(question, relevant doc ids) from a BEIR folder:split, a questions .jsonl file
    (``question``, optional ``expected`` doc id) or a text file of one question a line."""
    path, _, split = spec.partition(":")
    p = Path(path).expanduser()
    if p.suffix == ".txt":
        return [(x.strip(), set()) for x in p.read_text().splitlines() if x.strip()]
    if p.suffix == ".jsonl":
        rows = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
        return [(r["question"], {r["expected"]} if r.get("expected") else set()) for r in rows]
    texts, qrels = load_queries(p), load_qrels(p, split or "test")
    return [(t, {d for d, g in qrels[q].items() if g > 0}) for q, t in judged_queries(texts, qrels)]


def ood_sources(paths: list[Path]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in paths:
        files = sorted(p.glob("*.txt")) if p.is_dir() else [p]
        for f in files:
            out[f"ood:{f.stem}"] = [x.strip() for x in f.read_text().splitlines() if x.strip()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", action="append", required=True,
                    help="NAME=INDEX:QUESTIONS (BEIR folder[:split] or .jsonl)")
    ap.add_argument("--ood", action="append", type=Path, default=[],
                    help="A file of out-of-scope questions (one a line) or a folder of them.")
    ap.add_argument("--limit", type=int, default=0, help="At most N questions per source.")
    ap.add_argument("--own-limit", type=int, default=0,
                    help="At most N of a corpus's own questions asked of it (default: --limit)")
    ap.add_argument("--json", type=Path, help="Write every decision here.")
    ap.add_argument("--plot", type=Path, help="Write the reliability plot (matplotlib) here.")
    args = ap.parse_args()

    corpora = {}
    for spec in args.corpus:
        name, _, rest = spec.partition("=")
        index, _, questions = rest.partition(":")
        corpora[name] = (Path(index).expanduser(), own_questions(questions))
    rnd = random.Random(0)

    def cap(items: list, n: int) -> list:
        return rnd.sample(items, n) if n and len(items) > n else items

    own_limit = args.own_limit or args.limit
    sources: dict[str, list[tuple[str, set[str]]]] = {
        n: cap(qs, own_limit) for n, (_, qs) in corpora.items()
    }
    for n, qs in ood_sources(args.ood).items():
        sources[n] = cap([(q, set()) for q in qs], args.limit)
    truncated = sum(len(q) > MAX_QUERY_CHARS for qs in sources.values() for q, _ in qs)
    if truncated:
        print(f"{truncated} questions over the tool's limit of {MAX_QUERY_CHARS} characters "
              f"are truncated to it", file=sys.stderr)

    rows = []
    for name, (index, own) in corpora.items():
        svc = RagService(Pipeline.from_settings(Settings(index=index)))
        own_texts = {q for q, _ in own}
        for src, all_qs in sources.items():
            # another corpus's questions: at most --limit of them
            qs = all_qs[: args.limit] if src in corpora and src != name and args.limit else all_qs
            for q, relevant in qs:
                if src != name and q in own_texts:
                    continue  # an out-of-scope set's question this corpus does answer
                t = time.perf_counter()
                out = svc.answer(q[:MAX_QUERY_CHARS], no_cache=True)
                cited = {c.doc_id for c in out.citations}
                shown = {x.doc_id for x in out.sources}  # answered: cited; refused: closest
                rows.append({
                    "corpus": name, "source": src, "question": q,
                    "in_scope": src == name,
                    "counted": frozenset({src, name}) not in SAME_FIELD,
                    "answered": out.answered, "confidence": out.confidence,
                    "supported": bool(src == name and cited & relevant),
                    # a judged-relevant document among the passages it answers (or would
                    # have answered) from: refusing the others loses no supported answer
                    "retrievable": bool(src == name and shown & relevant),
                    "reason": out.no_answer_reason,
                    "ms": (time.perf_counter() - t) * 1000,
                })
            print(f"{name} x {src}: done", file=sys.stderr)

    names = list(sources)
    print("Answered (own questions) or refused (others), share of questions:\n")
    print("| corpus | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for c in corpora:
        cells = []
        for src in names:
            rs = [r for r in rows if r["corpus"] == c and r["source"] == src]
            if not rs:
                cells.append("")
                continue
            rate = sum(r["answered"] == r["in_scope"] for r in rs) / len(rs)
            mark = "" if rs[0]["counted"] else " (same field)"
            cells.append(f"{'answered' if src == c else 'refused'} {rate:.2f}{mark}")
        print(f"| {c} | " + " | ".join(cells) + " |")

    summary = {}
    print("\n| corpus | refusal precision | refusal recall | in-scope answer rate | "
          "in scope, relevant passage found: answered | answer p50 ms |\n"
          "|---|---|---|---|---|---|")
    for c in corpora:
        rs = [r for r in rows if r["corpus"] == c and r["counted"]]
        ins = [r for r in rs if r["in_scope"]]
        outs = [r for r in rs if not r["in_scope"]]
        ref_out = sum(not r["answered"] for r in outs)
        ref_in = sum(not r["answered"] for r in ins)
        m = {
            "refusal_precision": ref_out / max(1, ref_out + ref_in),
            "refusal_recall": ref_out / max(1, len(outs)),
            "in_scope_answer_rate": sum(r["answered"] for r in ins) / max(1, len(ins)),
            "retrievable_answer_rate": sum(r["answered"] for r in ins if r["retrievable"])
            / max(1, sum(r["retrievable"] for r in ins)),
            "answer_ms_p50": statistics.median(r["ms"] for r in rs),
        }
        summary[c] = m
        ok = {k: "" if m[k] >= t else " MISSED" for k, t in TARGETS.items()}
        print(f"| {c} | {m['refusal_precision']:.3f}{ok['refusal_precision']} | "
              f"{m['refusal_recall']:.3f}{ok['refusal_recall']} | "
              f"{m['in_scope_answer_rate']:.3f}{ok['in_scope_answer_rate']} | "
              f"{m['retrievable_answer_rate']:.3f} | "
              f"{m['answer_ms_p50']:.0f} |")

    answered = [r for r in rows if r["answered"] and r["counted"] and r["confidence"] is not None]
    bins = [(i / 5, (i + 1) / 5) for i in range(5)]
    print("\nReliability of confidence (answered questions): share supported per bin\n")
    print("| confidence | answers | supported |\n|---|---|---|")
    plot = []
    for lo, hi in bins:
        b = [r for r in answered
             if lo <= r["confidence"] < hi or (hi == 1 and r["confidence"] == 1)]
        if b:
            share = sum(r["supported"] for r in b) / len(b)
            plot.append(((lo + hi) / 2, share, len(b)))
            print(f"| {lo:.1f}-{hi:.1f} | {len(b)} | {share:.2f} |")
    if args.plot and plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
        ax.plot([p[0] for p in plot], [p[1] for p in plot], "o-", label="mcp-rag")
        for x, y, n in plot:
            ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
        ax.set_xlabel("confidence")
        ax.set_ylabel("share of answers citing a relevant document")
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
