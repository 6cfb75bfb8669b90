"""Listing documents: filters (through the index), sort, cursor and offset pagination."""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from stagewise.domain.filters import parse_filter
from stagewise.domain.records import CollectionRecord, DocumentRecord
from stagewise.errors import ValidationFailed
from stagewise.ids import iso
from stagewise.pipeline.docpath import sort_key
from stagewise.services.context import Stores
from stagewise.services.cursors import query_hash
from stagewise.storage.payload import get_path

MAX_LIMIT = 1000
MAX_OFFSET = 10_000
KIND = "docs"
# A sorted or filtered list has no result window, so its cursor may go past MAX_OFFSET (that
# cap is on the offset parameter; the SDK points deep pagination at the cursor).
_BEYOND = range(2**53)  # any position or seq JSON carries exactly
_READ_PAGE = 1000


@dataclass
class ListQuery:
    filters: dict[str, Any] | None = None
    sort_field: str | None = None
    descending: bool = False
    search: str | None = None
    cursor: str | None = None
    limit: int = 10
    offset: int = 0
    include_total: bool = False


@dataclass
class ListResult:
    documents: list[DocumentRecord]
    next_cursor: str | None
    total: int | None
    has_more: bool


def _scope(col: CollectionRecord, query: ListQuery, filters: dict[str, Any] | None) -> str:
    """A cursor belongs to one collection and one query: replaying it against another
    filter, sort or search would land at a meaningless position."""
    return f"{col.collection_id}:" + query_hash(
        [filters, query.sort_field, query.descending, query.search]
    )


def _encode(stores: Stores, col: CollectionRecord, scope: str, key: str, value: int) -> str:
    return stores.cursors.encode(KIND, col.namespace_id, scope, {key: value})


def _decode(stores: Stores, col: CollectionRecord, scope: str, key: str, cursor: str) -> int | None:
    """The position in a cursor (None without one: the first page, or `offset`)."""
    if not cursor:
        return None
    state = stores.cursors.decode(
        cursor, kind=KIND, namespace_id=col.namespace_id, scope=scope, spec={key: _BEYOND}
    )
    return int(state[key])


def parse_sort(raw: Any) -> tuple[str | None, bool]:
    """Sort as {field, direction}, a JSON string of it, or 'field:dir'."""
    if raw in (None, "", {}):
        return None, False
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("{"):
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise ValidationFailed(f"sort is not valid JSON: {text}") from exc
        else:
            field, _, direction = text.partition(":")
            raw = {"field": field, "direction": direction or "asc"}
    if not isinstance(raw, dict) or not isinstance(raw.get("field"), str):
        raise ValidationFailed(
            "sort needs a field, e.g. {'field': 'metadata.year', 'direction': 'desc'}"
        )
    direction = str(raw.get("direction") or "asc").lower()
    if direction not in ("asc", "desc"):
        raise ValidationFailed(f"sort direction must be asc or desc, not '{direction}'")
    return raw["field"], direction == "desc"


def document_view(doc: DocumentRecord) -> dict[str, Any]:
    """The dict that filters and sort paths address."""
    return {
        **doc.fields,
        "metadata": doc.metadata,
        "document_id": doc.document_id,
        "collection_id": doc.collection_id,
        "created_at": iso(doc.created_at),
        "updated_at": iso(doc.updated_at),
    }


