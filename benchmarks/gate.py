"""The CI regression gate by hand: measure the golden sets, compare, or update the baseline.

    python benchmarks/gate.py              # measure and compare (exit 1 on a regression)
    python benchmarks/gate.py --update     # write tests/golden/baseline.json on purpose
    python benchmarks/gate.py --write-sets # rewrite tests/golden/<set>/ from ../shared/datasets

The same check runs in the test suite (tests/test_gate.py), from the committed sets.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from mcp_rag.evaluate.gate import SUBSETS, pick_subset, run_golden, write_subset
from mcp_rag.evaluate.quality import compare_to_baseline
from mcp_rag.models.embedding import load_embedder
from mcp_rag.models.pack import resolve
from mcp_rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--write-sets", action="store_true",
                    help="Rewrite the committed subsets from their specs and the datasets.")
    ap.add_argument("--datasets", type=Path, default=ROOT.parent / "shared/datasets")
    args = ap.parse_args()
    golden = ROOT / "tests/golden"
    if args.write_sets:
        for name in SUBSETS:
            spec_file = golden / f"{name}.json"
            source = args.datasets / name.split("-")[0]
            if not spec_file.exists():  # a new set: draw it once, then keep the spec
                spec = pick_subset(source, "test", 40, 200, seed=7, max_judged=25)
                spec_file.write_text(json.dumps(spec, indent=0) + "\n")
            write_subset(json.loads(spec_file.read_text()), source, golden / name)
            print(f"wrote {golden / name}")
        return
    s = Settings()
    emb = load_embedder(resolve(s.embedder, s.models, "embedder"))
    with tempfile.TemporaryDirectory() as tmp:
        results = run_golden(golden, ROOT / "mcp_rag/sample", Path(tmp), s, emb)
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
