"""The CI regression gate by hand: measure the golden sets, compare, or update the baseline.

    python benchmarks/gate.py            # measure and compare (exit 1 on a regression)
    python benchmarks/gate.py --update   # write tests/golden/baseline.json on purpose

The same check runs in the test suite (tests/test_gate.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from mcp_rag.evaluate.gate import run_golden
from mcp_rag.evaluate.quality import compare_to_baseline
from mcp_rag.models.embedding import load_embedder
from mcp_rag.models.pack import resolve
from mcp_rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--scifact", type=Path, default=ROOT.parent / "shared/datasets/scifact")
    args = ap.parse_args()
    s = Settings()
    emb = load_embedder(resolve(s.embedder, s.models, "embedder"))
    with tempfile.TemporaryDirectory() as tmp:
        results = run_golden(ROOT / "tests/golden", args.scifact, ROOT / "mcp_rag/sample",
                             Path(tmp), s, emb)
    print(json.dumps(results, indent=2))
    baseline_file = ROOT / "tests/golden/baseline.json"
    if args.update:
        baseline_file.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {baseline_file}")
        return
    failures = compare_to_baseline(results, json.loads(baseline_file.read_text()))
    for f in failures:
        print("REGRESSION", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