def list_documents(stores: Stores, *, col: CollectionRecord, query: ListQuery) -> ListResult:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if not 0 <= query.offset <= MAX_OFFSET:
        raise ValidationFailed(f"offset must be between 0 and {MAX_OFFSET}", field="offset")
    filters = query.filters or None
    if query.search:
        text_leaf = {"field": "_text", "operator": "text", "value": query.search}
        filters = {"AND": [filters, text_leaf]} if filters else {"AND": [text_leaf]}
    total = stores.metadata.count_documents(col.collection_id) if query.include_total else None
    scope = _scope(col, query, query.filters or None)
    by_seq = filters is None and query.sort_field is None
    # Checked before any work: a bad cursor is the caller's error, whatever the list holds.
    position = _decode(stores, col, scope, "s" if by_seq else "o", query.cursor or "")
    if by_seq:
        return _list_by_seq(stores, col, query, total, scope, position)
    start = query.offset if position is None else position
    seen = [0]
    if filters is not None:
        ids = list(stores.index.filter_ids(col.collection_id, parse_filter(filters)))
        docs = _counted(_documents_of(stores, col, ids), seen)
    else:
        docs = _counted(_all_documents(stores, col), seen)
    page = _first_in_order(docs, query.sort_field, query.descending, start + query.limit)[start:]
    if filters is not None and query.include_total:
        total = seen[0]
    has_more = start + query.limit < seen[0]
    next_cursor = _encode(stores, col, scope, "o", start + query.limit) if has_more else None
    return ListResult(page, next_cursor, total, has_more)


def _first_in_order(
    docs: Iterable[DocumentRecord], field: str | None, descending: bool, count: int
) -> list[DocumentRecord]:
    """The first `count` documents in list order, holding at most `count` of them at once
    (a heap, not a sort of the collection). The order: by the field's value (`sort_key`,
    ascending or descending), ties and then documents without the field by insertion
    (`seq`); with no sort field, insertion order."""
    if field is None:
        return heapq.nsmallest(count, docs, key=lambda d: d.seq)
    if descending:
        return heapq.nlargest(count, docs, key=lambda d: _key(d, field, 1, -d.seq))
    return heapq.nsmallest(count, docs, key=lambda d: _key(d, field, 0, d.seq))


def _key(doc: DocumentRecord, field: str, present: int, tie: int) -> tuple[Any, ...]:
    # metadata paths skip building the whole view (two timestamps formatted per document)
    view = {"metadata": doc.metadata} if field.startswith("metadata.") else document_view(doc)
    value = get_path(view, field)
    if value is None:  # after every present value, whichever the direction
        return (1 - present, (0, 0.0), tie)
    return (present, sort_key(value), tie)


def _counted(docs: Iterable[DocumentRecord], seen: list[int]) -> Iterator[DocumentRecord]:
    for doc in docs:
        seen[0] += 1
        yield doc


def _documents_of(
    stores: Stores, col: CollectionRecord, ids: list[str]
) -> Iterator[DocumentRecord]:
    """The documents of some ids, read 1000 at a time (those deleted meanwhile are absent)."""
    for i in range(0, len(ids), _READ_PAGE):
        chunk = ids[i : i + _READ_PAGE]
        yield from stores.metadata.get_documents(col.collection_id, chunk).values()


def _all_documents(stores: Stores, col: CollectionRecord) -> Iterator[DocumentRecord]:
    after = 0
    while True:
        page = stores.metadata.list_documents(col.collection_id, after_seq=after, limit=_READ_PAGE)
        yield from page.documents
        if page.next_after_seq is None:
            return
        after = page.next_after_seq


def _list_by_seq(
    stores: Stores,
    col: CollectionRecord,
    query: ListQuery,
    total: int | None,
    scope: str,
    after_seq: int | None,
) -> ListResult:
    """Insertion order with a keyset cursor: stable under concurrent writes."""
    after = 0
    if after_seq is not None:
        after = after_seq
    elif query.offset:
        skipped = stores.metadata.list_documents(col.collection_id, after_seq=0, limit=query.offset)
        if len(skipped.documents) < query.offset:
            return ListResult([], None, total, False)
        after = skipped.documents[-1].seq
    page = stores.metadata.list_documents(col.collection_id, after_seq=after, limit=query.limit)
    next_seq = page.next_after_seq
    next_cursor = None if next_seq is None else _encode(stores, col, scope, "s", next_seq)
    return ListResult(page.documents, next_cursor, total, page.next_after_seq is not None)
