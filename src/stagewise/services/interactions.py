"""Retriever interactions: recorded against what exists in the caller's namespace, listed,
and counted per execution. Every id is looked up in the key's namespace only, so another
namespace's executions, documents and interactions read as unknown (404)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, timedelta
from typing import Any

from stagewise.domain.filters import matches, parse_filter
from stagewise.domain.interaction_records import (
    QUERY_LEVEL_TYPES,
    SORT_FIELDS,
    InteractionInput,
    InteractionQuery,
    InteractionRecord,
)
from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import FilterScanTooLarge, NotFound, ValidationFailed
from stagewise.ids import new_id, utc_now
from stagewise.services.context import Stores
from stagewise.services.execute import lookup

DEDUP_WINDOW = timedelta(minutes=5)  # the SDK's: a repeat within it is dropped


def _refuse(message: str, index: int | None, **details: Any) -> ValidationFailed:
    where: dict[str, Any] = {} if index is None else {"index": index}
    prefix = "" if index is None else f"interactions[{index}]: "
    return ValidationFailed(prefix + message, **where, **details)


def _record(
    ns: NamespaceRecord, body: InteractionInput, run: ExecutionRecord | None, index: int | None
) -> InteractionRecord:
    types = list(body.interaction_type)
    if body.retriever_id is not None and body.execution_id is None:
        raise _refuse(
            "execution_id is required with retriever_id (every execute response returns it)",
            index,
            field="execution_id",
        )
    if run is not None and body.retriever_id not in (None, run.retriever_id):
        raise _refuse(
            f"execution '{run.execution_id}' ran retriever '{run.retriever_id}', "
            f"not '{body.retriever_id}'",
            index,
            field="retriever_id",
        )
    size = body.result_set_size
    if size == 0 and types != ["zero_results"]:
        raise _refuse(
            "result_set_size 0 is accepted only with interaction_type ['zero_results']",
            index,
            field="result_set_size",
        )
    if size is not None and size > 0 and body.position >= size:
        raise _refuse(
            f"position {body.position} is outside a result set of {size}", index, field="position"
        )
    now = utc_now()
    occurred = body.occurred_at
    if occurred is not None:
        occurred = occurred.replace(tzinfo=UTC) if occurred.tzinfo is None else occurred
        occurred = min(occurred, now)
    return InteractionRecord(
        interaction_id=new_id("int_"),
        namespace_id=ns.namespace_id,
        feature_id=body.feature_id,
        interaction_types=types,
        position=body.position,
        execution_id=run.execution_id if run is not None else None,
        retriever_id=run.retriever_id if run is not None else None,
        user_id=body.user_id,
        session_id=body.session_id,
        metadata=body.metadata,
        query_snapshot=body.query_snapshot,
        document_score=body.document_score,
        result_set_size=size,
        feature_uri=body.feature_uri,
        occurred_at=occurred,
        created_at=now,
    )


def _check_documents(
    stores: Stores,
    ns: NamespaceRecord,
    records: Sequence[InteractionRecord],
    runs: dict[str, ExecutionRecord],
) -> None:
    """Each interaction's document exists in the collections its execution searched (all of
    the namespace's without an execution); a search-level type (zero_results...) names none."""
    everywhere: list[str] | None = None
    found: set[tuple[str | None, str]] = set()
    wanted: dict[tuple[str, ...], set[str]] = {}
    scopes: list[tuple[str, ...]] = []
    for r in records:
        run = runs.get(r.execution_id or "")
        cols = run.collection_ids if run is not None and run.collection_ids else None
        if cols is None:
            if everywhere is None:
                everywhere = [
                    c.collection_id for c in stores.metadata.list_collections(ns.namespace_id)
                ]
            cols = everywhere
        scope = tuple(cols)
        scopes.append(scope)
        if not QUERY_LEVEL_TYPES.issuperset(r.interaction_types):
            wanted.setdefault(scope, set()).add(r.feature_id)
    for scope, doc_ids in wanted.items():
        for collection_id in scope:
            hits = stores.metadata.get_documents(collection_id, sorted(doc_ids))
            found.update((collection_id, d) for d in hits)
    for index, (r, scope) in enumerate(zip(records, scopes, strict=True)):
        if QUERY_LEVEL_TYPES.issuperset(r.interaction_types):
            continue
        if not any((c, r.feature_id) in found for c in scope):
            raise NotFound("document", r.feature_id, index=index, namespace_id=ns.namespace_id)


