from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends

from stagewise.api.deps import CurrentKey, StoresDep, WriterKey
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.paging import PageQuery, page_query, slice_page
from stagewise.api.schemas.openapi import errors
from stagewise.api.schemas.public import list_pagination, namespace_public
from stagewise.api.schemas.requests import CreateNamespaceBody, ListBody, PatchNamespaceBody
from stagewise.api.schemas.responses import NamespaceDeleted, NamespaceList, NamespaceResponse
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.domain.records import NamespaceRecord
from stagewise.services import namespaces as svc
from stagewise.services import stats
from stagewise.services.context import Stores
from stagewise.services.keys import Principal

router = APIRouter(prefix="/v1/namespaces", tags=["namespaces"], route_class=StrictJSONRoute)


def _public(stores: Stores, ns: NamespaceRecord) -> dict[str, object]:
    return namespace_public(ns, stats.namespace_stats(stores, ns))


def _visible(principal: Principal, stores: Stores) -> list[NamespaceRecord]:
    all_ns = stores.metadata.list_namespaces()
    if principal.namespace_id is None:
        return all_ns
    return [ns for ns in all_ns if ns.namespace_id == principal.namespace_id]


def _list(
    stores: Stores, principal: Principal, pq: PageQuery, body: ListBody | None
) -> JsonResponse:
    limit, offset, _, include_total = pq.resolve(body)
    items = _visible(principal, stores)
    if body is not None and body.search:
        items = [ns for ns in items if body.search.lower() in ns.namespace_name.lower()]
    page, has_more = slice_page(items, limit, offset)
    return JsonResponse(
        {
            "results": [_public(stores, ns) for ns in page],
            "pagination": list_pagination(
                limit=limit,
                offset=offset,
                total=len(items) if include_total else None,
                has_more=has_more,
                next_cursor=None,
            ),
            "total_count": len(items),
        }
    )


@router.post("", response_model=NamespaceResponse, responses=errors(409))
def create_namespace(
    body: CreateNamespaceBody, stores: StoresDep, principal: WriterKey
) -> JsonResponse:
    principal.require_admin()
    ns = svc.create_namespace(stores, body=body.model_dump(exclude_unset=False))
    return JsonResponse(_public(stores, ns))


@router.post("/list", response_model=NamespaceList)
def list_namespaces(
    stores: StoresDep,
    principal: CurrentKey,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: Annotated[ListBody | None, Body()] = None,
) -> JsonResponse:
    return _list(stores, principal, pq, body)


@router.get("", response_model=NamespaceList)
def list_namespaces_get(
    stores: StoresDep, principal: CurrentKey, pq: Annotated[PageQuery, Depends(page_query)]
) -> JsonResponse:
    return _list(stores, principal, pq, None)


@router.get("/{namespace_identifier}", response_model=NamespaceResponse, responses=errors(403))
def get_namespace(
    namespace_identifier: str, stores: StoresDep, principal: CurrentKey
) -> JsonResponse:
    ns = svc.namespace_for(stores, principal, namespace_identifier)
    return JsonResponse(_public(stores, ns))


def _update(
    stores: Stores, principal: Principal, identifier: str, body: PatchNamespaceBody, replace: bool
) -> JsonResponse:
    ns = svc.namespace_for(stores, principal, identifier)
    updated = svc.update_namespace(
        stores,
        identifier=ns.namespace_id,
        body=body.model_dump(exclude_unset=True),
        replace=replace,
    )
    return JsonResponse(_public(stores, updated))


@router.patch("/{namespace_identifier}", response_model=NamespaceResponse, responses=errors(409))
def patch_namespace(
    namespace_identifier: str, body: PatchNamespaceBody, stores: StoresDep, principal: WriterKey
) -> JsonResponse:
    return _update(stores, principal, namespace_identifier, body, replace=False)


@router.put("/{namespace_identifier}", response_model=NamespaceResponse, responses=errors(409))
def update_namespace(
    namespace_identifier: str, body: PatchNamespaceBody, stores: StoresDep, principal: WriterKey
) -> JsonResponse:
    return _update(stores, principal, namespace_identifier, body, replace=True)


@router.delete("/{namespace_identifier}", response_model=NamespaceDeleted)
def delete_namespace(
    namespace_identifier: str, stores: StoresDep, principal: WriterKey
) -> JsonResponse:
    ns = svc.namespace_for(stores, principal, namespace_identifier)
    svc.delete_namespace(stores, identifier=ns.namespace_id)
    return JsonResponse(
        {
            "success": True,
            "message": f"Namespace '{ns.namespace_name}' deleted",
            "namespace_id": ns.namespace_id,
        }
    )
