"""Export a sentence-transformers model to int8 ONNX for the onnxruntime backends.

``export_model`` loads a cross-encoder (``...ForSequenceClassification``, one logit) or a
bi-encoder with ``transformers``, exports it with ``torch.onnx.export``, quantises the
weights to int8 with onnxruntime's dynamic quantisation, copies the tokenizer (and the
pooling config of a bi-encoder) beside it, then scores sample inputs with the original
(sentence-transformers, fp32) and with the exported model through mcp-rag's own ONNX
backend, and reports the largest difference. Needs the ``export`` extra (torch, onnx).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_PAIRS = [
    ("how long is the refund window?", "Customers may request a refund within 30 days."),
    ("how long is the refund window?", "Cats sleep for most of the day."),
    ("what does error KB-ERR-2847 mean", "KB-ERR-2847: storage quota exceeded."),
    ("P1 incident response time", "A P1 incident on the Enterprise plan pages on-call at once."),
    ("vitamin D and bone density", "Vitamin D supplementation increased bone mineral density."),
    ("who wrote the report", "The report was written by the audit team in 2024."),
]


@dataclass(frozen=True)
class ExportReport:
    path: Path
    kind: str
    quantized: bool
    pairs: int
    max_abs_diff: float
    metric: str


def _kind_of(location: str) -> Literal["cross-encoder", "bi-encoder"]:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(location)
    archs = cfg.architectures or []
    return "cross-encoder" if any("SequenceClassification" in a for a in archs) else "bi-encoder"


def export_model(
    spec: str,
    out_dir: Path,
    *,
    kind: Literal["auto", "cross-encoder", "bi-encoder"] = "auto",
    quantize: bool = True,
    opset: int = 17,
) -> ExportReport:
    """Export ``spec`` (Hugging Face id or local folder) to ``out_dir``; check it; report."""
    try:
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            "Export needs the 'export' extra: pip install 'mcp-rag-server[export]' torch==2.13.0"
        ) from e
    if kind == "auto":
        kind = _kind_of(spec)
    out_dir = Path(out_dir)
    tok = AutoTokenizer.from_pretrained(spec)
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"{spec}: needs a fast tokenizer (tokenizer.json) for onnxruntime")
    cls = AutoModelForSequenceClassification if kind == "cross-encoder" else AutoModel
    model = cls.from_pretrained(spec).eval()
    sample = tok(["a query"], ["a passage"], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    output = "logits" if kind == "cross-encoder" else "last_hidden_state"
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output] = {0: "batch"} if kind == "cross-encoder" else {0: "batch", 1: "sequence"}

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            out = self.inner(**dict(zip(names, args, strict=True)))
            return out.logits if kind == "cross-encoder" else out.last_hidden_state

    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "model"
        staging.mkdir()
        fp32 = Path(tmp) / "model-fp32.onnx"
        # The exporter warns about ops it rewrites (advanced indexing, SDPA); the result is
        # checked against the original below, which is what matters.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Wrapper(model),
                tuple(sample[n] for n in names),
                str(fp32),
                input_names=names,
                output_names=[output],
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
        _finish_onnx(fp32, staging / "model.onnx", quantize)
        tok.save_pretrained(str(staging))
        model.config.save_pretrained(str(staging))
        if kind == "bi-encoder":
            (staging / "1_Pooling").mkdir()
            (staging / "1_Pooling" / "config.json").write_text(json.dumps(_pooling(spec)))
        (staging / "export.json").write_text(
            json.dumps({"source": spec, "kind": kind, "quantized": quantize, "opset": opset})
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), str(out_dir))
    diff, metric = _compare(spec, out_dir, kind)
    return ExportReport(out_dir, kind, quantize, len(SAMPLE_PAIRS), diff, metric)


def _finish_onnx(fp32: Path, dest: Path, quantize: bool) -> None:
    """The fp32 export at ``dest``, dynamically quantised to int8 weights when asked."""
    if not quantize:
        shutil.copy(fp32, dest)
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(fp32), str(dest), weight_type=QuantType.QInt8)


def _pooling(spec: str) -> dict:
    """The bi-encoder's pooling as sentence-transformers runs it, in its config file's form."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(spec, device="cpu")
    mode = "mean"
    modules: list[Any] = list(st)
    for module in modules:
        cfg = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
        if "pooling_mode" in cfg:
            mode = cfg["pooling_mode"]
        elif cfg.get("pooling_mode_cls_token"):
            mode = "cls"
    if mode not in ("mean", "cls"):
        raise ValueError(f"{spec}: pooling {mode!r} is not supported by the ONNX backend")
    return {"pooling_mode_mean_tokens": mode == "mean", "pooling_mode_cls_token": mode == "cls"}


def _compare(spec: str, out_dir: Path, kind: str) -> tuple[float, str]:
    """Largest difference between the original (fp32, sentence-transformers) and the export."""
    if kind == "cross-encoder":
        import torch
        from sentence_transformers import CrossEncoder

        from mcp_rag.models.rerank import OnnxReranker

        ref = CrossEncoder(spec, device="cpu").predict(
            [list(p) for p in SAMPLE_PAIRS], activation_fn=torch.nn.Identity()
        )
        got = OnnxReranker(out_dir, "exported").predict(SAMPLE_PAIRS)
        return float(np.max(np.abs(np.asarray(ref) - got))), "logit"
    from sentence_transformers import SentenceTransformer

    from mcp_rag.models.embedding import OnnxEmbedder
    from mcp_rag.models.pack import resolve

    texts = [t for pair in SAMPLE_PAIRS for t in pair]
    ref = SentenceTransformer(spec, device="cpu").encode(texts, normalize_embeddings=True)
    r = resolve(str(out_dir), out_dir, "embedder")
    got = OnnxEmbedder(out_dir, "exported", pooling=r.pooling).embed_documents(texts)
    return float(np.max(np.abs(ref - got))), "vector component (L2-normalised)"
