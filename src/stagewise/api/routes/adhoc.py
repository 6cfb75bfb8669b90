"""Adhoc execution (a pipeline sent inline, not stored), batch execute and explain."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.responses import StreamingResponse

from stagewise.api.deps import CurrentKey, NamespaceDep, StoresDep, parse_body
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.executing import guarded
from stagewise.api.routes.paging import PageQuery, page_query
from stagewise.api.schemas.bodies import (
    AdhocExecuteBody,
    BatchBody,
    ExecutionListBody,
    ExplainBody,
)
from stagewise.api.schemas.execution_responses import (
    AdhocExecution,
    AdhocList,
    BatchResponse,
    ExecutionResponse,
    ExplainResponse,
)
from stagewise.api.schemas.openapi import STREAMED, body_doc, errors
from stagewise.api.schemas.retrievers import (
    query_summary,
    status_filter,
    time_filter,
    total_processed,
)
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.domain.pipeline_records import ExecutionRecord, RetrieverRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import NotFound, ValidationFailed
from stagewise.ids import iso
from stagewise.services import execute as exe
from stagewise.services import pagination as pages
from stagewise.services import retrievers as svc
from stagewise.services.context import Stores
from stagewise.services.explain import explain
from stagewise.services.inputs import resolve_inputs
from stagewise.services.pagination import RESULT_WINDOW
from stagewise.storage.index.scan import reuse_residuals

router = APIRouter(prefix="/v1/retrievers", tags=["retrievers"], route_class=StrictJSONRoute)
Obj = Annotated[dict[str, Any], Body()]
MAX_BATCH = 16
ADHOC = {"X-Execution-Mode": "adhoc"}


@router.post(
    "/execute",
    response_model=ExecutionResponse,
    responses={**STREAMED, **errors(429)},
    openapi_extra=body_doc(AdhocExecuteBody),
)
def execute_adhoc(
    body: Obj,
    request: Request,
    stores: StoresDep,
    ns: NamespaceDep,
    principal: CurrentKey,
    wait: Annotated[bool, Query()] = True,
) -> JsonResponse | StreamingResponse:
    parse_body(AdhocExecuteBody, body)  # each key's type: a 422, not a 500 in the service
    collections = svc.resolve_collections(
        stores, ns, list(body.get("collection_identifiers") or body.get("collection_ids") or [])
    )
    target = exe.Target(
        stages=svc.validate_stages(
            list(body.get("stages") or []), collections, stores.settings.max_stages
        ),
        collection_ids=[c.collection_id for c in collections],
        input_schema=svc.validate_input_schema(body.get("input_schema")),
        budget_limits=dict(body.get("budget_limits") or {}),
    )
    extra = {
        "execution_metadata": {"retriever_persisted": False, "execution_mode": "adhoc"},
    }
    return guarded(
        request,
        principal,
        lambda: exe.plan(stores, ns=ns, target=target, body=body),
        wait=wait,
        stream=bool(body.get("stream")),
        legacy=False,
        headers=ADHOC,
        extra=extra,
    )


def _adhoc_summary(x: ExecutionRecord) -> dict[str, Any]:
    return {
        "execution_id": x.execution_id,
        "execution_mode": "adhoc",
        "status": x.status,
        "timestamp": iso(x.created_at),
        "duration_ms": x.total_time_ms,
        "credits_used": x.credits_used,
        "total_processed": total_processed(x),
        "total_returned": x.total_results,
        "cache_hit_rate": x.stage_cache_hit_rate(),
        "query_summary": query_summary(x),
        "stages_completed": x.stages_completed,
        "total_stages": x.total_stages,
        "collection_ids": x.collection_ids,
    }


@router.post(
    "/executions/list", response_model=AdhocList, openapi_extra=body_doc(ExecutionListBody)
)
def list_adhoc(
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> JsonResponse:
    if body is not None:
        parse_body(ExecutionListBody, body)  # each key's type: a 422, not a 500
    body = body or {}
    limit, offset, _, _ = pq.resolve(None, default_limit=20)
    limit = min(limit, 100)
    status = body.get("status")
    statuses = status_filter(status)
    rows, total = stores.metadata.list_executions(
        ns.namespace_id,
        retriever_id=None,
        mode="adhoc",
        statuses=statuses,
        since=time_filter(body.get("start_time"), "start_time"),
        until=time_filter(body.get("end_time"), "end_time"),
        limit=limit,
        offset=offset,
    )
    results = [] if body.get("count_only") else [_adhoc_summary(x) for x in rows]
    return JsonResponse(
        {
            "results": results,
            "total": total,
            "pagination": {
                "total": total,
                "limit": limit,
                "offset": offset,
                "has_next": offset + len(rows) < total,
            },
        }
    )


@router.get("/executions/{execution_id}", response_model=AdhocExecution)
def get_adhoc(
    execution_id: str,
    stores: StoresDep,
    ns: NamespaceDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=RESULT_WINDOW)] = 0,
) -> JsonResponse:
    x = exe.lookup(stores, ns.namespace_id, execution_id)
    if x is None or x.mode != "adhoc":
        raise NotFound("execution", execution_id)
    page = pages.results_of(stores, x, offset, limit)
    detail = exe.execution_public(x, page, pages.detail_pagination(stores, x, page, offset, limit))
    return JsonResponse(
        {
            **detail,
            **_adhoc_summary(x),
            "inputs": orjson.dumps(x.inputs).decode(),
            "inputs_hash": x.inputs_hash,
            "stages": x.stages,
        }
    )


@router.post(
    "/{retriever_id}/execute/batch",
    response_model=BatchResponse,
    responses=errors(429),
    openapi_extra=body_doc(BatchBody),
)
def execute_batch(
    retriever_id: str,
    body: Obj,
    request: Request,
    stores: StoresDep,
    ns: NamespaceDep,
    principal: CurrentKey,
) -> JsonResponse:
    parse_body(BatchBody, body)
    queries = body.get("queries")
    if not isinstance(queries, list) or not 1 <= len(queries) <= MAX_BATCH:
        raise ValidationFailed(
            f"queries must hold 1 to {MAX_BATCH} items",
            code="too_many_queries",
            limits={"max_queries": MAX_BATCH},
        )
    r = svc.get_retriever(stores, ns=ns, identifier=retriever_id)
    limit = (body.get("settings") or {}).get("limit", 10)
    # The queries run one after another, in one of the key's execution slots.
    release = request.app.state.execution_slots.acquire(principal.key_id)
    try:
        # A filter the engine cannot run (ends_with, regex) is scanned once for the batch.
        with reuse_residuals():
            results = _run_batch(stores, ns, r, queries, limit)
    finally:
        release()
    return JsonResponse(
        {"retriever_id": r.retriever_id, "results": results, "total_queries": len(queries)}
    )


def _run_batch(
    stores: Stores, ns: NamespaceRecord, r: RetrieverRecord, queries: list[Any], limit: Any
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for index, query in enumerate(queries):
        if not isinstance(query, dict):
            raise ValidationFailed(f"queries[{index}] must be an object")
        try:
            plan = exe.plan(
                stores,
                ns=ns,
                target=exe.Target.of(r),
                body={
                    "inputs": query.get("inputs") or {},
                    "filters": query.get("filters"),
                    "pagination": {"method": "cursor", "limit": limit},
                },
            )
            record, page, pagination = exe.finish(stores, plan)
            results.append(
                {
                    "query_index": index,
                    "execution_id": record.execution_id,
                    "status": record.status,
                    "documents": page,
                    "pagination": pagination,
                    "error": record.error,
                }
            )
        except ValidationFailed as exc:  # one bad query does not sink the others
            results.append(
                {"query_index": index, "status": "failed", "documents": [], "error": exc.message}
            )
    return results


@router.post(
    "/{retriever_id}/execute/explain",
    response_model=ExplainResponse,
    openapi_extra=body_doc(ExplainBody),
)
def explain_execution(
    retriever_id: str,
    stores: StoresDep,
    ns: NamespaceDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> JsonResponse:
    if body is not None:
        parse_body(ExplainBody, body)
    r = svc.get_retriever(stores, ns=ns, identifier=retriever_id)
    resolve_inputs(r.input_schema, dict((body or {}).get("inputs") or {}))  # 422 if invalid
    return JsonResponse(explain(stores, ns=ns, retriever=r))
