"""Retriever interactions in SQL; mixed into SqlMetadataStore."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from stagewise.domain.interaction_records import InteractionQuery, InteractionRecord
from stagewise.storage.sql import tables as t

_COLUMNS = {
    "interaction_id",
    "namespace_id",
    "execution_id",
    "retriever_id",
    "feature_id",
    "session_id",
    "user_id",
    "position",
    "occurred_at",
    "created_at",
}
_I = t.retriever_interactions
_T = t.retriever_interaction_types


def _sort_key(field: str) -> Any:
    c = _I.c
    if field == "position":
        return c.position
    if field == "occurred_at":  # a live interaction happened when it was recorded
        return sa.func.coalesce(c.occurred_at, c.created_at)
    return c.created_at


def delete_interactions_where(conn: Connection, where: Any) -> None:
    """Delete the interactions `where` selects (over retriever_interactions), types too."""
    ids = sa.select(_I.c.interaction_id).where(where)
    conn.execute(_T.delete().where(_T.c.interaction_id.in_(ids)))
    conn.execute(_I.delete().where(where))


class InteractionTables:
    engine: Engine

    @staticmethod
    def _interaction_values(i: InteractionRecord) -> dict[str, Any]:
        values = i.model_dump(include=_COLUMNS)
        values["body"] = i.model_dump(mode="json", exclude=_COLUMNS)
        return values

    @staticmethod
    def _interaction_from_row(row: RowMapping) -> InteractionRecord:
        # UtcDateTime reads back aware UTC on every backend.
        return InteractionRecord(**row["body"], **{k: row[k] for k in _COLUMNS})

    def create_interactions(self, items: Sequence[InteractionRecord]) -> None:
        if not items:
            return
        types = [
            {
                "interaction_id": i.interaction_id,
                "interaction_type": kind,
                "namespace_id": i.namespace_id,
                "execution_id": i.execution_id,
            }
            for i in items
            for kind in dict.fromkeys(i.interaction_types)  # a type named twice counts once
        ]
        with self.engine.begin() as conn:
            conn.execute(_I.insert(), [self._interaction_values(i) for i in items])
            conn.execute(_T.insert(), types)

    def get_interaction(self, namespace_id: str, interaction_id: str) -> InteractionRecord | None:
        c = _I.c
        query = sa.select(_I).where(
            c.namespace_id == namespace_id, c.interaction_id == interaction_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else self._interaction_from_row(row)

    def delete_interaction(self, namespace_id: str, interaction_id: str) -> bool:
        c = _I.c
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(c.interaction_id).where(
                    c.namespace_id == namespace_id, c.interaction_id == interaction_id
                )
            ).first()
            if found is None:
                return False
            delete_interactions_where(conn, c.interaction_id == interaction_id)
        return True

    def list_interactions(
        self, namespace_id: str, query: InteractionQuery, *, limit: int, offset: int = 0
    ) -> tuple[list[InteractionRecord], int]:
        c = _I.c
        conds: list[Any] = [c.namespace_id == namespace_id]
        for name in ("execution_id", "retriever_id", "session_id", "user_id", "feature_id"):
            value = getattr(query, name)
            if value is not None:
                conds.append(c[name] == value)
        if query.since is not None:
            conds.append(c.created_at >= query.since)
        if query.interaction_type is not None:
            typed = sa.select(_T.c.interaction_id).where(
                _T.c.namespace_id == namespace_id, _T.c.interaction_type == query.interaction_type
            )
            conds.append(c.interaction_id.in_(typed))
        key = _sort_key(query.sort_field)
        order = (
            (key.desc(), c.interaction_id.desc())
            if query.descending
            else (key.asc(), c.interaction_id.asc())
        )
        rows = sa.select(_I).where(*conds).order_by(*order).limit(limit).offset(offset)
        count = sa.select(sa.func.count()).select_from(_I).where(*conds)
        with self.engine.connect() as conn:
            found = [self._interaction_from_row(r) for r in conn.execute(rows).mappings()]
            total = int(conn.execute(count).scalar_one())
        return found, total

    def count_interactions(self, namespace_id: str, execution_id: str) -> dict[str, int]:
        tc = _T.c
        query = (
            sa.select(tc.interaction_type, sa.func.count())
            .where(tc.namespace_id == namespace_id, tc.execution_id == execution_id)
            .group_by(tc.interaction_type)
        )
        with self.engine.connect() as conn:
            return {kind: int(n) for kind, n in conn.execute(query)}
