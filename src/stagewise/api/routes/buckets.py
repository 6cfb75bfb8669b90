from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from stagewise.api.deps import NamespaceDep, StoresDep, WriterKey, parse_body
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.paging import PageQuery, page_query
from stagewise.api.schemas.ingest_public import bucket_public
from stagewise.api.schemas.ingest_responses import (
    BucketBody,
    BucketDeleted,
    BucketList,
    BucketResponse,
)
from stagewise.api.schemas.openapi import body_doc, errors
from stagewise.api.schemas.public import list_pagination
from stagewise.api.schemas.requests import ListBody
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import ValidationFailed
from stagewise.services import buckets as svc
from stagewise.services.context import Stores

router = APIRouter(prefix="/v1/buckets", tags=["buckets"], route_class=StrictJSONRoute)

JsonBody = Annotated[dict[str, Any], Body()]
_UNSUPPORTED_LIST_KEYS = ("filters", "sort", "sorts")


@router.post(
    "", response_model=BucketResponse, responses=errors(409), openapi_extra=body_doc(BucketBody)
)
def create_bucket(
    body: JsonBody, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    parse_body(BucketBody, body)  # each key's type: a 422, not a 500 in the service
    return JsonResponse(bucket_public(svc.create_bucket(stores, ns=ns, body=body)))


def _list(
    stores: Stores, ns: NamespaceRecord, pq: PageQuery, body: ListBody | None, search: str | None
) -> JsonResponse:
    limit, offset, _, include_total = pq.resolve(body)
    if body is not None:
        search = body.search or search
        for key in _UNSUPPORTED_LIST_KEYS:
            if (body.model_extra or {}).get(key):
                raise ValidationFailed(
                    f"{key} is not supported on bucket lists; use search", field=key
                )
    page, total = svc.list_buckets(stores, ns=ns, search=search, offset=offset, limit=limit)
    return JsonResponse(
        {
            "results": [bucket_public(b) for b in page],
            "pagination": list_pagination(
                limit=limit,
                offset=offset,
                total=total if include_total else None,
                has_more=offset + len(page) < total,
                next_cursor=None,
            ),
            "total_count": total,
        }
    )


# Literal paths before /{bucket_identifier}.
@router.post("/list", response_model=BucketList)
def list_buckets(
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: Annotated[ListBody | None, Body()] = None,
) -> JsonResponse:
    return _list(stores, ns, pq, body, None)


@router.get("", response_model=BucketList)
def list_buckets_get(
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    search: str | None = None,
) -> JsonResponse:
    return _list(stores, ns, pq, None, search)


@router.get("/{bucket_identifier}", response_model=BucketResponse)
def get_bucket(bucket_identifier: str, stores: StoresDep, ns: NamespaceDep) -> JsonResponse:
    return JsonResponse(bucket_public(svc.get_bucket(stores, ns=ns, identifier=bucket_identifier)))


def _update(
    stores: Stores, ns: NamespaceRecord, identifier: str, body: dict[str, Any], force: bool
) -> JsonResponse:
    parse_body(BucketBody, body)
    bucket = svc.update_bucket(
        stores, ns=ns, identifier=identifier, body=body, force_schema_break=force
    )
    return JsonResponse(bucket_public(bucket))


@router.patch(
    "/{bucket_identifier}",
    response_model=BucketResponse,
    responses=errors(409),
    openapi_extra=body_doc(BucketBody),
)
def patch_bucket(
    bucket_identifier: str,
    body: JsonBody,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
    force_schema_break: bool = False,
) -> JsonResponse:
    return _update(stores, ns, bucket_identifier, body, force_schema_break)


@router.put(
    "/{bucket_identifier}",
    response_model=BucketResponse,
    responses=errors(409),
    openapi_extra=body_doc(BucketBody),
)
def update_bucket(
    bucket_identifier: str,
    body: JsonBody,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
    force_schema_break: bool = False,
) -> JsonResponse:
    return _update(stores, ns, bucket_identifier, body, force_schema_break)


@router.delete("/{bucket_identifier}", response_model=BucketDeleted)
def delete_bucket(
    bucket_identifier: str,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
    force_foreclose: bool = False,  # nothing runs on a bucket's objects here to foreclose
) -> JsonResponse:
    return JsonResponse(svc.delete_bucket(stores, ns=ns, identifier=bucket_identifier))
