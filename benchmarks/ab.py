"""A/B speed and quality of two versions of mcp-rag, in one run on one machine.

    python benchmarks/ab.py --base f02b2f3 --index /tmp/evalidx/eval/<key> \\
        --dataset ../shared/datasets/scifact [--n 60] [--index-docs 300] [--json out.json]

The base commit is checked out (``git archive``) into a temporary folder; the other side
is this working tree, or ``--head COMMIT``. Each side runs in its own worker process with
its own code (``PYTHONPATH``), the same index, models and settings (defaults; cache off),
so each side loads its models once. The driver alternates the sides query by query (A B,
then B A), so drift in the machine's speed falls on both alike, and for each query times
``search`` (the tool's default k), ``answer``, and a k=10 search with the answerability
decision and floor off whose documents give nDCG@10 against the dataset's qrels. With
``--index-docs N`` both sides also index the dataset's first N documents into fresh
folders, alternately, ``--index-rounds`` times each (chunks/s).

Prints, per measure, each side's median, the ratio base/head of the medians with a paired
bootstrap 95 % interval, the per-stage medians, nDCG@10 of both sides with the paired
difference's interval, how often both sides answer or refuse alike, and the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, sys, time
from pathlib import Path
import mcp_rag
code = Path(mcp_rag.__file__).resolve()
assert code.is_relative_to(Path(sys.argv[1]).resolve()), code
from mcp_rag.evaluate.metrics import docs_from_chunks
from mcp_rag.retrieve.pipeline import Pipeline
try:
    from mcp_rag.app.service import RagService
except ImportError:  # a version from before the app layer
    from mcp_rag.serve.service import RagService
from mcp_rag.settings import Settings

index = Path(sys.argv[2])
s = Settings(index=index, cache_enabled=False)
pipe = Pipeline.from_settings(s)
svc = RagService(pipe)
ranker = Pipeline(
    s.model_copy(update={"answerability": False, "relevance_floor": None}),
    pipe.embedder, pipe.reranker, reader=pipe.reader,
)
print(json.dumps({"ready": True, "code": str(Path(mcp_rag.__file__).parent)}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    op, out = req["op"], {}
    t = time.perf_counter()
    if op == "search":
        r = svc.search(req["q"], no_cache=True)
        out["timings"] = r.timings_ms
    elif op == "answer":
        a = svc.answer(req["q"], no_cache=True)
        out["timings"] = a.timings_ms
        out["answered"] = a.answered
    elif op == "rank":
        r = ranker.search(req["q"], k=10)
        out["docs"] = docs_from_chunks([h.chunk.doc_id for h in r.hits])
    elif op == "index":
        from mcp_rag.index.manifest import BuildOptions
        from mcp_rag.index.store import IndexReader
        from mcp_rag.index.update import index_paths
        dest = Path(req["dest"])
        index_paths(dest, [req["corpus"]], pipe.embedder,
                    options=BuildOptions.from_settings(s), quiet=True)
        out["chunks"] = IndexReader(dest).n_chunks
    out["ms"] = (time.perf_counter() - t) * 1000
    print(json.dumps(out), flush=True)
"""


class Side:
    """One version's worker process."""

    def __init__(self, name: str, code: Path, index: Path) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(code)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(code), str(index)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=code,
        )
        hello = self._read()
        print(f"{name}: {hello['code']}", file=sys.stderr)

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name}: the worker exited (see its stderr above)")
        return json.loads(line)

    def ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def checkout(commit: str, dest: Path) -> Path:
    """``commit``'s tree, extracted into ``dest`` (the repository is not touched)."""
    data = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit],
        check=True, capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def ratio_ci(a: list[float], b: list[float], reps: int = 2000) -> tuple[float, float, float]:
    """median(a) / median(b) with a paired bootstrap 95 % interval (pairs resampled)."""
    rng = random.Random(0)
    n = len(a)
    stats = []
    for _ in range(reps):
        idx = [rng.randrange(n) for _ in range(n)]
        stats.append(statistics.median(a[i] for i in idx) / statistics.median(b[i] for i in idx))
    stats.sort()
    return (statistics.median(a) / statistics.median(b), stats[int(0.025 * reps)],
            stats[int(0.975 * reps) - 1])


