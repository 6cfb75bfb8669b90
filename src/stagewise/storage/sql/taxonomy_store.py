"""TaxonomyStore over SQLAlchemy Core (SQLite or PostgreSQL), on the `taxonomies` table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.engine import Engine, RowMapping

from stagewise.domain.taxonomy_records import TaxonomyRecord
from stagewise.errors import Conflict
from stagewise.storage.sql import tables as t

_COLUMNS = {"taxonomy_id", "namespace_id", "taxonomy_name", "created_at", "updated_at"}


def _aware(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _taken(name: str) -> Conflict:
    return Conflict(
        f"Taxonomy name '{name}' is already taken in this namespace", code="taxonomy_name_taken"
    )


class SqlTaxonomyStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # shared with the metadata store, which owns (and disposes) it

    @staticmethod
    def _values(tax: TaxonomyRecord) -> dict[str, Any]:
        return {
            "taxonomy_id": tax.taxonomy_id,
            "namespace_id": tax.namespace_id,
            "taxonomy_name": tax.taxonomy_name,
            "body": tax.model_dump(mode="json", exclude=_COLUMNS),
            "created_at": tax.created_at,
            "updated_at": tax.updated_at,
        }

    @staticmethod
    def _from_row(row: RowMapping) -> TaxonomyRecord:
        return TaxonomyRecord(
            **row["body"],
            taxonomy_id=row["taxonomy_id"],
            namespace_id=row["namespace_id"],
            taxonomy_name=row["taxonomy_name"],
            created_at=_aware(row["created_at"]),
            updated_at=_aware(row["updated_at"]),
        )

    def create_taxonomy(self, taxonomy: TaxonomyRecord) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(t.taxonomies.insert().values(**self._values(taxonomy)))
        except sqlalchemy.exc.IntegrityError as exc:
            raise _taken(taxonomy.taxonomy_name) from exc

    def get_taxonomy(self, namespace_id: str, identifier: str) -> TaxonomyRecord | None:
        c = t.taxonomies.c
        query = sa.select(t.taxonomies).where(
            c.namespace_id == namespace_id,
            sa.or_(c.taxonomy_id == identifier, c.taxonomy_name == identifier),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        rows = sorted(rows, key=lambda r: r["taxonomy_id"] != identifier)
        return self._from_row(rows[0]) if rows else None

    def list_taxonomies(
        self, namespace_id: str, *, search: str | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[list[TaxonomyRecord], int]:
        c = t.taxonomies.c
        where = [c.namespace_id == namespace_id]
        if search:
            where.append(sa.func.lower(c.taxonomy_name).contains(search.lower(), autoescape=True))
        page = (
            sa.select(t.taxonomies)
            .where(*where)
            .order_by(c.created_at, c.taxonomy_id)
            .offset(offset)
            .limit(limit)
        )
        count = sa.select(sa.func.count()).select_from(t.taxonomies).where(*where)
        with self.engine.connect() as conn:
            rows = [self._from_row(r) for r in conn.execute(page).mappings()]
            total = int(conn.execute(count).scalar_one())
        return rows, total

    def update_taxonomy(self, taxonomy: TaxonomyRecord) -> bool:
        c = t.taxonomies.c
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    t.taxonomies.update()
                    .where(c.taxonomy_id == taxonomy.taxonomy_id)
                    .values(**self._values(taxonomy))
                )
        except sqlalchemy.exc.IntegrityError as exc:
            raise _taken(taxonomy.taxonomy_name) from exc
        return bool(result.rowcount)

    def delete_taxonomy(self, taxonomy_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                t.taxonomies.delete().where(t.taxonomies.c.taxonomy_id == taxonomy_id)
            )
        return bool(result.rowcount)

    def delete_namespace_taxonomies(self, namespace_id: str) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                t.taxonomies.delete().where(t.taxonomies.c.namespace_id == namespace_id)
            )
        return int(result.rowcount)
