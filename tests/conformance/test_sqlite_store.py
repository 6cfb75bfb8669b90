"""The MetadataStore conformance suite on SQLite: one fresh database file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.exc import IntegrityError

from stagewise.storage.sql.engine import make_engine
from stagewise.storage.sql.migrate import alembic_config
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


def test_upgrade_from_0006_keeps_executions_and_adds_trace_id(tmp_path: Path) -> None:
    """A database from before 0007 upgrades in place: its runs read back with no trace_id,
    and new runs store one."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    command.upgrade(alembic_config(engine), "0006")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO executions (execution_id, namespace_id, retriever_id, mode, status, "
            "inputs_hash, body, created_at) VALUES ('exec_old', 'ns_1', NULL, 'adhoc', "
            "'completed', 'h', '{}', '2024-01-01 00:00:00')"
        )
    engine.dispose()
    store = SqlMetadataStore(url)  # migrates to head
    try:
        old = store.get_execution("ns_1", "exec_old")
        assert old is not None and old.status == "completed" and old.trace_id is None
        store.save_execution(old.model_copy(update={"execution_id": "exec_new", "trace_id": "t1"}))
        new = store.get_execution("ns_1", "exec_new")
        assert new is not None and new.trace_id == "t1"
    finally:
        store.close()
