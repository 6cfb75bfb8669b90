"""The SearchIndex conformance suite against a real Qdrant server at STAGEWISE_QDRANT_URL
(with STAGEWISE_QDRANT_API_KEY if it wants one). Skipped when no server URL is set: CI has
no Qdrant server; run it with e.g. `STAGEWISE_QDRANT_URL=http://127.0.0.1:6333 pytest -m
qdrant_server`. Each test works under its own collection-name prefix and drops its
collections afterwards."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from qdrant_client import QdrantClient

from stagewise.storage.index.remote import QdrantSearchIndex
from stagewise.testing.search_index import SearchIndexConformance

pytestmark = pytest.mark.qdrant_server

URL = os.environ.get("STAGEWISE_QDRANT_URL", "").strip()
if not URL.startswith(("http://", "https://")):
    pytest.skip(
        "STAGEWISE_QDRANT_URL names no Qdrant server (http://HOST:PORT)", allow_module_level=True
    )


class TestQdrantServerSearchIndex(SearchIndexConformance):
    @pytest.fixture
    def index(self) -> Iterator[QdrantSearchIndex]:
        client = QdrantClient(url=URL, api_key=os.environ.get("STAGEWISE_QDRANT_API_KEY"))
        prefix = f"stagewise_test_{secrets.token_hex(4)}_"
        ix = QdrantSearchIndex(client, prefix)
        yield ix
        for c in client.get_collections().collections:
            if c.name.startswith(prefix):
                client.delete_collection(c.name)
        ix.close()
