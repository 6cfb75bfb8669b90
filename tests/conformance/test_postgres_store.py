"""The MetadataStore conformance suite on PostgreSQL: one fresh database per test.

Each test creates a uniquely named database through an autocommit connection to the `postgres`
database and drops it afterwards, so runs (and parallel runs) never see each other's rows. The
server must be reachable: if it is not, the tests fail; they are never skipped.
Override the server with STAGEWISE_TEST_POSTGRES_URL (a URL of its `postgres` database).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import NullPool

from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.testing.metadata_store import MetadataStoreConformance

pytestmark = pytest.mark.postgres

ADMIN_URL = os.environ.get(
    "STAGEWISE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _driver_url(url: str) -> str:
    return "postgresql+psycopg://" + url.removeprefix("postgresql://")


@pytest.fixture(scope="module")
def pg_admin() -> Iterator[Engine]:
    """An autocommit engine on the `postgres` database (CREATE/DROP DATABASE need autocommit)."""
    engine = sa.create_engine(
        _driver_url(ADMIN_URL),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )
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
    name = f"stagewise_conformance_{uuid.uuid4().hex[:16]}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class TestPostgresMetadataStore(MetadataStoreConformance):
    integrity_error = (IntegrityError,)

    @pytest.fixture
    def store(self, pg_database_url: str) -> Iterator[SqlMetadataStore]:
        s = SqlMetadataStore(pg_database_url)
        assert s.engine.dialect.name == "postgresql"
        yield s
        s.close()
