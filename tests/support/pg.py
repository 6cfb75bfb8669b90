"""PostgreSQL for tests: an autocommit engine on the server's `postgres` database, and fresh,
uniquely named databases that are dropped afterwards (so runs never see each other's rows).
Override the server with STAGEWISE_TEST_POSTGRES_URL (a URL of its `postgres` database)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

ADMIN_URL = os.environ.get(
    "STAGEWISE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def admin_engine() -> Engine:
    """CREATE and DROP DATABASE need autocommit."""
    return sa.create_engine(
        "postgresql+psycopg://" + ADMIN_URL.removeprefix("postgresql://"),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )


def drop_database(admin: Engine, name: str) -> None:
    """Drop a database even while clients are connected to it (their sessions end)."""
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(admin: Engine, prefix: str) -> Iterator[str]:
    """The URL of a new database, dropped on exit if it is still there."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        drop_database(admin, name)
