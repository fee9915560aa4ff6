"""The catalog reads what is indexed without any model: the CLI's model-free commands and
the server's read tools and resources go through it."""

from __future__ import annotations

import contextlib

import pytest

from mcp_rag.app.catalog import Catalog
from mcp_rag.errors import IndexNotFoundError, QueryError


def test_the_catalog_of_an_index_needs_no_model(indexed):
    with contextlib.closing(Catalog.open(indexed)) as cat:
        status = cat.status()
        assert status.docs == 6 and status.reranker is None
        assert [c.name for c in cat.collections().collections] == ["default"]
        doc = cat.get_document("support/error-codes.md", 0, 40)
        assert doc.text == cat.document("support/error-codes.md").text[:40]
        ids, total = cat.complete_doc_ids("policies/")
        assert ids == ["policies/refund-policy-2023.md", "policies/refund-policy.md"]
        assert total == 2
        chunk = cat.get_chunk(f"{ids[0]}#0", neighbors=1)
        assert chunk.chunk.doc_id == ids[0]
        with pytest.raises(QueryError, match="no document 'missing.md'"):
            cat.get_document("missing.md")


def test_no_index_is_an_error_that_names_the_fix(settings):
    with pytest.raises(IndexNotFoundError, match="index PATH"):
        Catalog.open(settings)
