"""The TaxonomyStore conformance suite on SQLite and on PostgreSQL (a fresh database each)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.storage.sql.taxonomy_store import SqlTaxonomyStore
from stagewise.testing.taxonomy_store import TaxonomyStoreConformance
from tests.support.pg import admin_engine, fresh_database


def _opened(url: str) -> Iterator[SqlTaxonomyStore]:
    # The metadata store runs the migrations and owns the engine, as in open_stores.
    sql = SqlMetadataStore(url)
    yield SqlTaxonomyStore(sql.engine)
    sql.close()


@pytest.mark.unit
class TestSqliteTaxonomyStore(TaxonomyStoreConformance):
    @pytest.fixture
    def taxonomies(self, tmp_path: Path) -> Iterator[SqlTaxonomyStore]:
        yield from _opened(f"sqlite:///{tmp_path / 'metadata.db'}")


@pytest.mark.postgres
class TestPostgresTaxonomyStore(TaxonomyStoreConformance):
    @pytest.fixture
    def taxonomies(self) -> Iterator[SqlTaxonomyStore]:
        admin = admin_engine()
        try:
            with fresh_database(admin, "stagewise_taxonomy") as url:
                yield from _opened(url)
        finally:
            admin.dispose()
