"""IngestStore over SQLAlchemy Core (SQLite and PostgreSQL), on the metadata store's engine.

Locking: every object write first writes its bucket's row (the counters, or a no-op update),
so writers of one bucket take the same lock first and in the same order. That keeps the
counters exact under concurrency, serialises a bucket delete against object writes (no object
is committed into a deleted bucket), and on SQLite makes every transaction a writer from its
first statement (a read-then-write transaction could fail with SQLITE_BUSY_SNAPSHOT).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from stagewise.domain.ingest_records import (
    BucketRecord,
    ObjectRecord,
)
from stagewise.errors import NotFound
from stagewise.ids import utc_now
from stagewise.storage.sql import tables as t
from stagewise.storage.sql.ingest_jobs import JobTables
from stagewise.storage.sql.ingest_rows import as_conflict, as_row, from_row

_CHUNK = 500  # ids per IN (...) list
_COUNTERS = {"object_count", "total_size_bytes"}


class SqlIngestStore(JobTables):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # migrated by SqlMetadataStore, which owns and disposes of it

    # ---- buckets
    def create_bucket(self, bucket: BucketRecord) -> None:
        self._create(t.buckets, bucket, "The bucket")

    def get_bucket(self, namespace_id: str, identifier: str) -> BucketRecord | None:
        c = t.buckets.c
        query = sa.select(t.buckets).where(
            c.namespace_id == namespace_id,
            sa.or_(c.bucket_id == identifier, c.bucket_name == identifier),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        rows = sorted(rows, key=lambda r: r["bucket_id"] != identifier)  # an id wins
        return from_row(BucketRecord, rows[0]) if rows else None

    def get_bucket_by_id(self, bucket_id: str) -> BucketRecord | None:
        return self._get(t.buckets, BucketRecord, bucket_id)

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
        return [from_row(BucketRecord, r) for r in rows], total

    def update_bucket(self, bucket: BucketRecord) -> None:
        # The counters are the store's own: an update never writes them.
        row = {k: v for k, v in as_row(bucket, t.buckets).items() if k not in _COUNTERS}
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    t.buckets.update()
                    .where(t.buckets.c.bucket_id == bucket.bucket_id)
                    .values(**row)
                )
        except IntegrityError as exc:
            raise as_conflict(exc, "The bucket") from exc

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
                    t.bucket_objects.insert(), [as_row(o, t.bucket_objects) for o in objects]
                )
        except IntegrityError as exc:
            raise as_conflict(exc, "The object") from exc

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
                    .values(**as_row(obj, t.bucket_objects))
                )
                self._lock_bucket(
                    conn, obj.bucket_id, total_size_bytes=b.total_size_bytes + obj.size_bytes - old
                )
        except IntegrityError as exc:
            raise as_conflict(exc, "The object") from exc

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
                    out[row["object_id"]] = from_row(ObjectRecord, row)
        return out

    def _find_object(
        self, bucket_id: str, column: sa.Column[Any], value: str
    ) -> ObjectRecord | None:
        query = sa.select(t.bucket_objects).where(
            t.bucket_objects.c.bucket_id == bucket_id, column == value
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else from_row(ObjectRecord, row)

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
            return [from_row(ObjectRecord, r) for r in conn.execute(query).mappings()]

    def all_object_ids(self, bucket_id: str) -> list[str]:
        o = t.bucket_objects.c
        query = sa.select(o.object_id).where(o.bucket_id == bucket_id).order_by(o.object_id)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def set_object_statuses(self, updates: Sequence[tuple[str, str, str | None]]) -> None:
        """One UPDATE per status and one read of the bodies, then a body rewrite only where
        the error changes (a batch slice sets ~32 statuses; one round trip each dominated)."""
        o = t.bucket_objects.c
        now = utc_now()
        by_status: dict[str, list[str]] = {}
        for object_id, status, _ in updates:
            by_status.setdefault(status, []).append(object_id)
        errors = {object_id: error for object_id, _, error in updates}
        with self.engine.begin() as conn:
            # Write first (the row locks), then read the bodies to set their errors.
            for status, ids in sorted(by_status.items()):
                conn.execute(
                    t.bucket_objects.update()
                    .where(o.object_id.in_(sorted(ids)))
                    .values(status=status, updated_at=now)
                )
            rows = conn.execute(
                sa.select(o.object_id, o.body).where(o.object_id.in_(sorted(errors)))
            ).all()  # objects deleted meanwhile are absent
            for object_id, body in rows:
                error = errors[object_id]
                if (body or {}).get("error") != error:
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
