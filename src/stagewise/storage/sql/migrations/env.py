"""Alembic environment: runs against the engine handed over in config.attributes."""

from __future__ import annotations

from alembic import context

from stagewise.storage.sql.tables import metadata

engine = context.config.attributes["engine"]

# Workers starting together on one PostgreSQL database migrate one at a time: the lock is
# held until this transaction commits, and the next one then finds the schema at head.
MIGRATION_LOCK = 0x5747_0001

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    context.configure(connection=connection, target_metadata=metadata)
    context.run_migrations()
