"""The IngestStore and BlobStore conformance suites on SQLite and the local disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stagewise.storage.blobs import LocalBlobStore
from stagewise.storage.sql.ingest_store import SqlIngestStore
from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.testing.blob_store import BlobStoreConformance
from stagewise.testing.ingest_store import IngestStoreConformance

pytestmark = pytest.mark.unit


class TestSqliteIngestStore(IngestStoreConformance):
    @pytest.fixture
    def ingest(self, tmp_path: Path) -> Iterator[SqlIngestStore]:
        metadata = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
        yield SqlIngestStore(metadata.engine)
        metadata.close()


class TestLocalBlobStore(BlobStoreConformance):
    @pytest.fixture
    def blobs(self, tmp_path: Path) -> LocalBlobStore:
        return LocalBlobStore(tmp_path / "blobs")

    def test_layout_is_two_levels_of_fan_out(self, tmp_path: Path) -> None:
        store = LocalBlobStore(tmp_path / "blobs")
        content_hash = store.put(b"layout")
        path = tmp_path / "blobs" / content_hash[:2] / content_hash[2:4] / content_hash
        assert path.read_bytes() == b"layout"
        assert [p.name for p in path.parent.iterdir()] == [content_hash]  # no temp file left
