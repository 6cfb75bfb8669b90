"""Records as rows and back: the columns lookups need, everything else in `body`; and
IntegrityError as the Conflict it means."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from stagewise.errors import Conflict

R = TypeVar("R", bound=BaseModel)


def aware(value: Any) -> Any:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def as_row(record: BaseModel, table: sa.Table) -> dict[str, Any]:
    """A record as a row: the table's columns, and everything else in `body`."""
    columns = {col.name for col in table.columns if col.name != "body"}
    dumped = record.model_dump()
    row = {c: dumped[c] for c in columns}
    row["body"] = record.model_dump(mode="json", exclude=columns)
    return row


def from_row(cls: type[R], row: RowMapping) -> R:
    columns = {k: aware(v) for k, v in row.items() if k != "body"}
    return cls(**{**row["body"], **columns})


def as_conflict(exc: IntegrityError, what: str) -> Conflict:
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
