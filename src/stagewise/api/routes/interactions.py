"""/v1/retrievers/interactions (Bearer + X-Namespace): what users did with a run's results.

Registered before the retrievers router, whose /{retriever_id} routes would otherwise take
these paths. Creating and deleting are writes; GET and POST /list are reads (api/deps.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from stagewise.api.deps import NamespaceDep, StoresDep, WriterKey, parse_body
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.paging import PageQuery, page_query
from stagewise.api.schemas.interactions import (
    BulkInteractionsBody,
    BulkInteractionsResponse,
    InteractionDeleted,
    InteractionList,
    InteractionListBody,
    InteractionResponse,
    interaction_public,
)
from stagewise.api.schemas.openapi import body_doc, errors
from stagewise.api.schemas.public import list_pagination
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.domain.interaction_records import InteractionInput
from stagewise.errors import InvalidCursor
from stagewise.services import interactions as svc

router = APIRouter(
    prefix="/v1/retrievers/interactions",
    tags=["retriever interactions"],
    route_class=StrictJSONRoute,
)
Obj = Annotated[dict[str, Any], Body()]
_FILTERS = (
    "execution_id",
    "retriever_id",
    "session_id",
    "user_id",
    "feature_id",
    "interaction_type",
)


def _ignored(body: InteractionInput) -> str | None:
    keys = sorted(k for k in body.model_extra or {} if k != "document_id")
    return f"Ignored keys this body does not declare: {', '.join(keys)}" if keys else None


@router.post(
    "",
    response_model=InteractionResponse,
    responses=errors(404),
    openapi_extra=body_doc(InteractionInput),
)
def create_interaction(
    body: Obj, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    parsed = parse_body(InteractionInput, body)
    record, repeated = svc.create_one(stores, ns, parsed)
    return JsonResponse(interaction_public(record, deduplicated=repeated, warning=_ignored(parsed)))


@router.post(
    "/batch",
    response_model=BulkInteractionsResponse,
    responses=errors(404),
    openapi_extra=body_doc(BulkInteractionsBody),
)
def create_interactions(
    body: Obj, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    parsed = parse_body(BulkInteractionsBody, body)
    records = svc.create_many(stores, ns, parsed.interactions)
    results = [
        {"index": i, "interaction_id": r.interaction_id, "status": "created"}
        for i, r in enumerate(records)
    ]
    return JsonResponse({"created": len(records), "failed": 0, "errors": None, "results": results})


@router.post("/list", response_model=InteractionList, openapi_extra=body_doc(InteractionListBody))
def list_interactions(
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    after: Annotated[str | None, Query(description="Refused: this list pages by offset")] = None,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> JsonResponse:
    parsed = parse_body(InteractionListBody, body) if body is not None else InteractionListBody()
    if after is not None:
        raise InvalidCursor("This list pages by offset; send offset or page", field="after")
    limit, offset, _, include_total = pq.resolve(parsed)
    query = svc.query_of(
        filters={k: getattr(parsed, k) for k in _FILTERS},
        sort_field=parsed.sort.field if parsed.sort else None,
        direction=parsed.sort.direction if parsed.sort else None,
    )
    found, total = svc.listing(
        stores, ns, query, limit=limit, offset=offset, filters=parsed.filters, search=parsed.search
    )
    rows = [interaction_public(r) for r in found]
    pagination = list_pagination(
        limit=limit,
        offset=offset,
        total=total if include_total else None,
        has_more=offset + len(rows) < total,
        next_cursor=None,
    )
    return JsonResponse({"results": rows, "items": rows, "pagination": pagination})


@router.get("/{interaction_id}", response_model=InteractionResponse)
def get_interaction(interaction_id: str, stores: StoresDep, ns: NamespaceDep) -> JsonResponse:
    return JsonResponse(interaction_public(svc.get(stores, ns, interaction_id)))


@router.delete("/{interaction_id}", response_model=InteractionDeleted)
def delete_interaction(
    interaction_id: str, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    deleted = svc.delete(stores, ns, interaction_id)
    return JsonResponse({"success": True, "interaction_id": interaction_id, "deleted": deleted})
