"""The SearchIndex conformance suite on embedded Qdrant Edge shards: a fresh root per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stagewise.storage.index.edge import EdgeSearchIndex
from stagewise.testing.search_index import SearchIndexConformance

pytestmark = pytest.mark.unit


class TestEdgeSearchIndex(SearchIndexConformance):
    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[EdgeSearchIndex]:
        ix = EdgeSearchIndex(tmp_path / "index")
        yield ix
        ix.close()