def diff_ci(d: list[float], reps: int = 2000) -> tuple[float, float, float]:
    rng = random.Random(0)
    means = sorted(statistics.mean(rng.choices(d, k=len(d))) for _ in range(reps))
    return statistics.mean(d), means[int(0.025 * reps)], means[int(0.975 * reps) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="commit to compare against (A)")
    ap.add_argument("--head", default=None, help="commit (B; default: this working tree)")
    ap.add_argument("--index", type=Path, required=True, help="an index both can read")
    ap.add_argument("--dataset", type=Path, required=True, help="BEIR folder of the index")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n", type=int, default=60, help="queries (seeded sample of the split)")
    ap.add_argument("--index-docs", type=int, default=0, help="also time indexing N docs")
    ap.add_argument("--index-rounds", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    args.index = args.index.resolve()  # the workers run in their own code folders

    sys.path.insert(0, str(REPO))
    from mcp_rag.evaluate.beir import judged_queries, load_qrels, load_queries
    from mcp_rag.evaluate.latency import cpu
    from mcp_rag.evaluate.metrics import ndcg_at_k

    texts, qrels = load_queries(args.dataset), load_qrels(args.dataset, args.split)
    ids = random.Random(0).sample([q for q, _ in judged_queries(texts, qrels)],
                                  min(args.n, len(qrels)))
    with tempfile.TemporaryDirectory(prefix="mcp-rag-ab-") as tmp:
        tmp = Path(tmp)
        a_code = checkout(args.base, tmp / "a")
        b_code = checkout(args.head, tmp / "b") if args.head else REPO
        sides = {"A": Side(f"A {args.base}", a_code, args.index),
                 "B": Side(f"B {args.head or 'working tree'}", b_code, args.index)}
        ms: dict[str, dict[str, list[float]]] = {s: {} for s in sides}
        stages: dict[str, dict[str, list[float]]] = {s: {} for s in sides}
        ndcg: dict[str, list[float]] = {s: [] for s in sides}
        answered: dict[str, list[bool]] = {s: [] for s in sides}
        for s in sides.values():  # warm-up
            s.ask(op="answer", q=texts[ids[0]])
        for i, qid in enumerate(ids):
            order = ("A", "B") if i % 2 == 0 else ("B", "A")
            for op in ("search", "answer", "rank"):
                for side in order:
                    out = sides[side].ask(op=op, q=texts[qid])
                    ms[side].setdefault(op, []).append(out["ms"])
                    for st, v in out.get("timings", {}).items():
                        stages[side].setdefault(f"{op}:{st}", []).append(v)
                    if op == "rank":
                        ndcg[side].append(ndcg_at_k(out["docs"], qrels[qid], 10))
                    if op == "answer":
                        answered[side].append(out["answered"])
            print(f"\r{i + 1}/{len(ids)} queries", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        chunks_per_s: dict[str, list[float]] = {s: [] for s in sides}
        if args.index_docs:
            corpus = tmp / "corpus.jsonl"
            lines = (args.dataset / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
            corpus.write_text("\n".join(lines[: args.index_docs]) + "\n", encoding="utf-8")
            for r in range(args.index_rounds):
                for side in (("A", "B") if r % 2 == 0 else ("B", "A")):
                    out = sides[side].ask(op="index", corpus=str(corpus),
                                          dest=str(tmp / f"idx-{side}-{r}"))
                    chunks_per_s[side].append(out["chunks"] / (out["ms"] / 1000))
        for s in sides.values():
            s.close()

    result: dict = {"cpu": cpu(), "base": args.base, "head": args.head or "working tree",
                    "dataset": str(args.dataset), "split": args.split, "queries": len(ids)}
    lines = [f"A = {args.base}, B = {result['head']}; {len(ids)} {args.dataset.name} "
             f"{args.split} queries; CPU: {result['cpu']}",
             "| measure | A p50 ms | B p50 ms | A/B (95 % CI) |", "|---|---|---|---|"]
    for op in ("search", "answer"):
        r, lo, hi = ratio_ci(ms["A"][op], ms["B"][op])
        result[op] = {"a_p50": statistics.median(ms["A"][op]),
                      "b_p50": statistics.median(ms["B"][op]), "ratio": [r, lo, hi]}
        lines.append(f"| {op} | {result[op]['a_p50']:.0f} | {result[op]['b_p50']:.0f} | "
                     f"{r:.2f}x ({lo:.2f}-{hi:.2f}) |")
    keys = sorted(set(stages["A"]) | set(stages["B"]))
    result["stages"] = {}
    for k in keys:
        a = statistics.median(stages["A"][k]) if k in stages["A"] else None
        b = statistics.median(stages["B"][k]) if k in stages["B"] else None
        result["stages"][k] = [a, b]
        if k.endswith(":total"):
            continue
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        lines.append(f"| {k} | {fmt(a)} | {fmt(b)} | |")
    if args.index_docs:
        a, b = statistics.median(chunks_per_s["A"]), statistics.median(chunks_per_s["B"])
        result["index_chunks_per_s"] = [a, b]
        lines.append(f"| indexing, chunks/s ({args.index_docs} docs, "
                     f"{args.index_rounds} runs each) | {a:.1f} | {b:.1f} | B/A {b / a:.2f}x |")
    d = [b - a for a, b in zip(ndcg["A"], ndcg["B"], strict=True)]
    m, lo, hi = diff_ci(d)
    result["ndcg@10"] = {"a": statistics.mean(ndcg["A"]), "b": statistics.mean(ndcg["B"]),
                         "diff": [m, lo, hi]}
    same = sum(x == y for x, y in zip(answered["A"], answered["B"], strict=True))
    result["answered"] = {"a": sum(answered["A"]), "b": sum(answered["B"]), "same": same}
    lines.append(f"\nnDCG@10 (k=10, decision off): A {result['ndcg@10']['a']:.4f}, "
                 f"B {result['ndcg@10']['b']:.4f}, B-A {m:+.4f} (95 % CI {lo:+.4f} to {hi:+.4f})")
    lines.append(f"answer: answered A {sum(answered['A'])}, B {sum(answered['B'])} of "
                 f"{len(ids)}; the same decision on {same}")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
