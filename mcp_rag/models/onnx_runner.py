"""Running a BERT-style ONNX model on the CPU: padding, length-sorted batches, threads.

Measured on a 2-core machine with the pack's dynamic-int8 models: one text (or pair) per
call is the fastest way to run them, and the only one where a text's result does not
depend on the others in its batch (activations are quantised with one scale per batch).
For many inputs, one single-threaded session is run from ``threads`` Python threads at
once (onnxruntime releases the GIL): identical outputs, as fast or faster than one
multi-threaded session. A single input uses the multi-threaded session for latency.

``exact``: int8 products as the weights give them on every CPU (``saturates``,
``PRECISE_INT8``). On x86 without VNNI (AVX2 only, AVX-512 without VNNI) onnxruntime's
default u8s8 kernel adds pairs of products in 16 bits, which saturate: the pack's
cross-encoder scores about 0.18 logits higher on an AVX2-only AMD EPYC than with exact
products (what VNNI computes) or in fp32. Off by default: measured, it changes 2 of 3,034
answer decisions and costs 15 % (docs: Evaluation, Speed).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import platform
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# onnxruntime's session option (kOrtSessionOptionsAvx2PrecisionMode): the int8 weights are
# made uint8 at load time and multiplied by the exact u8u8 kernel instead of the u8s8 one.
# Set only where the u8s8 kernel saturates (``saturates``): its test for that is coarse
# and would swap a VNNI or AMX machine's fast exact kernel for the slower u8u8 one too.
# Measured on a 2-core AVX2-only AMD EPYC: the cross-encoder's logits 0.011 from an fp32
# copy of its weights (median; 0.197 without), the embedder's vectors unchanged to the
# bit (so only the cross-encoder takes ``exact``), `answer` 15 % slower.
PRECISE_INT8 = ("session.x64quantprecision", "1")
# CPU flags (Linux's names) of int8 dot products that add in 32 bits: VNNI, AMX.
_EXACT_INT8 = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def cpu_flags() -> tuple[str, frozenset[str]]:
    """This CPU's model name and its flags as Linux names them; elsewhere what numpy
    detects (x86 only; lower-cased, ``AVX512VNNI`` as ``avx512_vnni``)."""
    name, flags = platform.processor() or "unknown", frozenset[str]()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = frozenset(line.split(":", 1)[1].split())
    if not flags:  # numpy 2 (numpy 1: numpy.core)
        for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
            with contextlib.suppress(ImportError, AttributeError):
                features = importlib.import_module(module).__cpu_features__
                flags = frozenset({"avx512_vnni" if f == "AVX512VNNI" else f.lower()
                                   for f, on in features.items() if on})
                break
    return name, flags


@functools.cache
def saturates() -> bool:
    """Whether onnxruntime's default int8 products saturate on this CPU: x86 with SSE4.1 or
    AVX2 (its u8s8 kernels add pairs of products in 16 bits) and no VNNI or AMX."""
    _, flags = cpu_flags()
    return bool(flags & {"sse4_1", "sse41", "avx2"}) and not flags & _EXACT_INT8


def onnx_session(model_path: Path, threads: int, exact: bool = False):
    """An onnxruntime CPU session with full graph optimisation and ``threads`` intra-op
    threads; ``exact``: exact int8 products (``PRECISE_INT8`` where the default ones
    saturate)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if exact and saturates():
        so.add_session_config_entry(*PRECISE_INT8)
    return ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (shortest first), to cut padding."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class OnnxModel:
    """An ONNX encoder fed with ``tokenizers`` encodings; outputs in the caller's order."""

    def __init__(self, model_path: Path, threads: int | None = None, exact: bool = False) -> None:
        self.model_path = Path(model_path)
        self.threads = threads or os.cpu_count() or 1
        self.exact = exact
        self.session = onnx_session(self.model_path, self.threads, exact)
        self.input_names = [i.name for i in self.session.get_inputs()]
        # A single-threaded session for parallel bulk work and the threads that run it,
        # made on first use and kept (a new pool per call cost ~5 ms a query).
        self._bulk = None
        self._pool: ThreadPoolExecutor | None = None
        self._init = threading.Lock()

    def feeds(self, encodings: Sequence) -> dict[str, np.ndarray]:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for r, e in enumerate(encodings):
            n = len(e.ids)
            ids[r, :n] = e.ids
            mask[r, :n] = 1
            types[r, :n] = e.type_ids
        all_feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {k: all_feeds[k] for k in self.input_names}

    def run(self, encodings: Sequence, session=None) -> tuple[np.ndarray, np.ndarray]:
        """(first output, attention mask) for one padded batch."""
        f = self.feeds(encodings)
        out = (session or self.session).run(None, f)[0]
        mask = f.get("attention_mask")
        if mask is None:
            mask = (f["input_ids"] != 0).astype(np.int64)
        return out, mask

    def map(
        self,
        encodings: Sequence,
        post: Callable[[np.ndarray, np.ndarray], np.ndarray],
        batch_size: int = 1,
        progress: Callable[[int], None] | None = None,
    ) -> list[np.ndarray]:
        """``post(output, mask)`` of every encoding, batched by length, in the input order."""
        results: list[np.ndarray | None] = [None] * len(encodings)
        batches = length_sorted_batches([len(e.ids) for e in encodings], batch_size)

        def one(batch: list[int], session=None) -> list[int]:
            out = post(*self.run([encodings[i] for i in batch], session))
            for row, i in enumerate(batch):
                results[i] = out[row]
            return batch

        if self.threads > 1 and len(batches) > 1:
            if self._bulk is None:
                with self._init:
                    if self._bulk is None:
                        self._pool = ThreadPoolExecutor(self.threads, "onnx")
                        self._bulk = onnx_session(self.model_path, 1, self.exact)
            for batch in self._pool.map(lambda b: one(b, self._bulk), batches):
                if progress:
                    progress(len(batch))
        else:
            for batch in batches:
                one(batch)
                if progress:
                    progress(len(batch))
        done = [r for r in results if r is not None]
        assert len(done) == len(results), "a batch left an encoding without a result"
        return done
