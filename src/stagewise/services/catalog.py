"""Finding retrievers (Mongo-style list filters, sorts) and typeahead suggestions."""

from __future__ import annotations

from typing import Any

from stagewise.domain.filters import parse_path
from stagewise.domain.pipeline_records import RetrieverRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import ValidationFailed
from stagewise.pipeline.docpath import sort_key
from stagewise.services.context import Stores

MAX_TYPEAHEAD_FIELDS = 5


def _get(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _holds(value: Any, wanted: Any) -> bool:
    return wanted in value if isinstance(value, list) else bool(value == wanted)


def _condition(value: Any, cond: Any) -> bool:
    if not isinstance(cond, dict):
        return _holds(value, cond)
    checks = {
        "$eq": lambda w: _holds(value, w),
        "$ne": lambda w: not _holds(value, w),
        "$in": lambda w: any(_holds(value, x) for x in w),
        "$nin": lambda w: not any(_holds(value, x) for x in w),
        "$exists": lambda w: (value is not None) == bool(w),
    }
    for op, wanted in cond.items():
        if op not in checks:
            raise ValidationFailed(
                f"Unknown list filter operator '{op}'; use one of {sorted(checks)}",
                code="invalid_filter",
            )
        if op in ("$in", "$nin") and not isinstance(wanted, list):
            raise ValidationFailed(f"{op} needs a list", code="invalid_filter")
        if not checks[op](wanted):
            return False
    return True


def list_retrievers(
    stores: Stores,
    *,
    ns: NamespaceRecord,
    search: str | None = None,
    filters: dict[str, Any] | None = None,
    sorts: list[dict[str, Any]] | None = None,
    case_sensitive: bool = False,
) -> list[RetrieverRecord]:
    items = stores.metadata.list_retrievers(ns.namespace_id)
    if search:
        needle = search if case_sensitive else search.lower()
        items = [
            r
            for r in items
            if needle in (r.retriever_name if case_sensitive else r.retriever_name.lower())
            or needle
            in ((r.description or "") if case_sensitive else (r.description or "").lower())
        ]
    if filters:
        items = [
            r
            for r in items
            if all(_condition(_get(r.model_dump(mode="json"), k), c) for k, c in filters.items())
        ]
    dumped = {r.retriever_id: r.model_dump(mode="json") for r in items} if sorts else {}
    for spec in reversed(sorts or []):  # stable sorts applied last-key-first
        field = spec.get("field")
        if not isinstance(field, str):
            raise ValidationFailed("each sort needs a field", code="invalid_sort")
        desc = str(spec.get("direction") or "asc").lower() == "desc"
        items.sort(key=lambda r, f=field: sort_key(_get(dumped[r.retriever_id], f)), reverse=desc)  # type: ignore[misc]
    return items


def typeahead(
    stores: Stores, *, ns: NamespaceRecord, q: str, fields: list[str], limit: int
) -> dict[str, Any]:
    """Prefix suggestions from field values (with counts), collection names and recent queries."""
    if len(fields) > MAX_TYPEAHEAD_FIELDS:
        raise ValidationFailed(
            f"typeahead consults at most {MAX_TYPEAHEAD_FIELDS} fields", code="too_many_fields"
        )
    for field in fields:
        if parse_path(field) is None:
            raise ValidationFailed(
                f"'{field}' is not a field path such as 'metadata.brand'",
                code="invalid_field",
                field=field,
            )
    prefix = q.lower()
    collections = [
        c
        for c in stores.metadata.list_collections(ns.namespace_id)
        if not c.collection_name.startswith("_")
    ]
    values: list[dict[str, Any]] = []
    exact = True
    for field in fields:
        counts: dict[Any, int] = {}
        for col in collections:
            # A read: no index is created; an unindexed field is counted by a bounded scan.
            answer = stores.index.facet(col.collection_id, field, 1000, None)
            exact = exact and answer.exact
            for value, count in answer.values:
                if str(value).lower().startswith(prefix):
                    counts[value] = counts.get(value, 0) + count
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]
        values += [{"field": field, "value": str(v), "count": n} for v, n in ranked]
    names = [
        {"collection_id": c.collection_id, "collection_name": c.collection_name}
        for c in collections
        if c.collection_name.lower().startswith(prefix)
    ][:limit]
    recent: list[str] = []
    for mode in ("named", "adhoc"):
        runs, _ = stores.metadata.list_executions(
            ns.namespace_id, retriever_id=None, mode=mode, limit=200
        )
        for run in runs:
            query = run.inputs.get("query")
            if isinstance(query, str) and query.lower().startswith(prefix) and query not in recent:
                recent.append(query)
    recent = recent[:limit]
    suggestions = list(dict.fromkeys([v["value"] for v in values] + recent))[:limit]
    return {
        "query": q,
        "suggestions": suggestions,
        "values": values,
        "collections": names,
        "recent_searches": recent,
        "warnings": []
        if exact
        else [
            "a field without a payload index was counted over a bounded sample of "
            "points: its counts are lower bounds"
        ],
    }
