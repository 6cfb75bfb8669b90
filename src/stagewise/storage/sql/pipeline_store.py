"""Retrievers and executions in SQL; mixed into SqlMetadataStore."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine, RowMapping

from stagewise.domain.pipeline_records import ExecutionRecord, RetrieverRecord
from stagewise.storage.sql import tables as t
from stagewise.storage.sql.interaction_store import delete_interactions_where

_RET_COLUMNS = {"retriever_id", "namespace_id", "retriever_name", "created_at", "updated_at"}
_EXEC_COLUMNS = {
    "execution_id",
    "namespace_id",
    "retriever_id",
    "mode",
    "status",
    "inputs_hash",
    "created_at",
    "completed_at",
    "trace_id",
    "source_execution_id",
}


_DELETE_RESULTS = t.execution_result_chunks.delete().where(
    t.execution_result_chunks.c.execution_id.in_(sa.bindparam("ids", expanding=True))
)
_INSERT_RESULTS = t.execution_result_chunks.insert()


UNFINISHED = ("pending", "processing")


@cache
def _upsert_execution(postgres: bool) -> Any:
    insert = pg_insert if postgres else sqlite_insert
    stmt = insert(t.executions)
    columns = [c.name for c in t.executions.columns if c.name != "execution_id"]
    return stmt.on_conflict_do_update(
        index_elements=["execution_id"], set_={c: stmt.excluded[c] for c in columns}
    )


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class PipelineTables:
    engine: Engine
    log_engine: Engine  # execution writes: a relaxed-durability connection where supported

    # ---- retrievers
    @staticmethod
    def _ret_values(r: RetrieverRecord) -> dict[str, Any]:
        return {
            "retriever_id": r.retriever_id,
            "namespace_id": r.namespace_id,
            "retriever_name": r.retriever_name,
            "body": r.model_dump(mode="json", exclude=_RET_COLUMNS),
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }

    @staticmethod
    def _ret_from_row(row: RowMapping) -> RetrieverRecord:
        return RetrieverRecord(
            **row["body"],
            retriever_id=row["retriever_id"],
            namespace_id=row["namespace_id"],
            retriever_name=row["retriever_name"],
            created_at=_aware(row["created_at"]),
            updated_at=_aware(row["updated_at"]),
        )

    def create_retriever(self, r: RetrieverRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.retrievers.insert().values(**self._ret_values(r)))

    def get_retriever(self, namespace_id: str, identifier: str) -> RetrieverRecord | None:
        c = t.retrievers.c
        query = sa.select(t.retrievers).where(
            c.namespace_id == namespace_id,
            sa.or_(c.retriever_id == identifier, c.retriever_name == identifier),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        rows = sorted(rows, key=lambda r: r["retriever_id"] != identifier)
        return self._ret_from_row(rows[0]) if rows else None

    def list_retrievers(self, namespace_id: str) -> list[RetrieverRecord]:
        c = t.retrievers.c
        query = (
            sa.select(t.retrievers)
            .where(c.namespace_id == namespace_id)
            .order_by(c.created_at, c.retriever_id)
        )
        with self.engine.connect() as conn:
            return [self._ret_from_row(r) for r in conn.execute(query).mappings()]

    def update_retriever(self, r: RetrieverRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.retrievers.update()
                .where(t.retrievers.c.retriever_id == r.retriever_id)
                .values(**self._ret_values(r))
            )

    def delete_retriever(self, retriever_id: str) -> None:
        e = t.executions.c
        with self.engine.begin() as conn:
            ids = sa.select(e.execution_id).where(e.retriever_id == retriever_id)
            chunks = t.execution_result_chunks
            conn.execute(chunks.delete().where(chunks.c.execution_id.in_(ids)))
            conn.execute(t.executions.delete().where(e.retriever_id == retriever_id))
            ri = t.retriever_interactions.c
            delete_interactions_where(conn, ri.retriever_id == retriever_id)
            conn.execute(t.retrievers.delete().where(t.retrievers.c.retriever_id == retriever_id))

    # ---- executions
    @staticmethod
    def _exec_values(x: ExecutionRecord) -> dict[str, Any]:
        return {
            "execution_id": x.execution_id,
            "namespace_id": x.namespace_id,
            "retriever_id": x.retriever_id,
            "mode": x.mode,
            "status": x.status,
            "inputs_hash": x.inputs_hash,
            "body": x.model_dump(mode="json", exclude=_EXEC_COLUMNS),
            "created_at": x.created_at,
            "completed_at": x.completed_at,
            "trace_id": x.trace_id,
            "source_execution_id": x.source_execution_id,
        }

    @staticmethod
    def _exec_from_row(row: RowMapping) -> ExecutionRecord:
        return ExecutionRecord(
            **row["body"],
            execution_id=row["execution_id"],
            namespace_id=row["namespace_id"],
            retriever_id=row["retriever_id"],
            mode=row["mode"],
            status=row["status"],
            inputs_hash=row["inputs_hash"],
            created_at=_aware(row["created_at"]),
            completed_at=_aware(row["completed_at"]),
            trace_id=row["trace_id"],
            source_execution_id=row["source_execution_id"],
        )

    def save_execution(
        self, x: ExecutionRecord, results: Sequence[dict[str, Any]] | None = None
    ) -> None:
        """Insert or update an execution; `results` (the ranked snapshot) replace stored ones."""
        self.save_executions([(x, results)])

    def save_executions(
        self, items: Sequence[tuple[ExecutionRecord, Sequence[dict[str, Any]] | None]]
    ) -> None:
        """save_execution for several records in one transaction (the write-behind path).
        Prepared statements with parameters: SQLAlchemy compiles each once per process."""
        # One row per execution (a multi-row upsert may not touch a row twice); the last
        # record wins, and keeps the last snapshot sent with it.
        latest: dict[str, tuple[ExecutionRecord, Sequence[dict[str, Any]] | None]] = {}
        for x, results in items:
            known = latest.get(x.execution_id)
            latest[x.execution_id] = (x, results if results is not None or not known else known[1])
        items = list(latest.values())
        with self.log_engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            conn.execute(_upsert_execution(postgres), [self._exec_values(x) for x, _ in items])
            replaced = [x.execution_id for x, results in items if results is not None]
            if replaced:
                conn.execute(_DELETE_RESULTS, {"ids": replaced})
            size = t.RESULT_CHUNK
            rows = [
                {
                    "execution_id": x.execution_id,
                    "chunk": start // size,
                    "documents": list(results[start : start + size]),
                }
                for x, results in items
                if results
                for start in range(0, len(results), size)
            ]
            if rows:
                conn.execute(_INSERT_RESULTS, rows)

    def close_unfinished(self, records: Sequence[ExecutionRecord]) -> int:
        """Stores each (finished) record only where the stored one is still pending or
        processing: a run that ended meanwhile keeps its own outcome. Returns how many."""
        e = t.executions.c
        stored = 0
        with self.log_engine.begin() as conn:
            for x in records:
                values = self._exec_values(x)
                del values["execution_id"]
                result = conn.execute(
                    t.executions.update()
                    .where(e.execution_id == x.execution_id, e.status.in_(UNFINISHED))
                    .values(**values)
                )
                stored += result.rowcount
        return stored

    def prune_executions(
        self, *, before: datetime | None, keep_per_namespace: int | None, limit: int
    ) -> list[str]:
        e = t.executions.c
        hits = t.executions.alias("hits")
        # Finished runs only, and never one that a kept cache hit reads its results from.
        prunable = (
            e.status.in_(("completed", "failed")),
            ~sa.exists().where(hits.c.source_execution_id == e.execution_id),
        )
        with self.log_engine.begin() as conn:
            ids: list[str] = []
            if before is not None:
                query = sa.select(e.execution_id).where(e.created_at < before, *prunable)
                ids += conn.execute(query.limit(limit)).scalars()
            if keep_per_namespace is not None:
                crowded = (
                    sa.select(e.namespace_id)
                    .group_by(e.namespace_id)
                    .having(sa.func.count() > keep_per_namespace)
                )
                for namespace_id in conn.execute(crowded).scalars().all():
                    if len(ids) >= limit:
                        break
                    ids += self._past_newest(
                        conn, namespace_id, keep_per_namespace, prunable, limit - len(ids)
                    )
            doomed = list(dict.fromkeys(ids))[:limit]
            if doomed:
                conn.execute(_DELETE_RESULTS, {"ids": doomed})
                conn.execute(t.executions.delete().where(e.execution_id.in_(doomed)))
        return doomed

    @staticmethod
    def _past_newest(
        conn: sa.Connection,
        namespace_id: str,
        keep: int,
        prunable: tuple[Any, ...],
        limit: int,
    ) -> list[str]:
        """A namespace's prunable runs older than its `keep` newest."""
        e = t.executions.c
        cutoff = conn.execute(
            sa.select(e.created_at, e.execution_id)
            .where(e.namespace_id == namespace_id)
            .order_by(e.created_at.desc(), e.execution_id.desc())
            .offset(keep)
            .limit(1)
        ).first()
        if cutoff is None:
            return []
        older = sa.or_(
            e.created_at < cutoff.created_at,
            sa.and_(e.created_at == cutoff.created_at, e.execution_id <= cutoff.execution_id),
        )
        query = sa.select(e.execution_id).where(e.namespace_id == namespace_id, older, *prunable)
        return list(conn.execute(query.limit(limit)).scalars())

    def get_execution(self, namespace_id: str, execution_id: str) -> ExecutionRecord | None:
        e = t.executions.c
        query = sa.select(t.executions).where(
            e.namespace_id == namespace_id, e.execution_id == execution_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return self._exec_from_row(row) if row is not None else None

    def get_execution_results(
        self, execution_id: str, offset: int, limit: int
    ) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        size = t.RESULT_CHUNK
        first, last = offset // size, (offset + limit - 1) // size
        c = t.execution_result_chunks.c
        query = (
            sa.select(c.documents)
            .where(c.execution_id == execution_id, c.chunk.between(first, last))
            .order_by(c.chunk)
        )
        with self.engine.connect() as conn:
            documents = [doc for row in conn.execute(query) for doc in row[0]]
        start = offset - first * size
        return documents[start : start + limit]

    def list_executions(
        self,
        namespace_id: str,
        *,
        retriever_id: str | None,
        mode: str,
        statuses: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        descending: bool = True,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[ExecutionRecord], int]:
        e = t.executions.c
        conds = [e.namespace_id == namespace_id, e.mode == mode]
        if retriever_id is not None:
            conds.append(e.retriever_id == retriever_id)
        if statuses:
            conds.append(e.status.in_(list(statuses)))
        if since is not None:
            conds.append(e.created_at >= since)
        if until is not None:
            conds.append(e.created_at <= until)
        order = (
            (e.created_at.desc(), e.execution_id.desc())
            if descending
            else (e.created_at.asc(), e.execution_id.asc())
        )
        query = sa.select(t.executions).where(*conds).order_by(*order).limit(limit).offset(offset)
        count = sa.select(sa.func.count()).select_from(t.executions).where(*conds)
        with self.engine.connect() as conn:
            rows = [self._exec_from_row(r) for r in conn.execute(query).mappings()]
            total = int(conn.execute(count).scalar_one())
        return rows, total
