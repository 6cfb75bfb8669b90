"""IngestStore over SQLAlchemy Core (SQLite and PostgreSQL), on the metadata store's engine.

Locking: every object write first writes its bucket's row (the counters, or a no-op update),
so writers of one bucket take the same lock first and in the same order. That keeps the
counters exact under concurrency, serialises a bucket delete against object writes (no object
is committed into a deleted bucket), and on SQLite makes every transaction a writer from its
first statement (a read-then-write transaction could fail with SQLITE_BUSY_SNAPSHOT).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from stagewise.domain.ingest_records import (
    BatchItem,
    BatchRecord,
    BucketRecord,
    ObjectRecord,
    TaskRecord,
)
from stagewise.errors import Conflict, NotFound
from stagewise.ids import utc_now
from stagewise.storage.sql import tables as t

R = TypeVar("R", bound=BaseModel)
_CHUNK = 500  # ids per IN (...) list
UNFINISHED_TASKS = ("PENDING", "IN_PROGRESS")
_COUNTERS = {"object_count", "total_size_bytes"}


def _aware(value: Any) -> Any:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _values(record: BaseModel, table: sa.Table) -> dict[str, Any]:
    """A record as a row: the table's columns, and everything else in `body`."""
    columns = {col.name for col in table.columns if col.name != "body"}
    dumped = record.model_dump()
    row = {c: dumped[c] for c in columns}
    row["body"] = record.model_dump(mode="json", exclude=columns)
    return row


def _record(cls: type[R], row: RowMapping) -> R:
    columns = {k: _aware(v) for k, v in row.items() if k != "body"}
    return cls(**{**row["body"], **columns})


def _conflict(exc: IntegrityError, what: str) -> Conflict:
    text = str(exc.orig or exc).lower()
    if "unique_key" in text:
        return Conflict("An object with this unique key already exists", code="unique_key_exists")
    if "idempotency_key" in text:
        return Conflict(
            "An object with this idempotency_key already exists", code="idempotency_key_exists"
        )
    if "bucket_name" in text:
        return Conflict("A bucket with this name already exists", code="bucket_name_taken")
    return Conflict(f"{what} already exists", code="conflict")


class SqlIngestStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # migrated by SqlMetadataStore, which owns and disposes of it

    def _insert(self) -> Any:
        return pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert

    # ---- buckets
    def create_bucket(self, bucket: BucketRecord) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(t.buckets.insert().values(**_values(bucket, t.buckets)))
        except IntegrityError as exc:
            raise _conflict(exc, "The bucket") from exc

    def get_bucket(self, namespace_id: str, identifier: str) -> BucketRecord | None:
        c = t.buckets.c
        query = sa.select(t.buckets).where(
            c.namespace_id == namespace_id,
            sa.or_(c.bucket_id == identifier, c.bucket_name == identifier),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        rows = sorted(rows, key=lambda r: r["bucket_id"] != identifier)  # an id wins
        return _record(BucketRecord, rows[0]) if rows else None

    def get_bucket_by_id(self, bucket_id: str) -> BucketRecord | None:
        query = sa.select(t.buckets).where(t.buckets.c.bucket_id == bucket_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _record(BucketRecord, row)

    def list_buckets(
        self, namespace_id: str, *, search: str | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[list[BucketRecord], int]:
        c = t.buckets.c
        where = [c.namespace_id == namespace_id]
        if search:
            escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(sa.func.lower(c.bucket_name).like(f"%{escaped}%", escape="\\"))
        count = sa.select(sa.func.count()).select_from(t.buckets).where(*where)
        query = (
            sa.select(t.buckets)
            .where(*where)
            .order_by(c.created_at, c.bucket_id)
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            total = int(conn.execute(count).scalar_one())
            rows = conn.execute(query).mappings().all()
        return [_record(BucketRecord, r) for r in rows], total

    def update_bucket(self, bucket: BucketRecord) -> None:
        # The counters are the store's own: an update never writes them.
        values = {k: v for k, v in _values(bucket, t.buckets).items() if k not in _COUNTERS}
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    t.buckets.update()
                    .where(t.buckets.c.bucket_id == bucket.bucket_id)
                    .values(**values)
                )
        except IntegrityError as exc:
            raise _conflict(exc, "The bucket") from exc

    def delete_bucket(self, bucket_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.buckets.delete().where(t.buckets.c.bucket_id == bucket_id))
            o = t.bucket_objects
            conn.execute(o.delete().where(o.c.bucket_id == bucket_id))
            batch_ids = sa.select(t.batches.c.batch_id).where(t.batches.c.bucket_id == bucket_id)
            conn.execute(t.batch_items.delete().where(t.batch_items.c.batch_id.in_(batch_ids)))
            conn.execute(t.batches.delete().where(t.batches.c.bucket_id == bucket_id))

    # ---- objects
    @staticmethod
    def _lock_bucket(conn: Connection, bucket_id: str, **changes: Any) -> bool:
        b = t.buckets.c
        values = changes or {"bucket_id": b.bucket_id}  # a no-op write still takes the lock
        result = conn.execute(t.buckets.update().where(b.bucket_id == bucket_id).values(**values))
        return result.rowcount == 1

    def create_objects(self, objects: Sequence[ObjectRecord]) -> None:
        if not objects:
            return
        by_bucket: dict[str, list[ObjectRecord]] = {}
        for obj in objects:
            by_bucket.setdefault(obj.bucket_id, []).append(obj)
        b = t.buckets.c
        try:
            with self.engine.begin() as conn:
                for bucket_id in sorted(by_bucket):  # one lock order: no deadlock
                    group = by_bucket[bucket_id]
                    added = sum(o.size_bytes for o in group)
                    if not self._lock_bucket(
                        conn,
                        bucket_id,
                        object_count=b.object_count + len(group),
                        total_size_bytes=b.total_size_bytes + added,
                    ):
                        raise NotFound("bucket", bucket_id)
                conn.execute(
                    t.bucket_objects.insert(), [_values(o, t.bucket_objects) for o in objects]
                )
        except IntegrityError as exc:
            raise _conflict(exc, "The object") from exc

    def replace_object(self, obj: ObjectRecord) -> None:
        o, b = t.bucket_objects.c, t.buckets.c
        try:
            with self.engine.begin() as conn:
                if not self._lock_bucket(conn, obj.bucket_id):
                    raise NotFound("bucket", obj.bucket_id)
                old = conn.execute(
                    sa.select(o.size_bytes).where(
                        o.bucket_id == obj.bucket_id, o.object_id == obj.object_id
                    )
                ).scalar()
                if old is None:
                    raise NotFound("object", obj.object_id)
                conn.execute(
                    t.bucket_objects.update()
                    .where(o.object_id == obj.object_id)
                    .values(**_values(obj, t.bucket_objects))
                )
                self._lock_bucket(
                    conn, obj.bucket_id, total_size_bytes=b.total_size_bytes + obj.size_bytes - old
                )
        except IntegrityError as exc:
            raise _conflict(exc, "The object") from exc

    def get_object(self, bucket_id: str, object_id: str) -> ObjectRecord | None:
        return self.get_objects(bucket_id, [object_id]).get(object_id)

    def get_objects(self, bucket_id: str, object_ids: Sequence[str]) -> dict[str, ObjectRecord]:
        o = t.bucket_objects.c
        ids = list(dict.fromkeys(object_ids))
        out: dict[str, ObjectRecord] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                query = sa.select(t.bucket_objects).where(
                    o.bucket_id == bucket_id, o.object_id.in_(ids[start : start + _CHUNK])
                )
                for row in conn.execute(query).mappings():
                    out[row["object_id"]] = _record(ObjectRecord, row)
        return out

    def _find_object(
        self, bucket_id: str, column: sa.Column[Any], value: str
    ) -> ObjectRecord | None:
        query = sa.select(t.bucket_objects).where(
            t.bucket_objects.c.bucket_id == bucket_id, column == value
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _record(ObjectRecord, row)

    def find_object_by_unique_key(self, bucket_id: str, value: str) -> ObjectRecord | None:
        return self._find_object(bucket_id, t.bucket_objects.c.unique_key_value, value)

    def find_object_by_idempotency_key(self, bucket_id: str, key: str) -> ObjectRecord | None:
        return self._find_object(bucket_id, t.bucket_objects.c.idempotency_key, key)

    def list_objects(
        self, bucket_id: str, *, after: str | None = None, limit: int = 100
    ) -> list[ObjectRecord]:
        # Object ids are issued in time order (ids.new_sortable_id): id order is creation order,
        # and a keyset position stays valid even when its object is deleted.
        o = t.bucket_objects.c
        query = sa.select(t.bucket_objects).where(o.bucket_id == bucket_id)
        if after is not None:
            query = query.where(o.object_id > after)
        query = query.order_by(o.object_id).limit(limit)
        with self.engine.connect() as conn:
            return [_record(ObjectRecord, r) for r in conn.execute(query).mappings()]

    def all_object_ids(self, bucket_id: str) -> list[str]:
        o = t.bucket_objects.c
        query = sa.select(o.object_id).where(o.bucket_id == bucket_id).order_by(o.object_id)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def set_object_statuses(self, updates: Sequence[tuple[str, str, str | None]]) -> None:
        o = t.bucket_objects.c
        now = utc_now()
        with self.engine.begin() as conn:
            for object_id, status, error in updates:
                # Write first (the row lock), then read the body to set its error.
                done = conn.execute(
                    t.bucket_objects.update()
                    .where(o.object_id == object_id)
                    .values(status=status, updated_at=now)
                )
                if done.rowcount == 0:
                    continue  # deleted meanwhile
                body = conn.execute(sa.select(o.body).where(o.object_id == object_id)).scalar()
                conn.execute(
                    t.bucket_objects.update()
                    .where(o.object_id == object_id)
                    .values(body={**(body or {}), "error": error})
                )

    def delete_object(self, bucket_id: str, object_id: str) -> bool:
        o, b = t.bucket_objects.c, t.buckets.c
        with self.engine.begin() as conn:
            if not self._lock_bucket(conn, bucket_id):
                return False
            size = conn.execute(
                sa.select(o.size_bytes).where(o.bucket_id == bucket_id, o.object_id == object_id)
            ).scalar()
            if size is None:
                return False
            conn.execute(
                t.bucket_objects.delete().where(o.bucket_id == bucket_id, o.object_id == object_id)
            )
            self._lock_bucket(
                conn,
                bucket_id,
                object_count=b.object_count - 1,
                total_size_bytes=b.total_size_bytes - size,
            )
        return True

    # ---- batches
    def create_batch(self, batch: BatchRecord) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(t.batches.insert().values(**_values(batch, t.batches)))
        except IntegrityError as exc:
            raise _conflict(exc, "The batch") from exc

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(t.batches).where(t.batches.c.batch_id == batch_id))
                .mappings()
                .first()
            )
        return None if row is None else _record(BatchRecord, row)

    def update_batch(self, batch: BatchRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.batches.update()
                .where(t.batches.c.batch_id == batch.batch_id)
                .values(**_values(batch, t.batches))
            )

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
        return [_record(cls, r) for r in rows], total

    def delete_batch(self, batch_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.batches.delete().where(t.batches.c.batch_id == batch_id))
            conn.execute(t.batch_items.delete().where(t.batch_items.c.batch_id == batch_id))

    # ---- batch items
    def put_batch_items(self, items: Sequence[BatchItem]) -> None:
        if not items:
            return
        last = {(i.batch_id, i.object_id): _values(i, t.batch_items) for i in items}
        stmt = self._insert()(t.batch_items)
        upsert = stmt.on_conflict_do_update(
            index_elements=["batch_id", "object_id"],
            set_={c: stmt.excluded[c] for c in ("status", "body", "updated_at")},
        )
        with self.engine.begin() as conn:
            conn.execute(upsert, list(last.values()))

    def get_batch_items(self, batch_id: str) -> list[BatchItem]:
        i = t.batch_items.c
        query = sa.select(t.batch_items).where(i.batch_id == batch_id).order_by(i.object_id)
        with self.engine.connect() as conn:
            return [_record(BatchItem, r) for r in conn.execute(query).mappings()]

    def batch_item_counts(self, batch_id: str) -> dict[str, int]:
        i = t.batch_items.c
        query = (
            sa.select(i.status, sa.func.count()).where(i.batch_id == batch_id).group_by(i.status)
        )
        with self.engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(query)}

    # ---- tasks
    def create_task(self, task: TaskRecord) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(t.tasks.insert().values(**_values(task, t.tasks)))
        except IntegrityError as exc:
            raise _conflict(exc, "The task") from exc

    def get_task(self, task_id: str) -> TaskRecord | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(t.tasks).where(t.tasks.c.task_id == task_id))
                .mappings()
                .first()
            )
        return None if row is None else _record(TaskRecord, row)

    def update_task(self, task: TaskRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.tasks.update()
                .where(t.tasks.c.task_id == task.task_id)
                .values(**_values(task, t.tasks))
            )

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
            return [_record(TaskRecord, r) for r in conn.execute(query).mappings()]
