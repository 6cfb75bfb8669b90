"""The conformance suite through the read-through cache the embedded default uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from stagewise.storage.cached import CachedMetadataStore
from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.testing.metadata_store import MetadataStoreConformance

pytestmark = pytest.mark.unit


class TestCachedSqliteMetadataStore(MetadataStoreConformance):
    integrity_error = (IntegrityError,)

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[CachedMetadataStore]:
        s = CachedMetadataStore(SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}"))
        yield s
        s.close()
