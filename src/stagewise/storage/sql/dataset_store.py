"""Evaluation datasets in SQL; mixed into SqlMetadataStore."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.engine import Engine, RowMapping

from stagewise.domain.evaluation_records import DatasetRecord
from stagewise.errors import Conflict
from stagewise.storage.sql import tables as t

_COLUMNS = {"dataset_id", "namespace_id", "dataset_name", "created_at", "updated_at"}
_D = t.evaluation_datasets


class DatasetTables:
    engine: Engine

    @staticmethod
    def _dataset_from_row(row: RowMapping) -> DatasetRecord:
        return DatasetRecord(**row["body"], **{k: row[k] for k in _COLUMNS})

    def create_evaluation_dataset(self, d: DatasetRecord) -> None:
        values: dict[str, Any] = d.model_dump(include=_COLUMNS)
        values["body"] = d.model_dump(mode="json", exclude=_COLUMNS)
        try:
            with self.engine.begin() as conn:
                conn.execute(_D.insert().values(**values))
        except sqlalchemy.exc.IntegrityError as exc:
            raise Conflict(
                f"Dataset name '{d.dataset_name}' is already taken in this namespace",
                code="dataset_name_taken",
                field="dataset_name",
            ) from exc

    def get_evaluation_dataset(self, namespace_id: str, identifier: str) -> DatasetRecord | None:
        c = _D.c
        query = sa.select(_D).where(
            c.namespace_id == namespace_id,
            sa.or_(c.dataset_id == identifier, c.dataset_name == identifier),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        # an id wins over another dataset named like it
        rows = sorted(rows, key=lambda r: r["dataset_id"] != identifier)
        return self._dataset_from_row(rows[0]) if rows else None

    def list_evaluation_datasets(
        self, namespace_id: str, *, limit: int, offset: int = 0
    ) -> tuple[list[DatasetRecord], int]:
        c = _D.c
        where = c.namespace_id == namespace_id
        page = (
            sa.select(_D)
            .where(where)
            .order_by(c.created_at, c.dataset_id)
            .limit(limit)
            .offset(offset)
        )
        count = sa.select(sa.func.count()).select_from(_D).where(where)
        with self.engine.connect() as conn:
            rows = [self._dataset_from_row(r) for r in conn.execute(page).mappings()]
            total = int(conn.execute(count).scalar_one())
        return rows, total
