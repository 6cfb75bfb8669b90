"""Batches, under their bucket (Bearer + X-Namespace) and by id alone (/v1/batches, Bearer
only: the namespace comes from the batch)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from stagewise.api.deps import CurrentKey, NamespaceDep, StoresDep, WriterKey, parse_body
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.paging import PageQuery, page_query
from stagewise.api.schemas.batch_responses import (
    BatchDeleted,
    BatchList,
    BatchResponse,
    TaskCancelResponse,
    TaskResponse,
)
from stagewise.api.schemas.openapi import errors
from stagewise.api.schemas.public import counted_page
from stagewise.api.schemas.requests import ListBody
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.domain.ingest_records import BatchRecord, TaskRecord
from stagewise.services import batches as svc
from stagewise.services.batch_views import batch_public, task_public
from stagewise.services.buckets import get_bucket
from stagewise.services.context import Stores
from stagewise.services.tasks import visible_namespaces

router = APIRouter(tags=["batches"], route_class=StrictJSONRoute)
BB = "/v1/buckets/{bucket_identifier}/batches"
OptionalBody = Annotated[dict[str, Any] | None, Body()]


def _batch(stores: Stores, batch: BatchRecord) -> JsonResponse:
    return JsonResponse(batch_public(stores, batch))


class BatchListBody(ListBody):
    status: str | None = None
    bucket_id: str | None = None
    collection_id: str | None = None


def _list(
    stores: Stores,
    namespace_id: str | None,
    raw: dict[str, Any],
    pq: PageQuery,
    bucket_id: str | None = None,
) -> JsonResponse:
    body = parse_body(BatchListBody, raw)
    limit, offset, _, _ = pq.resolve(body, default_limit=100)
    scope = {
        "bucket_id": bucket_id or body.bucket_id,
        "status": body.status,
    }
    if body.collection_id is None:
        items, total = stores.ingest.list_batches(namespace_id, offset=offset, limit=limit, **scope)
    else:
        # The store cannot filter by collection: filter every batch in scope, then page, so
        # that total_count counts the filtered list.
        matching: list[BatchRecord] = []
        seen = 0
        while True:
            page, in_scope = stores.ingest.list_batches(
                namespace_id, offset=seen, limit=1000, **scope
            )
            seen += len(page)
            matching += [b for b in page if body.collection_id in b.collection_ids]
            if not page or seen >= in_scope:
                break
        items, total = matching[offset : offset + limit], len(matching)
    return JsonResponse(
        counted_page(
            [batch_public(stores, b) for b in items], total=total, limit=limit, offset=offset
        )
    )


def _cancelled(task: TaskRecord | None, batch: BatchRecord) -> JsonResponse:
    view: dict[str, Any] = {
        "task_id": batch.task_id or batch.batch_id,
        "task_type": "api_buckets_batches_process",
        "status": "CANCELED",
    }
    if task is not None:
        view = task_public(task)
    # No Ray here: one in-process or Celery task per batch, asked to stop between slices.
    accepted = 1 if task is not None else 0
    view["cancellation"] = {
        "ray_jobs_requested": accepted,
        "ray_jobs_accepted": accepted,
        "ray_jobs_refused": 0,
    }
    return JsonResponse(view)


@router.post(BB, response_model=BatchResponse, responses=errors(404))
def create_batch(
    bucket_identifier: str,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
    body: OptionalBody = None,
    auto_submit: bool | None = None,
    trigger_processing: bool | None = None,
    skip_validation: bool | None = None,
) -> JsonResponse:
    raw = body or {}
    bucket = get_bucket(stores, ns=ns, identifier=bucket_identifier)
    batch = svc.create_batch(stores, bucket=bucket, body=raw)
    submit = auto_submit if auto_submit is not None else raw.get("auto_submit")
    if submit is None:
        submit = (
            trigger_processing if trigger_processing is not None else raw.get("trigger_processing")
        )
    if submit:
        svc.submit(stores, batch)
        batch = svc.batch_in_bucket(stores, bucket, batch.batch_id)
    return _batch(stores, batch)


@router.post(f"{BB}/list", response_model=BatchList)
def list_bucket_batches(
    bucket_identifier: str,
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: OptionalBody = None,
) -> JsonResponse:
    bucket = get_bucket(stores, ns=ns, identifier=bucket_identifier)
    return _list(stores, ns.namespace_id, body or {}, pq, bucket.bucket_id)


@router.post(f"{BB}/{{batch_id}}/objects", response_model=BatchResponse, responses=errors(409))
def add_objects(
    bucket_identifier: str,
    batch_id: str,
    body: Annotated[dict[str, Any], Body()],
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
) -> JsonResponse:
    bucket = get_bucket(stores, ns=ns, identifier=bucket_identifier)
    return _batch(stores, svc.add_objects(stores, bucket=bucket, batch_id=batch_id, body=body))


@router.post(f"{BB}/{{batch_id}}/submit", response_model=TaskResponse, responses=errors(409))
def submit_batch(
    bucket_identifier: str,
    batch_id: str,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
    body: OptionalBody = None,
    force: bool | None = None,
) -> JsonResponse:
    bucket = get_bucket(stores, ns=ns, identifier=bucket_identifier)
    task = svc.submit(stores, svc.batch_in_bucket(stores, bucket, batch_id))
    return JsonResponse(task_public(task))


@router.get(f"{BB}/{{batch_id}}", response_model=BatchResponse)
def get_batch(
    bucket_identifier: str, batch_id: str, stores: StoresDep, ns: NamespaceDep
) -> JsonResponse:
    bucket = get_bucket(stores, ns=ns, identifier=bucket_identifier)
    return _batch(stores, svc.batch_in_bucket(stores, bucket, batch_id))


@router.patch(f"{BB}/{{batch_id}}", response_model=BatchResponse)
def patch_batch(
    bucket_identifier: str,
    batch_id: str,
    body: Annotated[dict[str, Any], Body()],
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
) -> JsonResponse:
    bucket = get_bucket(stores, ns=ns, identifier=bucket_identifier)
    return _batch(stores, svc.patch_batch(stores, bucket=bucket, batch_id=batch_id, body=body))


@router.delete(f"{BB}/{{batch_id}}", response_model=BatchDeleted, responses=errors(409))
def delete_batch(
    bucket_identifier: str, batch_id: str, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    bucket = get_bucket(stores, ns=ns, identifier=bucket_identifier)
    svc.delete_batch(stores, bucket=bucket, batch_id=batch_id)
    return JsonResponse({"message": "Successfully deleted", "success": True})


@router.post(f"{BB}/{{batch_id}}/cancel", response_model=TaskCancelResponse, responses=errors(409))
def cancel_bucket_batch(
    bucket_identifier: str,
    batch_id: str,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
    reason: str | None = None,
) -> JsonResponse:
    bucket = get_bucket(stores, ns=ns, identifier=bucket_identifier)
    batch = svc.batch_in_bucket(stores, bucket, batch_id)
    return _cancelled(svc.cancel(stores, batch, reason), batch)


# Bearer only: the batch names its namespace.
@router.post("/v1/batches/list", response_model=BatchList)
def list_batches(
    stores: StoresDep,
    principal: CurrentKey,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: OptionalBody = None,
) -> JsonResponse:
    scope = visible_namespaces(principal)
    return _list(stores, next(iter(scope)) if scope else None, body or {}, pq)


@router.get("/v1/batches/{batch_id}", response_model=BatchResponse)
def get_batch_by_id(batch_id: str, stores: StoresDep, principal: CurrentKey) -> JsonResponse:
    return _batch(stores, svc.find_batch(stores, batch_id, visible_namespaces(principal)))


@router.post(
    "/v1/batches/{batch_id}/cancel", response_model=TaskCancelResponse, responses=errors(409)
)
def cancel_batch(
    batch_id: str, stores: StoresDep, principal: CurrentKey, reason: str | None = None
) -> JsonResponse:
    principal.require_write()
    batch = svc.find_batch(stores, batch_id, visible_namespaces(principal))
    return _cancelled(svc.cancel(stores, batch, reason), batch)
