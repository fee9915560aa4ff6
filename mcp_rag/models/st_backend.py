"""The optional sentence-transformers backend: imported only when a model needs it."""

from __future__ import annotations

from types import ModuleType


def import_sentence_transformers(threads: int | None) -> tuple[ModuleType, ModuleType]:
    """(sentence_transformers, torch), with torch limited to ``threads`` CPU threads.

    Raises ImportError with the install line when the ``st`` extra is missing.
    """
    try:
        import sentence_transformers
        import torch
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            "The sentence-transformers backend needs the 'st' extra: "
            "pip install 'mcp-rag-server[st]' torch==2.13.0"
        ) from e
    if threads:
        torch.set_num_threads(threads)
    return sentence_transformers, torch
