"""The MetadataStore conformance suite on SQLite: one fresh database file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from stagewise.storage.sql import tables as t
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


def test_upgrade_from_0007_carries_rankings_into_chunks_and_back(tmp_path: Path) -> None:
    """0008 moves each stored ranking from one row per document into chunks, in order, and
    its downgrade moves them back."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    config = alembic_config(engine)
    command.upgrade(config, "0007")
    ranked = {"exec_a": 230, "exec_b": 1, "exec_c": 100}
    with engine.begin() as conn:
        for eid, n in ranked.items():
            conn.exec_driver_sql(
                "INSERT INTO executions (execution_id, namespace_id, retriever_id, mode, "
                "status, inputs_hash, body, created_at) VALUES "
                f"('{eid}', 'ns_1', NULL, 'adhoc', 'completed', 'h', '{{}}', "
                "'2024-01-01 00:00:00')"
            )
            # Inserted out of order: the copy must follow positions, not insertion order.
            for position in reversed(range(n)):
                conn.exec_driver_sql(
                    "INSERT INTO execution_results (execution_id, position, document) "
                    f"VALUES ('{eid}', {position}, '{{\"document_id\": \"{eid}-{position}\"}}')"
                )
    command.upgrade(config, "0008")
    engine.dispose()
    store = SqlMetadataStore(url)
    try:
        for eid, n in ranked.items():
            got = store.get_execution_results(eid, 0, 1000)
            assert [d["document_id"] for d in got] == [f"{eid}-{i}" for i in range(n)]
        assert store.get_execution_results("exec_a", 199, 3) == [
            {"document_id": "exec_a-199"},
            {"document_id": "exec_a-200"},
            {"document_id": "exec_a-201"},
        ]
    finally:
        store.close()
    engine = make_engine(url)
    command.downgrade(alembic_config(engine), "0007")
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT execution_id, position, document FROM execution_results "
            "ORDER BY execution_id, position"
        ).all()
    engine.dispose()
    expected = [(eid, i) for eid in sorted(ranked) for i in range(ranked[eid])]
    assert [(eid, pos) for eid, pos, _ in rows] == expected
    assert all(f'"{eid}-{pos}"' in doc for eid, pos, doc in rows)


@pytest.mark.parametrize(
    ("ours", "before"),
    [
        ({"retriever_interactions", "retriever_interaction_types"}, "0008"),
        ({"evaluation_datasets"}, "0009"),
    ],
)
def test_migration_tables_match_tables_py_and_downgrade(
    tmp_path: Path, ours: set[str], before: str
) -> None:
    """A migration creates what storage/sql/tables.py declares (columns, keys, indexes),
    and its downgrade drops its tables."""
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), t.metadata)
    mine = [d for d in diffs if ours & {getattr(x, "name", None) for x in _tables_of(d)}]
    assert mine == []
    assert ours <= set(inspect(engine).get_table_names())
    command.downgrade(alembic_config(engine), before)
    assert not ours & set(inspect(engine).get_table_names())
    engine.dispose()


def _tables_of(diff: object) -> list[object]:
    """The tables (or indexes' tables) an autogenerate diff entry names."""
    parts = diff if isinstance(diff, list) else [diff]
    found: list[object] = []
    for part in parts:
        for item in part if isinstance(part, tuple) else (part,):
            found.append(getattr(item, "table", item))
    return found
