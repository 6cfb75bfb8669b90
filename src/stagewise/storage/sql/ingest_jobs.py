"""Batches, their items and tasks in SQL; mixed into SqlIngestStore."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from stagewise.domain.ingest_records import BatchItem, BatchRecord, TaskRecord
from stagewise.storage.sql import tables as t
from stagewise.storage.sql.ingest_rows import R, as_conflict, as_row, from_row

UNFINISHED_TASKS = ("PENDING", "IN_PROGRESS")


class JobTables:
    engine: Engine

    # ---- one row by its key (the table's first column), shared by every record kind
    def _create(self, table: sa.Table, record: BaseModel, what: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(table.insert().values(**as_row(record, table)))
        except IntegrityError as exc:
            raise as_conflict(exc, what) from exc

    def _get(self, table: sa.Table, cls: type[R], key: str) -> R | None:
        column = next(iter(table.primary_key.columns))
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(column == key)).mappings().first()
        return None if row is None else from_row(cls, row)

    def _update(self, table: sa.Table, record: BaseModel) -> None:
        column = next(iter(table.primary_key.columns))
        values = as_row(record, table)
        with self.engine.begin() as conn:
            conn.execute(table.update().where(column == values[column.name]).values(**values))

    # ---- batches
    def create_batch(self, batch: BatchRecord) -> None:
        self._create(t.batches, batch, "The batch")

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        return self._get(t.batches, BatchRecord, batch_id)

    def update_batch(self, batch: BatchRecord) -> None:
        self._update(t.batches, batch)

    def list_batches(
        self,
        namespace_id: str | None,
        *,
        bucket_id: str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[BatchRecord], int]:
        c = t.batches.c
        where = [
            cond
            for cond, value in (
                (c.namespace_id == namespace_id, namespace_id),
                (c.bucket_id == bucket_id, bucket_id),
                (c.status == status, status),
            )
            if value is not None
        ]
        return self._page(t.batches, BatchRecord, where, c.batch_id, offset, limit)

    def _page(
        self,
        table: sa.Table,
        cls: type[R],
        where: list[Any],
        id_column: sa.Column[Any],
        offset: int,
        limit: int,
    ) -> tuple[list[R], int]:
        """Newest first (batches and tasks are activity: the latest is page one), with the
        number of rows that match."""
        count = sa.select(sa.func.count()).select_from(table).where(*where)
        query = (
            sa.select(table)
            .where(*where)
            .order_by(table.c.created_at.desc(), id_column.desc())
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            total = int(conn.execute(count).scalar_one())
            rows = conn.execute(query).mappings().all()
        return [from_row(cls, r) for r in rows], total

    def delete_batch(self, batch_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.batches.delete().where(t.batches.c.batch_id == batch_id))
            conn.execute(t.batch_items.delete().where(t.batch_items.c.batch_id == batch_id))

    # ---- batch items
    def put_batch_items(self, items: Sequence[BatchItem]) -> None:
        if not items:
            return
        last = {(i.batch_id, i.object_id): as_row(i, t.batch_items) for i in items}
        stmt = (pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert)(
            t.batch_items
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=["batch_id", "object_id"],
            set_={
                c: stmt.excluded[c] for c in ("status", "documents_written", "body", "updated_at")
            },
        )
        with self.engine.begin() as conn:
            conn.execute(upsert, list(last.values()))

    def get_batch_items(self, batch_id: str) -> list[BatchItem]:
        i = t.batch_items.c
        query = sa.select(t.batch_items).where(i.batch_id == batch_id).order_by(i.object_id)
        with self.engine.connect() as conn:
            return [from_row(BatchItem, r) for r in conn.execute(query).mappings()]

    def batch_item_counts(self, batch_id: str) -> dict[str, int]:
        i = t.batch_items.c
        query = (
            sa.select(i.status, sa.func.count()).where(i.batch_id == batch_id).group_by(i.status)
        )
        with self.engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(query)}

    def batch_item_totals(self, batch_id: str) -> dict[str, tuple[int, int]]:
        i = t.batch_items.c
        query = (
            sa.select(i.status, sa.func.count(), sa.func.sum(i.documents_written))
            .where(i.batch_id == batch_id)
            .group_by(i.status)
        )
        with self.engine.connect() as conn:
            return {status: (int(n), int(docs or 0)) for status, n, docs in conn.execute(query)}

    def failed_batch_items(self, batch_id: str, limit: int) -> list[BatchItem]:
        i = t.batch_items.c
        query = (
            sa.select(t.batch_items)
            .where(i.batch_id == batch_id, i.status == "FAILED")
            .order_by(i.object_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [from_row(BatchItem, r) for r in conn.execute(query).mappings()]

    # ---- tasks
    def create_task(self, task: TaskRecord) -> None:
        self._create(t.tasks, task, "The task")

    def get_task(self, task_id: str) -> TaskRecord | None:
        return self._get(t.tasks, TaskRecord, task_id)

    def update_task(self, task: TaskRecord) -> None:
        self._update(t.tasks, task)

    def list_tasks(
        self,
        namespace_ids: Sequence[str] | None,
        *,
        status: str | None = None,
        task_type: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[TaskRecord], int]:
        c = t.tasks.c
        where: list[Any] = []
        if namespace_ids is not None:
            where.append(c.namespace_id.in_(list(namespace_ids)))
        if status is not None:
            where.append(c.status == status)
        if task_type is not None:
            where.append(c.task_type == task_type)
        return self._page(t.tasks, TaskRecord, where, c.task_id, offset, limit)

    def unfinished_tasks(self) -> list[TaskRecord]:
        c = t.tasks.c
        query = (
            sa.select(t.tasks)
            .where(c.status.in_(UNFINISHED_TASKS))
            .order_by(c.created_at, c.task_id)
        )
        with self.engine.connect() as conn:
            return [from_row(TaskRecord, r) for r in conn.execute(query).mappings()]