def build(
    stores: Stores, ns: NamespaceRecord, bodies: Sequence[InteractionInput], *, batch: bool
) -> list[InteractionRecord]:
    """Records for `bodies`, every one checked before any is stored (all or nothing)."""
    runs: dict[str, ExecutionRecord] = {}
    records = []
    for index, body in enumerate(bodies):
        at = index if batch else None
        run = None
        if body.execution_id is not None:
            run = runs.get(body.execution_id) or lookup(stores, ns.namespace_id, body.execution_id)
            if run is None:
                details = {} if at is None else {"index": at}
                raise NotFound(
                    "execution", body.execution_id, namespace_id=ns.namespace_id, **details
                )
            runs[run.execution_id] = run
        records.append(_record(ns, body, run, at))
    _check_documents(stores, ns, records, runs)
    return records


def duplicate_of(stores: Stores, record: InteractionRecord) -> InteractionRecord | None:
    """A recent interaction with the same execution, document and types, if any."""
    if record.execution_id is None:
        return None
    query = InteractionQuery(
        execution_id=record.execution_id,
        feature_id=record.feature_id,
        since=record.created_at - DEDUP_WINDOW,
    )
    recent, _ = stores.metadata.list_interactions(record.namespace_id, query, limit=100)
    kinds = set(record.interaction_types)
    return next((r for r in recent if set(r.interaction_types) == kinds), None)


def create_one(
    stores: Stores, ns: NamespaceRecord, body: InteractionInput
) -> tuple[InteractionRecord, bool]:
    """The stored record and False, or the record as sent and True when it repeats one."""
    (record,) = build(stores, ns, [body], batch=False)
    if duplicate_of(stores, record) is not None:
        return record, True
    stores.metadata.create_interactions([record])
    return record, False


def create_many(
    stores: Stores, ns: NamespaceRecord, bodies: Sequence[InteractionInput]
) -> list[InteractionRecord]:
    """A backfill: no deduplication (the SDK's bulk path skips it too)."""
    records = build(stores, ns, bodies, batch=True)
    stores.metadata.create_interactions(records)
    return records


def get(stores: Stores, ns: NamespaceRecord, interaction_id: str) -> InteractionRecord:
    found = stores.metadata.get_interaction(ns.namespace_id, interaction_id)
    if found is None:
        raise NotFound("interaction", interaction_id, namespace_id=ns.namespace_id)
    return found


def delete(stores: Stores, ns: NamespaceRecord, interaction_id: str) -> bool:
    return stores.metadata.delete_interaction(ns.namespace_id, interaction_id)


def query_of(
    *,
    filters: dict[str, Any],  # InteractionQuery's filter fields
    sort_field: str | None,
    direction: str | None,
) -> InteractionQuery:
    field = sort_field or "timestamp"
    if field not in SORT_FIELDS:
        raise ValidationFailed(
            f"sort.field must be one of {', '.join(SORT_FIELDS)}", field="sort.field"
        )
    if direction not in (None, "asc", "desc"):
        raise ValidationFailed("sort.direction must be asc or desc", field="sort.direction")
    return InteractionQuery(**filters, sort_field=field, descending=direction != "asc")


def listing(
    stores: Stores,
    ns: NamespaceRecord,
    query: InteractionQuery,
    *,
    limit: int,
    offset: int,
    filters: Any = None,
    search: str | None = None,
) -> tuple[list[InteractionRecord], int]:
    """A page and the total. `filters` (a LogicalOperator over the interaction's public
    fields) and `search` (a case-insensitive substring of any metadata string) run in Python
    over what the simple fields narrow to, at most `filter_scan_cap` interactions."""
    flt = parse_filter(filters, where="filters")
    if flt is None and not search:
        return stores.metadata.list_interactions(ns.namespace_id, query, limit=limit, offset=offset)
    cap = stores.settings.filter_scan_cap
    rows, total = stores.metadata.list_interactions(
        ns.namespace_id, query, limit=cap or _NO_CAP, offset=0
    )
    if cap and total > cap:
        raise FilterScanTooLarge(
            f"'filters' and 'search' run over at most {cap} interactions and these match "
            f"{total}: narrow them first with the simple fields (execution_id, session_id, ...)",
            field="filters" if flt is not None else "search",
            scan_cap=cap,
        )
    needle = (search or "").lower()
    kept = [
        r
        for r in rows
        if (flt is None or matches(flt, _payload(r)))
        and (not needle or any(needle in s.lower() for s in _strings(r.metadata)))
    ]
    return kept[offset : offset + limit], len(kept)


_NO_CAP = 2**31 - 1


def _payload(r: InteractionRecord) -> dict[str, Any]:
    """What a filter sees: the fields of the public interaction."""
    out = r.model_dump(mode="json", exclude={"namespace_id", "interaction_types"})
    out["interaction_type"] = r.interaction_types
    out["timestamp"] = out["created_at"]
    return out


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def counts(stores: Stores, ns: NamespaceRecord, execution_id: str) -> dict[str, int]:
    return stores.metadata.count_interactions(ns.namespace_id, execution_id)
