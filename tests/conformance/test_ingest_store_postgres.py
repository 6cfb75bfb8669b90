"""The IngestStore conformance suite on PostgreSQL: one fresh database per test (never
skipped: an unreachable server fails the tests, as in test_postgres_store.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stagewise.storage.sql.ingest_store import SqlIngestStore
from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.testing.ingest_store import IngestStoreConformance
from tests.conformance.test_postgres_store import pg_admin, pg_database_url  # noqa: F401

pytestmark = pytest.mark.postgres


class TestPostgresIngestStore(IngestStoreConformance):
    @pytest.fixture
    def ingest(self, pg_database_url: str) -> Iterator[SqlIngestStore]:  # noqa: F811
        metadata = SqlMetadataStore(pg_database_url)
        assert metadata.engine.dialect.name == "postgresql"
        yield SqlIngestStore(metadata.engine)
        metadata.close()
