"""The MetadataStore conformance suite on SQLite: one fresh database file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.testing.metadata_store import MetadataStoreConformance

pytestmark = pytest.mark.unit


class TestSqliteMetadataStore(MetadataStoreConformance):
    integrity_error = (IntegrityError,)

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlMetadataStore]:
        s = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
        yield s
        s.close()
