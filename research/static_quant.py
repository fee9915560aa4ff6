"""A statically quantised copy of the pack's embedder: batch-independent, but is it faster?

    python research/static_quant.py --dataset ../shared/datasets/scifact [--docs 150] [--rounds 3]

The pack's bge-small-en-v1.5 is dynamically quantised: every ``DynamicQuantizeLinear``
scales its activations by the min and max of the current batch, so a chunk's vector
depends on its batch-mates and indexing runs one chunk per call. This script rebuilds the
model with every ``DynamicQuantizeLinear`` replaced by a ``QuantizeLinear`` with a fixed
scale and zero point, calibrated (min and max over all texts) on general text shipped with
the package — the sample knowledge base and the out-of-scope question bank, never the
corpus being measured. The int8 weights are the pack's, untouched.

Then the dataset's first ``--docs`` documents are chunked as ``mcp-rag index`` chunks them
and embedded by one single-threaded session (what each indexing thread runs): the pack's
model one chunk per call, and the static copy one chunk per call and in length-sorted
batches of 8 and 16. Variants alternate round by round; the script prints each one's
median chunks/s, its ratio to the pack's model, and the cosine of its vectors to the pack's
(min and mean), and whether its vectors depend on the batch. Needs ``onnx`` (dev extra).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import mcp_rag
from mcp_rag.index.scope import bank
from mcp_rag.ingest.chunking import chunk_document, index_text
from mcp_rag.ingest.jsonl import parse_jsonl
from mcp_rag.models.embedding import load_embedder
from mcp_rag.models.onnx_runner import OnnxModel, length_sorted_batches
from mcp_rag.models.pack import resolve
from mcp_rag.settings import Settings


def general_text() -> list[str]:
    """Calibration text: the sample knowledge base's paragraphs and the shipped question bank."""
    root = Path(mcp_rag.__file__).parent
    texts = [p for f in sorted((root / "sample").rglob("*.md"))
             for p in f.read_text().split("\n\n") if p.strip()]
    return texts + bank()


def static_copy(model: Path, tokenizer, calibration: list[str], out: Path) -> Path:
    """``model`` with each DynamicQuantizeLinear made a QuantizeLinear of fixed scale."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(model))
    dql = [n for n in m.graph.node if n.op_type == "DynamicQuantizeLinear"]
    probe = onnx.load(str(model))
    for n in dql:
        value = helper.make_tensor_value_info(n.input[0], TensorProto.FLOAT, None)
        probe.graph.output.append(value)
    onnx.save(probe, str(out.with_name("probe.onnx")))
    session = OnnxModel(out.with_name("probe.onnx"), threads=1)
    names = [o.name for o in session.session.get_outputs()]
    lo = {n.input[0]: 0.0 for n in dql}
    hi = {n.input[0]: 0.0 for n in dql}
    for text in calibration:
        values = session.session.run(None, session.feeds([tokenizer.encode(text)]))
        for name, value in zip(names, values, strict=True):
            if name in lo:
                lo[name] = min(lo[name], float(value.min()))
                hi[name] = max(hi[name], float(value.max()))
    nodes = []
    for n in m.graph.node:
        if n.op_type != "DynamicQuantizeLinear":
            nodes.append(n)
            continue
        x = n.input[0]
        scale = (hi[x] - lo[x]) / 255.0
        zero = int(np.clip(round(-lo[x] / scale), 0, 255))
        y, y_scale, y_zero = n.output
        nodes += [
            helper.make_node("Constant", [], [y_scale],
                             value=numpy_helper.from_array(np.array(scale, np.float32))),
            helper.make_node("Constant", [], [y_zero],
                             value=numpy_helper.from_array(np.array(zero, np.uint8))),
            helper.make_node("QuantizeLinear", [x, y_scale, y_zero], [y]),
        ]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    onnx.save(m, str(out))
    print(f"static copy: {len(dql)} DynamicQuantizeLinear replaced, calibrated on "
          f"{len(calibration)} texts", file=sys.stderr)
    return out


def embed(model: OnnxModel, encodings, batch: int) -> np.ndarray:
    """CLS vectors, L2-normalised, in input order (bge-small's pooling)."""
    out = np.zeros((len(encodings), 384), dtype=np.float32)
    for idx in length_sorted_batches([len(e.ids) for e in encodings], batch):
        cls = model.run([encodings[i] for i in idx])[0][:, 0]
        out[idx] = cls / np.linalg.norm(cls, axis=1, keepdims=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, required=True, help="BEIR folder (corpus.jsonl)")
    ap.add_argument("--docs", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    s = Settings()
    ref = resolve(s.embedder, s.models, "embedder")
    emb = load_embedder(ref)
    tok = emb._tok  # the embedder's own tokenizer: truncation at 512, no padding
    corpus = args.dataset / "corpus.jsonl"
    docs = parse_jsonl(corpus, str(args.dataset))[0][: args.docs]  # as `mcp-rag index` reads it
    chunks = [index_text(c) for d in docs for c in chunk_document(d, emb.count_tokens)]
    encodings = [tok.encode(t) for t in chunks]
    tokens = statistics.mean(len(e.ids) for e in encodings)
    print(f"{len(chunks)} chunks of {tokens:.0f} tokens on average", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        pack_model = Path(ref.path) / "model.onnx"
        static = static_copy(pack_model, tok, general_text(), Path(tmp) / "static.onnx")
        variants = {
            "pack model, 1 a call": (OnnxModel(pack_model, 1), 1),
            "static copy, 1 a call": (OnnxModel(static, 1), 1),
            "static copy, batches of 8": (OnnxModel(static, 1), 8),
            "static copy, batches of 16": (OnnxModel(static, 1), 16),
        }
        rates: dict[str, list[float]] = {k: [] for k in variants}
        vectors: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for name, (model, batch) in variants.items():
                t = time.perf_counter()
                vectors[name] = embed(model, encodings, batch)
                rates[name].append(len(chunks) / (time.perf_counter() - t))
    base = vectors["pack model, 1 a call"]
    one = vectors["static copy, 1 a call"]
    base_rate = statistics.median(rates["pack model, 1 a call"])
    print("| one thread | chunks/s (median) | vs pack model | cosine to pack model, min / mean "
          "| same vectors as 1 a call |")
    print("|---|---|---|---|---|")
    for name, v in vectors.items():
        cos = (v * base).sum(1)
        same = float(np.abs(v - one).max()) < 1e-5 if name.startswith("static") else "-"
        rate = statistics.median(rates[name])
        print(f"| {name} | {rate:.1f} | {rate / base_rate:.2f}x "
              f"| {cos.min():.4f} / {cos.mean():.5f} | {same} |")


if __name__ == "__main__":
    main()
