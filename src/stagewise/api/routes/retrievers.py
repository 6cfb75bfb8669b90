from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.responses import StreamingResponse

from stagewise.api.deps import (
    CurrentKey,
    NamespaceDep,
    StoresDep,
    WriterKey,
    parse_body,
    store_read,
)
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.executing import guarded
from stagewise.api.routes.paging import PageQuery, page_query, slice_page
from stagewise.api.schemas.bodies import (
    ExecuteBody,
    ExecutionListBody,
    RetrieverBody,
    RetrieverCloneBody,
    RetrieverListBody,
    RetrieverPatchBody,
)
from stagewise.api.schemas.execution_responses import (
    ExecutionList,
    ExecutionProfile,
    ExecutionResponse,
    ExecutionStatus,
    ReplayResponse,
    RetrieverCloned,
    RetrieverDeleted,
    RetrieverList,
    RetrieverResponse,
    RetrieverUpdated,
    StageDefinition,
    TypeaheadResponse,
)
from stagewise.api.schemas.openapi import STREAMED, body_doc, errors
from stagewise.api.schemas.public import list_pagination
from stagewise.api.schemas.retrievers import (
    execution_summary,
    retriever_public,
    status_filter,
    time_filter,
)
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.errors import NotFound
from stagewise.pipeline.registry import stage_definitions
from stagewise.services import catalog, interactions
from stagewise.services import execute as exe
from stagewise.services import pagination as pages
from stagewise.services import retrievers as svc
from stagewise.services.explain import explain as explain_plan
from stagewise.services.pagination import RESULT_WINDOW
from stagewise.services.replay import replay

router = APIRouter(prefix="/v1/retrievers", tags=["retrievers"], route_class=StrictJSONRoute)
Obj = Annotated[dict[str, Any], Body()]


# Literal routes before /{retriever_id}.
@router.get("/stages", response_model=list[StageDefinition])
def list_stages() -> JsonResponse:
    return JsonResponse(stage_definitions())


@router.post(
    "",
    response_model=RetrieverResponse,
    responses=errors(409),
    openapi_extra=body_doc(RetrieverBody),
)
def create_retriever(body: Obj, stores: StoresDep, ns: NamespaceDep, _: WriterKey) -> JsonResponse:
    # Each key's type first: a 422, where the service would trip with a 500 (the body, not
    # the model, goes on: the service reads it as before).
    parse_body(RetrieverBody, body)
    return JsonResponse(retriever_public(svc.create_retriever(stores, ns=ns, body=body)))


def _list(stores: StoresDep, ns: NamespaceDep, pq: PageQuery, body: dict[str, Any]) -> JsonResponse:
    limit, offset, _, _ = pq.resolve(None)
    sorts = body.get("sorts") or ([body["sort"]] if isinstance(body.get("sort"), dict) else [])
    items = catalog.list_retrievers(
        stores,
        ns=ns,
        search=body.get("search"),
        filters=body.get("filters"),
        sorts=sorts,
        case_sensitive=bool(body.get("case_sensitive")),
    )
    page, has_more = slice_page(items, limit, offset)
    return JsonResponse(
        {
            "results": [retriever_public(r) for r in page],
            "total": len(items),
            "pagination": list_pagination(
                limit=limit, offset=offset, total=len(items), has_more=has_more, next_cursor=None
            ),
        }
    )


