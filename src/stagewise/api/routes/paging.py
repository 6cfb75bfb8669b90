"""PAGEQ: the list parameters shared by every list route (body values win over the query)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query

from stagewise.api.schemas.requests import ListBody
from stagewise.errors import InvalidCursor, ValidationFailed

MAX_OFFSET = 10_000  # the deepest any list pages (docs/limits.md)


@dataclass
class PageQuery:
    limit: int | None = None
    page_size: int | None = None
    offset: int | None = None
    page: int | None = None
    cursor: str | None = None
    include_total: bool | None = None

    def resolve(
        self, body: ListBody | None, default_limit: int = 10, *, cursors: bool = False
    ) -> tuple[int, int, str | None, bool]:
        """`cursors`: the route pages by cursor. Elsewhere a cursor is refused rather than
        ignored, since ignoring it would serve page one again (an overlapping page)."""
        merged: dict[str, Any] = {k: v for k, v in self.__dict__.items() if v is not None}
        if body is not None:
            merged.update(
                {
                    k: getattr(body, k)
                    for k in ("limit", "page_size", "offset", "page", "cursor", "include_total")
                    if getattr(body, k) is not None
                }
            )
            extra = (body.model_extra or {}).get("next_cursor")
            if extra is not None and body.cursor is None:
                merged["cursor"] = extra
        cursor = merged.get("cursor") or None
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidCursor("cursor must be a string", field="cursor")
        if cursor is not None and not cursors:
            raise InvalidCursor(
                "This list pages by offset and issues no cursors; send offset or page",
                field="cursor",
            )
        limit = merged.get("limit") or merged.get("page_size") or default_limit
        if not 1 <= limit <= 1000:
            raise ValidationFailed("limit must be between 1 and 1000", field="limit")
        offset = merged.get("offset")
        if offset is None:
            offset = (merged.get("page", 1) - 1) * limit
        if offset > MAX_OFFSET:  # a page far past any list: refused, not sent to SQL
            raise ValidationFailed(
                f"page and limit reach offset {offset}; the deepest is {MAX_OFFSET}",
                field="page",
                limit=MAX_OFFSET,
            )
        return limit, int(offset), cursor, bool(merged.get("include_total"))


def page_query(
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    page_size: Annotated[int | None, Query(ge=1, le=1000)] = None,
    offset: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
    page: Annotated[int | None, Query(ge=1, le=MAX_OFFSET + 1)] = None,
    cursor: str | None = None,
    next_cursor: str | None = None,
    include_total: bool | None = None,
) -> PageQuery:
    return PageQuery(limit, page_size, offset, page, cursor or next_cursor, include_total)


def slice_page(items: list[Any], limit: int, offset: int) -> tuple[list[Any], bool]:
    return items[offset : offset + limit], offset + limit < len(items)
