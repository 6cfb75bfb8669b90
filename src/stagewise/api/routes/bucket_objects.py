from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from stagewise.api.deps import NamespaceDep, StoresDep, WriterKey, parse_body
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.paging import PageQuery, page_query
from stagewise.api.schemas.ingest_public import batch_row_public, object_public
from stagewise.api.schemas.ingest_responses import (
    ObjectBody,
    ObjectList,
    ObjectResponse,
    ObjectsBatchBody,
    ObjectsBatchResponse,
)
from stagewise.api.schemas.openapi import body_doc, errors
from stagewise.api.schemas.public import list_pagination
from stagewise.api.schemas.requests import ListBody
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.domain.ingest_records import BucketRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import InvalidCursor, ValidationFailed
from stagewise.services import batches
from stagewise.services import objects as svc
from stagewise.services.buckets import get_bucket
from stagewise.services.context import Stores

router = APIRouter(
    prefix="/v1/buckets/{bucket_identifier}/objects",
    tags=["bucket objects"],
    route_class=StrictJSONRoute,
)

JsonBody = Annotated[dict[str, Any], Body()]
# ListObjectsRequest keys this server does not implement: refused rather than ignored.
_UNSUPPORTED_LIST_KEYS = ("filters", "sort", "search", "select", "return_presigned_urls")


def _bucket(stores: Stores, ns: NamespaceRecord, identifier: str) -> BucketRecord:
    return get_bucket(stores, ns=ns, identifier=identifier)


@router.post(
    "",
    response_model=ObjectResponse,
    responses=errors(409),
    openapi_extra=body_doc(ObjectBody),
)
def create_object(
    bucket_identifier: str,
    body: JsonBody,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
    policy: str | None = None,
    auto_process: bool = False,
) -> JsonResponse:
    parse_body(ObjectBody, body)
    bucket = _bucket(stores, ns, bucket_identifier)
    if auto_process:  # refused before anything is written when nothing could process it
        batches.require_sourced_collections(stores, bucket)
    obj, replayed = svc.create_object(stores, bucket=bucket, body=body, policy=policy)
    if auto_process and not replayed:
        batches.submit_objects(stores, bucket=bucket, object_ids=[obj.object_id])
    return JsonResponse(object_public(obj, written=True))


# Literal paths before /{object_identifier}.
@router.post(
    "/batch", response_model=ObjectsBatchResponse, openapi_extra=body_doc(ObjectsBatchBody)
)
def create_objects_batch(
    bucket_identifier: str,
    body: JsonBody,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
    auto_process: bool = False,
) -> JsonResponse:
    bucket = _bucket(stores, ns, bucket_identifier)
    if auto_process:
        batches.require_sourced_collections(stores, bucket)
    items = body.get("objects")
    outcome = svc.create_objects_batch(stores, bucket=bucket, items=items)
    fresh = [o.object_id for _, o, replayed in outcome.succeeded if not replayed]
    if auto_process and fresh:
        batches.submit_objects(stores, bucket=bucket, object_ids=fresh)
    total = len(items) if isinstance(items, list) else 0
    answer = {
        "succeeded": [batch_row_public(i, o, r) for i, o, r in outcome.succeeded],
        "failed": [
            {"object_index": i, "error": e.message, "error_type": e.type} for i, e in outcome.failed
        ],
        "total_requested": total,
        "succeeded_count": len(outcome.succeeded),
        "failed_count": len(outcome.failed),
    }
    if not outcome.succeeded:
        # Every item failed: a 422 in the one error shape, the per-item errors in details.
        raise ValidationFailed(
            f"All {total} objects failed; details.failed names each error",
            code="batch_failed",
            **answer,
        )
    return JsonResponse(answer)


def _list(
    stores: Stores, ns: NamespaceRecord, identifier: str, pq: PageQuery, body: ListBody | None
) -> JsonResponse:
    limit, offset, cursor, include_total = pq.resolve(body, cursors=True)
    if offset and cursor is None:
        raise InvalidCursor(
            "Object lists page by cursor: send pagination.next_cursor, not offset or page",
            field="offset",
        )
    extra = body.model_dump(exclude_none=True) if body is not None else {}
    for key in _UNSUPPORTED_LIST_KEYS:
        if extra.get(key):
            raise ValidationFailed(f"{key} is not supported on object lists yet", field=key)
    bucket = _bucket(stores, ns, identifier)
    page, next_cursor = svc.list_objects(stores, ns=ns, bucket=bucket, cursor=cursor, limit=limit)
    return JsonResponse(
        {
            "results": [object_public(o) for o in page],
            "pagination": list_pagination(
                limit=limit,
                offset=0,
                total=bucket.object_count if include_total else None,
                has_more=next_cursor is not None,
                next_cursor=next_cursor,
            ),
        }
    )


@router.post("/list", response_model=ObjectList)
def list_objects(
    bucket_identifier: str,
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: Annotated[ListBody | None, Body()] = None,
) -> JsonResponse:
    return _list(stores, ns, bucket_identifier, pq, body)


@router.get("", response_model=ObjectList)
def list_objects_get(
    bucket_identifier: str,
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
) -> JsonResponse:
    return _list(stores, ns, bucket_identifier, pq, None)


@router.get("/{object_identifier}", response_model=ObjectResponse)
def get_object(
    bucket_identifier: str,
    object_identifier: str,
    stores: StoresDep,
    ns: NamespaceDep,
    return_presigned_urls: bool = False,
    include_document_count: bool = False,
) -> JsonResponse:
    if return_presigned_urls:
        raise ValidationFailed(
            "presigned URLs are not available on this server", field="return_presigned_urls"
        )
    bucket = _bucket(stores, ns, bucket_identifier)
    return JsonResponse(
        object_public(svc.get_object(stores, bucket=bucket, object_id=object_identifier))
    )


def _update(
    stores: Stores, ns: NamespaceRecord, bid: str, oid: str, body: dict[str, Any], put: bool
) -> JsonResponse:
    bucket = _bucket(stores, ns, bid)
    obj = svc.update_object(stores, bucket=bucket, object_id=oid, body=body, put=put)
    return JsonResponse(object_public(obj))


@router.patch(
    "/{object_identifier}",
    response_model=ObjectResponse,
    responses=errors(409),
    openapi_extra=body_doc(ObjectBody),
)
def patch_object(
    bucket_identifier: str,
    object_identifier: str,
    body: JsonBody,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
) -> JsonResponse:
    return _update(stores, ns, bucket_identifier, object_identifier, body, put=False)


@router.put(
    "/{object_identifier}",
    response_model=ObjectResponse,
    responses=errors(409),
    openapi_extra=body_doc(ObjectBody),
)
def update_object(
    bucket_identifier: str,
    object_identifier: str,
    body: JsonBody,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
) -> JsonResponse:
    return _update(stores, ns, bucket_identifier, object_identifier, body, put=True)


@router.delete("/{object_identifier}", status_code=204, response_class=Response)
def delete_object(
    bucket_identifier: str,
    object_identifier: str,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
) -> Response:
    bucket = _bucket(stores, ns, bucket_identifier)
    svc.delete_object(stores, bucket=bucket, object_id=object_identifier)
    return Response(status_code=204)
