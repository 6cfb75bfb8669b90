"""The conformance suite through the stack the embedded server uses: execution records written
behind the request, over the read-through cache, over SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.storage.cached import CachedMetadataStore
from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.storage.write_behind import WriteBehindExecutions
from stagewise.testing.metadata_store import MetadataStoreConformance

pytestmark = pytest.mark.unit


def _stack(path: Path, recent_rows: int = 50_000) -> WriteBehindExecutions:
    return WriteBehindExecutions(
        CachedMetadataStore(SqlMetadataStore(f"sqlite:///{path}")), recent_rows=recent_rows
    )


class TestWriteBehindMetadataStore(MetadataStoreConformance):
    integrity_error = (IntegrityError,)

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[WriteBehindExecutions]:
        s = _stack(tmp_path / "metadata.db")
        yield s
        s.close()


def _run(execution_id: str, status: str = "completed") -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=execution_id, namespace_id="ns_1", mode="adhoc", status=status
    )


def test_records_reach_sql_and_survive_a_reopen(tmp_path: Path) -> None:
    db = tmp_path / "metadata.db"
    store = _stack(db)
    for i in range(200):
        store.save_execution(_run(f"exec_{i:04d}"), [{"document_id": f"d{i}"}])
    store.close()  # close writes what is queued
    reopened = SqlMetadataStore(f"sqlite:///{db}")
    try:
        _, total = reopened.list_executions("ns_1", retriever_id=None, mode="adhoc")
        assert total == 200
        assert reopened.get_execution_results("exec_0199", 0, 5) == [{"document_id": "d199"}]
    finally:
        reopened.close()


def test_a_running_record_is_snapshotted_and_its_results_kept(tmp_path: Path) -> None:
    store = _stack(tmp_path / "metadata.db")
    try:
        live = _run("exec_live", status="processing")
        store.save_execution(live)
        live.stages_completed = 3  # the runner keeps changing its live record
        seen = store.get_execution("ns_1", "exec_live")
        assert seen is not None and seen.stages_completed == 0
        live.status = "completed"
        store.save_execution(live, [{"document_id": "a"}, {"document_id": "b"}])
        store.save_execution(live)  # a record-only update keeps the snapshot
        assert store.get_execution_results("exec_live", 1, 5) == [{"document_id": "b"}]
        store.flush()
        assert store.inner.get_execution_results("exec_live", 0, 5) == [
            {"document_id": "a"},
            {"document_id": "b"},
        ]
        assert store.get_execution("other_ns", "exec_live") is None
    finally:
        store.close()


def test_memory_is_bounded_and_evicted_runs_are_read_from_sql(tmp_path: Path) -> None:
    store = _stack(tmp_path / "metadata.db", recent_rows=10)
    try:
        for i in range(8):
            store.save_execution(
                _run(f"exec_{i}"), [{"document_id": f"d{i}-{j}"} for j in range(3)]
            )
        assert sum(len(r or ()) for _, r in store._recent.values()) <= 10
        assert "exec_0" not in store._recent
        assert store.get_execution_results("exec_0", 2, 1) == [{"document_id": "d0-2"}]
        record = store.get_execution("ns_1", "exec_0")
        assert record is not None and record.status == "completed"
    finally:
        store.close()


def test_one_batch_may_carry_the_same_run_twice(tmp_path: Path) -> None:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        running = _run("exec_twice", status="processing")
        done = _run("exec_twice")
        store.save_executions([(running, [{"document_id": "a"}]), (done, None)])
        record = store.get_execution("ns_1", "exec_twice")
        assert record is not None and record.status == "completed"
        assert store.get_execution_results("exec_twice", 0, 5) == [{"document_id": "a"}]
    finally:
        store.close()


def test_finished_runs_read_from_sql_are_remembered_within_the_bounds(tmp_path: Path) -> None:
    db = tmp_path / "metadata.db"
    writer = _stack(db)
    for i in range(3):
        writer.save_execution(_run(f"exec_{i}"), [{"document_id": f"d{i}"}])
    writer.close()
    reader = _stack(db)
    try:
        assert reader._recent == {}
        first = reader.get_execution("ns_1", "exec_1")
        assert first is not None and "exec_1" in reader._recent
        assert reader.get_execution("ns_1", "exec_1") is first  # from memory now
        assert reader.get_execution("other_ns", "exec_1") is None
        assert reader.get_execution_results("exec_1", 0, 5) == [{"document_id": "d1"}]
    finally:
        reader.close()
