"""The MetadataStore conformance suite on PostgreSQL: one fresh database per test.

Each test creates a uniquely named database through an autocommit connection to the `postgres`
database and drops it afterwards, so runs (and parallel runs) never see each other's rows. The
server must be reachable: if it is not, the tests fail; they are never skipped.
Override the server with STAGEWISE_TEST_POSTGRES_URL (a URL of its `postgres` database).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.testing.metadata_store import MetadataStoreConformance
from tests.support.pg import ADMIN_URL, admin_engine, fresh_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_admin() -> Iterator[Engine]:
    """An autocommit engine on the `postgres` database (CREATE/DROP DATABASE need autocommit)."""
    engine = admin_engine()
    problem: str | None = None
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        problem = str(exc.orig or exc).strip()
    if problem is not None:  # failed outside the except block: no chained traceback
        engine.dispose()
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(ADMIN_URL).render_as_string()}: "
            f"{problem}\nThe postgres-marked tests need a running server; they never skip "
            "(deselect them with -m 'not postgres').",
            pytrace=False,
        )
    yield engine
    engine.dispose()


@pytest.fixture
def pg_database_url(pg_admin: Engine) -> Iterator[str]:
    """A fresh, uniquely named database for one test; dropped afterwards."""
    with fresh_database(pg_admin, "stagewise_conformance") as url:
        yield url


class TestPostgresMetadataStore(MetadataStoreConformance):
    integrity_error = (IntegrityError,)

    @pytest.fixture
    def store(self, pg_database_url: str) -> Iterator[SqlMetadataStore]:
        s = SqlMetadataStore(pg_database_url)
        assert s.engine.dialect.name == "postgresql"
        yield s
        s.close()
