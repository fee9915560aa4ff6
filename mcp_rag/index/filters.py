"""Search filters: which fields there are, their checks, and what each backend makes of them.

The embedded index turns them into a mask over its documents; a server backend into its
own boolean expression. Both read the same fields, and refuse the same bad ones.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from mcp_rag.errors import QueryError

FILTER_FIELDS = {
    "source": "a glob on the source path, e.g. '*/policies/*.md'",
    "doc_id_prefix": "documents whose id starts with this, e.g. 'policies/'",
    "collection": "documents of this named collection (see list_collections)",
}


def check(filters: Mapping[str, str] | None,
          collections: Callable[[], Sequence[str]]) -> dict[str, str]:
    """The filters that apply (empty values dropped); raises QueryError on an unknown field
    or collection, naming the valid ones. ``collections`` is asked only for a collection
    filter (a server backend looks them up)."""
    if not filters:
        return {}
    unknown = set(filters) - set(FILTER_FIELDS)
    if unknown:
        raise QueryError(
            f"unknown filter field(s) {sorted(unknown)}; valid fields: "
            + "; ".join(f"{k}: {v}" for k, v in FILTER_FIELDS.items())
        )
    name = filters.get("collection")
    if name is not None and name not in (names := collections()):
        raise QueryError(f"no collection {name!r}; the collections are: {', '.join(names)}")
    return {k: v for k, v in filters.items() if v}


def doc_mask(filters: Mapping[str, str], doc_ids: Sequence[str], sources: Sequence[str],
             collections: Sequence[str]) -> np.ndarray:
    """Which documents (in the order given) the checked ``filters`` let through."""
    ok = np.ones(len(doc_ids), dtype=bool)
    if src := filters.get("source"):
        # Compiled here, not through fnmatch's own cache, which keeps up to 32,768
        # patterns: a client sending distinct globs would grow memory without bound.
        match = re.compile(fnmatch.translate(src)).match
        ok &= np.array([match(s) is not None for s in sources], dtype=bool)
    if prefix := filters.get("doc_id_prefix"):
        ok &= np.array([d.startswith(prefix) for d in doc_ids], dtype=bool)
    if name := filters.get("collection"):
        ok &= np.array([c == name for c in collections], dtype=bool)
    return ok
