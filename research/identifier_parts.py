"""Would BM25 find a reference page by the words of its identifier? ``target_include_directories``,
``CMAKE_INSTALL_PREFIX``, ``select_related`` are one BM25 term each today (an underscore is
part of a word), while ``git-sparse-checkout`` and ``os.path.join`` are also their parts.

    python research/identifier_parts.py --index /tmp/dx/cmake --copy /tmp/dx/cmake-parts \\
        benchmarks/data/docs/cmake.jsonl --json /tmp/parts-cmake.json

Copies the index, rebuilds its BM25 postings (and the answerability calibration, whose
pseudo-questions BM25 picks) from the stored passages with identifiers split at
underscores as well, each kept whole too (``__init__`` and ``_private``, one part, stay
as they are), and asks the docs benchmark's questions of the copy with the same
tokenizer at query time (``benchmarks/docs.py``'s rows and summary). Compare with the
benchmark on the original index; the vectors are the same.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

from mcp_rag.index import lexical, scope

_PART = re.compile(r"[^\W_]+")


def compounds(text: str):
    """``lexical.compounds`` with underscores splitting a compound into its parts too."""
    for m in lexical._COMPOUND.finditer(text):
        tok = m.group()
        parts = [] if tok.isalnum() else _PART.findall(tok)
        yield tok, parts if len(parts) > 1 else [tok]


def split_copy(src: Path, dst: Path) -> None:
    """``dst``: ``src`` with BM25 and the calibration rebuilt under this tokenizer."""
    from mcp_rag.index.scope import scope_calibrator
    from mcp_rag.index.store import SCOPE, IndexReader, read_current
    from mcp_rag.index.update import _analysed
    from mcp_rag.ingest.chunking import index_text
    from mcp_rag.retrieve.pipeline import Pipeline
    from mcp_rag.settings import Settings

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    gen = dst / read_current(dst)
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["bm25"]["tokenizer"] = lexical.TOKENIZER_ID
    (gen / "manifest.json").write_text(json.dumps(manifest, indent=1))
    reader = IndexReader(dst)
    texts = [index_text(c) for c in reader.chunks(list(range(reader.bm25.n_rows)))]
    tokens, _ = _analysed(texts)
    p = manifest["bm25"]
    bm25 = lexical.BM25Index.build(tokens, k1=p["k1"], b=p["b"], epsilon=p["epsilon"])
    bm25.save(gen)
    embedder = Pipeline.from_settings(Settings.load(index=str(dst), cache_enabled=False)).embedder
    calibration = scope_calibrator(texts, embedder)(bm25, reader.dense)
    (gen / SCOPE).write_text(json.dumps({**calibration, "generation": manifest["generation"]}))
    reader.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("questions", type=Path)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--copy", type=Path, required=True, help="where the re-tokenised copy goes")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    lexical.compounds = scope.compounds = compounds  # BM25's tokens, and a question's terms
    split_copy(args.index, args.copy)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import docs  # benchmarks/docs.py
    from mcp_rag.app.service import RagService
    from mcp_rag.retrieve.pipeline import Pipeline
    from mcp_rag.settings import Settings

    svc = RagService(Pipeline.from_settings(Settings.load(index=str(args.copy),
                                                          cache_enabled=False)))
    result = docs.run(svc, docs.load_questions(args.questions))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
