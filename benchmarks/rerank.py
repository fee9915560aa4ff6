"""Reranker speed and agreement: the default ONNX int8 path vs sentence-transformers fp32.

    python benchmarks/rerank.py --index /tmp/sf [--rounds 15] [--queries 5]

For each query, its 20 hybrid candidates (chunks of the default size) are scored by
(A) the default path, ``OnnxReranker`` on the pack's int8 ms-marco-MiniLM-L-12-v2, and
(B) ``CrossEncoder.predict`` with default settings on an fp32 copy of the same weights,
rebuilt by dequantising every MatMulInteger weight into its BERT linear layer. A and B
alternate in one process; the script prints medians, the ratio, pairs/s, peak memory,
and the Kendall tau of the two top-10 orders. Needs the dev extra (torch, onnx).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from mcp_rag.ingest.chunking import index_text
from mcp_rag.models.pack import resolve
from mcp_rag.models.rerank import load_reranker
from mcp_rag.retrieve.pipeline import Pipeline
from mcp_rag.settings import Settings

L12_CONFIG = dict(
    vocab_size=30522, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
    intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2, num_labels=1,
)


def fp32_copy(pack_dir: Path, out: Path) -> Path:
    """An fp32 BertForSequenceClassification with the int8 model's weights, dequantised."""
    import onnx
    import torch
    from onnx import numpy_helper
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    g = onnx.load(str(pack_dir / "model.onnx")).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    model = BertForSequenceClassification(BertConfig(**L12_CONFIG)).eval()
    expected = model.state_dict()
    state = {}

    def dequantised(q: str) -> np.ndarray:
        base = q.removesuffix("_quantized")
        zp = init.get(base + "_zero_point", np.zeros((), np.int8)).astype(np.float32)
        return (init[q].astype(np.float32) - zp) * init[base + "_scale"]

    def put(name: str, arr: np.ndarray) -> None:
        if name in expected:
            state[name] = torch.from_numpy(np.array(arr, dtype=np.float32))

    # A MatMul weight is [in, out] in ONNX and [out, in] in a torch Linear.
    matmul_weights = {n.input[1] for n in g.node if n.op_type == "MatMulInteger"}
    for name, arr in init.items():
        if name.endswith("_quantized") and name.startswith(("bert.", "classifier.")):
            w = dequantised(name)
            put(name.removesuffix("_quantized"), w.T if name in matmul_weights else w)
        elif name.startswith(("bert.", "classifier.")) and arr.dtype == np.float32:
            put(name, arr)
    for node in g.node:  # weights named onnx::MatMul_N: the node's output names the layer
        if node.op_type == "MatMulInteger" and node.input[1].startswith("onnx::"):
            layer = node.output[0].split("/MatMul")[0].strip("/").replace("/", ".")
            put(layer + ".weight", dequantised(node.input[1]).T)
    missing = [k for k in expected if k not in state and not k.endswith("position_ids")]
    if missing:
        raise RuntimeError(f"weights not found in the ONNX graph: {missing[:5]}")
    model.load_state_dict(state, strict=False)
    model.save_pretrained(str(out))
    BertTokenizerFast(tokenizer_file=str(pack_dir / "tokenizer.json")).save_pretrained(str(out))
    return out


def kendall_tau(a: list[int], b: list[int]) -> float:
    """Kendall tau-b of two top lists over the union of their items (absent = ranked last)."""
    items = sorted(set(a) | set(b))
    ra = [a.index(i) if i in a else len(a) for i in items]
    rb = [b.index(i) if i in b else len(b) for i in items]
    conc = disc = ties_a = ties_b = 0
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            da, db = ra[i] - ra[j], rb[i] - rb[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                conc += 1
            else:
                disc += 1
    denom = ((conc + disc + ties_a) * (conc + disc + ties_b)) ** 0.5
    return (conc - disc) / denom if denom else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True, help="An index (e.g. SciFact's).")
    scifact = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"
    ap.add_argument("--queries-file", type=Path, default=scifact / "queries.jsonl")
    ap.add_argument("--queries", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import torch
    from sentence_transformers import CrossEncoder

    s = Settings(index=args.index, rerank=False)
    p = Pipeline.from_settings(s)
    ref = resolve(s.reranker, s.models, "reranker")
    onnx_rr = load_reranker(ref, threads=s.threads)
    queries = [json.loads(x)["text"] for x in args.queries_file.read_text().splitlines()]
    queries = queries[: args.queries]
    with tempfile.TemporaryDirectory() as tmp:
        ce = CrossEncoder(str(fp32_copy(ref.path, Path(tmp) / "fp32")), device="cpu")
        ident = torch.nn.Identity()
        a_ms, b_ms, taus, diffs, tokens = [], [], [], [], []
        for q in queries:
            hits = p.search(q, k=20, rerank=False).hits
            pairs = [(q, index_text(h.chunk)) for h in hits]
            tokens.append(statistics.mean(len(onnx_rr.encode(*pr).ids) for pr in pairs))
            for _ in range(args.rounds):
                t = time.perf_counter()
                sa = onnx_rr.predict(pairs)
                a_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                sb = ce.predict([list(x) for x in pairs], activation_fn=ident)
                b_ms.append((time.perf_counter() - t) * 1000)
            oa = list(np.argsort(-sa)[:10])
            ob = list(np.argsort(-np.asarray(sb))[:10])
            taus.append(kendall_tau(oa, ob))
            diffs.append(float(np.max(np.abs(sa - np.asarray(sb)))))
    a, b = statistics.median(a_ms), statistics.median(b_ms)
    out = {
        "pairs": 20,
        "tokens_per_pair": round(statistics.mean(tokens), 1),
        "onnx_int8_ms_p50": round(a, 1),
        "st_fp32_ms_p50": round(b, 1),
        "speedup": round(b / a, 2),
        "pairs_per_s": round(20 / (a / 1000), 1),
        "kendall_tau_top10_min": round(min(taus), 3),
        "kendall_tau_top10_mean": round(statistics.mean(taus), 3),
        "max_logit_diff": round(max(diffs), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "queries": len(queries),
        "rounds": args.rounds,
    }
    for k_, v in out.items():
        print(f"{k_:24} {v}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
