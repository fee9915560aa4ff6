"""An index as a first index of a big folder leaves it part-way: every chunk searchable by
BM25, only the first share of them with a vector and no answerability calibration (the
decision uses its default one until the index is complete), as ``index_paths`` writes it
between batches; ``--calibrate-partial`` calibrates on the embedded share instead, as the
first version did.

    python research/partial_coverage.py --index /tmp/ab/sf --out /tmp/pc/sf-30 --coverage 0.3

Then ask it what the finished index is asked (``research/abstention.py --corpus
scifact=/tmp/pc/sf-30:../shared/datasets/scifact:test ...``) to see whether the decision
answers more wrongly while the vectors arrive. The copy is a new folder; the index read
is not changed.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

from mcp_rag.index.dense import DenseIndex
from mcp_rag.index.manifest import Counts
from mcp_rag.index.scope import scope_calibrator
from mcp_rag.index.store import SCOPE, IndexReader
from mcp_rag.ingest.chunking import index_text
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings


def partial_copy(index: Path, out: Path, coverage: float, calibrate_partial: bool = False
                 ) -> dict:
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(index, out)
    reader = IndexReader(out)
    n = reader.n_chunks
    e = round(coverage * n)
    vectors = reader.vectors(range(e))
    dense = DenseIndex.build(vectors, reader.dense.kind)
    gen = reader.path
    dense.save(gen / "dense.faiss")
    m = reader.manifest
    replace(m, counts=Counts(m.counts.docs, n, None if e == n else e)).write(gen)
    scope = None
    if e and calibrate_partial:
        embedder = Pipeline.from_settings(Settings(index=index, rerank=False)).embedder
        texts = [index_text(c) for c in reader.chunks(list(range(e)))]
        scope = {**scope_calibrator(texts, embedder)(reader.bm25, dense),
                 "generation": m.generation}
        (gen / SCOPE).write_text(json.dumps(scope, indent=1))
    elif e < n:
        (gen / SCOPE).unlink(missing_ok=True)
    reader.close()
    check = IndexReader(out)
    return {"chunks": n, "embedded": check.n_embedded, "calibration": scope}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--coverage", type=float, required=True, help="Share embedded, 0..1.")
    ap.add_argument("--calibrate-partial", action="store_true",
                    help="Calibrate on the embedded share (what the first version did); "
                    "by default there is no calibration until the index is complete.")
    a = ap.parse_args()
    print(json.dumps(partial_copy(a.index, a.out, a.coverage, a.calibrate_partial), indent=1))


if __name__ == "__main__":
    main()