@router.post("/list", response_model=RetrieverList, openapi_extra=body_doc(RetrieverListBody))
def list_retrievers(
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> JsonResponse:
    if body is not None:
        parse_body(RetrieverListBody, body)  # each key's type: a 422, not a 500 in the service
    return _list(stores, ns, pq, body or {})


@router.get("", response_model=RetrieverList)
def list_retrievers_get(
    stores: StoresDep, ns: NamespaceDep, pq: Annotated[PageQuery, Depends(page_query)]
) -> JsonResponse:
    return _list(stores, ns, pq, {})


@router.get("/typeahead", response_model=TypeaheadResponse)
def typeahead(
    stores: StoresDep,
    ns: NamespaceDep,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    fields: str | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> JsonResponse:
    wanted = [f.strip() for f in (fields or "").split(",") if f.strip()]
    return JsonResponse(catalog.typeahead(stores, ns=ns, q=q, fields=wanted, limit=limit))


@router.get("/{retriever_id}", response_model=RetrieverResponse)
def get_retriever(retriever_id: str, stores: StoresDep, ns: NamespaceDep) -> JsonResponse:
    return JsonResponse(retriever_public(svc.get_retriever(stores, ns=ns, identifier=retriever_id)))


@router.patch(
    "/{retriever_id}",
    response_model=RetrieverUpdated,
    responses=errors(409),
    openapi_extra=body_doc(RetrieverPatchBody),
)
def patch_retriever(
    retriever_id: str, body: Obj, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    parse_body(RetrieverPatchBody, body)
    r = svc.patch_retriever(stores, ns=ns, identifier=retriever_id, body=body)
    return JsonResponse({"retriever": retriever_public(r)})


@router.delete("/{retriever_id}", response_model=RetrieverDeleted)
def delete_retriever(
    retriever_id: str, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    r = svc.delete_retriever(stores, ns=ns, identifier=retriever_id)
    return JsonResponse(
        {"success": True, "message": "Retriever deleted", "retriever_id": r.retriever_id}
    )


@router.post(
    "/{retriever_id}/clone",
    response_model=RetrieverCloned,
    responses=errors(409),
    openapi_extra=body_doc(RetrieverCloneBody),
)
def clone_retriever(
    retriever_id: str, body: Obj, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    parse_body(RetrieverCloneBody, body)
    source = svc.get_retriever(stores, ns=ns, identifier=retriever_id)
    r = svc.clone_retriever(stores, ns=ns, identifier=retriever_id, body=body)
    return JsonResponse(
        {"retriever": retriever_public(r), "source_retriever_id": source.retriever_id}
    )


@router.post(
    "/{retriever_id}/execute",
    response_model=ExecutionResponse,
    responses={**STREAMED, **errors(429)},
    openapi_extra=body_doc(ExecuteBody),
)
def execute_retriever(
    retriever_id: str,
    body: Obj,
    request: Request,
    stores: StoresDep,
    ns: NamespaceDep,
    principal: CurrentKey,
    include_legacy_results: Annotated[bool, Query()] = False,
    skip_cache: Annotated[bool, Query()] = False,
    wait: Annotated[
        bool, Query(description="false: answer pending at once, run in background")
    ] = True,
    explain: Annotated[bool, Query(description="add the plan with per-stage estimates")] = False,
) -> JsonResponse | StreamingResponse:
    parse_body(ExecuteBody, body)
    r = svc.get_retriever(stores, ns=ns, identifier=retriever_id)
    extra = None
    if explain or body.get("explain"):
        # The plan as it stood before this run (estimates from earlier runs).
        extra = {"explain_plan": explain_plan(stores, ns=ns, retriever=r)}
    return guarded(
        request,
        principal,
        lambda: exe.plan(
            stores,
            ns=ns,
            target=exe.Target.of(r),
            body=body,
            skip_cache=skip_cache or bool(body.get("skip_cache")),
        ),
        wait=wait,
        stream=bool(body.get("stream")),
        legacy=include_legacy_results or bool(body.get("include_legacy_results")),
        extra=extra,
    )


def _execution(stores: StoresDep, ns: NamespaceDep, retriever_id: str, execution_id: str) -> Any:
    r = svc.get_retriever(stores, ns=ns, identifier=retriever_id)
    record = exe.lookup(stores, ns.namespace_id, execution_id)
    if record is None or record.retriever_id != r.retriever_id:
        raise NotFound("execution", execution_id, retriever_id=r.retriever_id)
    return record


@router.post(
    "/{retriever_id}/executions/list",
    response_model=ExecutionList,
    openapi_extra=body_doc(ExecutionListBody),
)
def list_executions(
    retriever_id: str,
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> JsonResponse:
    if body is not None:
        parse_body(ExecutionListBody, body)
    r = svc.get_retriever(stores, ns=ns, identifier=retriever_id)
    limit, offset, _, _ = pq.resolve(None, default_limit=20)
    body = body or {}
    rows, total = stores.metadata.list_executions(
        ns.namespace_id,
        retriever_id=r.retriever_id,
        mode="named",
        statuses=status_filter(body.get("status")),
        since=time_filter(body.get("start_time"), "start_time"),
        until=time_filter(body.get("end_time"), "end_time"),
        limit=limit,
        offset=offset,
    )
    return JsonResponse(
        {
            "results": [execution_summary(x) for x in rows],
            "pagination": {
                "total": total,
                "limit": limit,
                "offset": offset,
                "has_next": offset + len(rows) < total,
            },
        }
    )


@router.get("/{retriever_id}/executions/{execution_id}", response_model=ExecutionResponse)
async def get_execution(
    retriever_id: str,
    execution_id: str,
    stores: StoresDep,
    ns: NamespaceDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=RESULT_WINDOW)] = 0,
) -> JsonResponse:
    # Async with a read that runs inline on the embedded store: the heart of the product is
    # polled often, and a thread-pool hop cost as much as the read itself.
    def detail() -> dict[str, Any]:
        record = _execution(stores, ns, retriever_id, execution_id)
        page = pages.results_of(stores, record, offset, limit)
        pagination = pages.detail_pagination(stores, record, page, offset, limit)
        return exe.execution_public(record, page, pagination)

    return JsonResponse(await store_read(stores, detail))


@router.post(
    "/{retriever_id}/executions/{execution_id}/replay",
    response_model=ReplayResponse,
    responses=errors(409, 429),
)
def replay_execution(
    retriever_id: str,
    execution_id: str,
    request: Request,
    stores: StoresDep,
    ns: NamespaceDep,
    principal: CurrentKey,
    depth: Annotated[
        int, Query(ge=1, le=1000, description="How many of each ranking to compare")
    ] = 100,
) -> JsonResponse:
    """Run a past execution's inputs again against today's index and retriever version (a new
    execution, never a cache hit) and return the ranking diff: moved, new and gone hits."""
    r = svc.get_retriever(stores, ns=ns, identifier=retriever_id)
    source = _execution(stores, ns, retriever_id, execution_id)
    release = request.app.state.execution_slots.acquire(principal.key_id)
    return JsonResponse(
        replay(stores, ns=ns, retriever=r, source=source, depth=depth, release=release)
    )


@router.get("/{retriever_id}/executions/{execution_id}/status", response_model=ExecutionStatus)
def execution_status(
    retriever_id: str, execution_id: str, stores: StoresDep, ns: NamespaceDep
) -> JsonResponse:
    x = _execution(stores, ns, retriever_id, execution_id)
    return JsonResponse(
        {
            "execution_id": x.execution_id,
            "status": x.status,
            "current_stage": x.current_stage,
            "stages_completed": x.stages_completed,
            "total_stages": x.total_stages,
            "error": x.error,
            "heartbeat_at": x.heartbeat_at.isoformat() if x.heartbeat_at else None,
            "trace_id": x.trace_id,
        }
    )


@router.get("/{retriever_id}/executions/{execution_id}/profile", response_model=ExecutionProfile)
def execution_profile(
    retriever_id: str, execution_id: str, stores: StoresDep, ns: NamespaceDep
) -> JsonResponse:
    x = _execution(stores, ns, retriever_id, execution_id)
    stages = [
        {
            "stage_name": name,
            **{
                k: s.get(k)
                for k in (
                    "stage_id",
                    "duration_ms",
                    "input_count",
                    "output_count",
                    "efficiency",
                    "stage_cache_hit",
                    "error",
                )
                if k in s  # a stage without a cache, or without an error, has no such key
            },
        }
        for name, s in x.stage_statistics.items()
    ]
    return JsonResponse(
        {
            "execution_id": x.execution_id,
            "status": x.status,
            "total_time_ms": x.total_time_ms,
            "credits_used": x.credits_used,
            "stages": stages,
            "interaction_counts": interactions.counts(stores, ns, x.execution_id),
        }
    )
