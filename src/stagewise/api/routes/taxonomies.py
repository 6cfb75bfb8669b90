"""/v1/taxonomies (Bearer + X-Namespace; `{taxonomy_identifier}` is an id or a name)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from stagewise.api.deps import NamespaceDep, StoresDep, WriterKey, parse_body
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.paging import PageQuery, page_query
from stagewise.api.schemas.openapi import body_doc, errors
from stagewise.api.schemas.public import list_pagination
from stagewise.api.schemas.requests import ListBody
from stagewise.api.schemas.taxonomies import (
    JoinResponse,
    TaxonomyBody,
    TaxonomyDeleted,
    TaxonomyExecuteBody,
    TaxonomyList,
    TaxonomyPatchBody,
    TaxonomyResponse,
    taxonomy_public,
)
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.domain.records import NamespaceRecord
from stagewise.services import taxonomies as svc
from stagewise.services.context import Stores

router = APIRouter(prefix="/v1/taxonomies", tags=["taxonomies"], route_class=StrictJSONRoute)
Obj = Annotated[dict[str, Any], Body()]


@router.post(
    "", response_model=TaxonomyResponse, responses=errors(409), openapi_extra=body_doc(TaxonomyBody)
)
def create_taxonomy(body: Obj, stores: StoresDep, ns: NamespaceDep, _: WriterKey) -> JsonResponse:
    parse_body(TaxonomyBody, body)
    return JsonResponse(taxonomy_public(svc.create_taxonomy(stores, ns=ns, body=body)))


def _list(
    stores: Stores, ns: NamespaceRecord, pq: PageQuery, body: ListBody | None
) -> JsonResponse:
    limit, offset, _, include_total = pq.resolve(body)
    search = body.search if body is not None else None
    page, total = svc.list_taxonomies(stores, ns=ns, search=search, offset=offset, limit=limit)
    return JsonResponse(
        {
            "results": [taxonomy_public(t) for t in page],
            "pagination": list_pagination(
                limit=limit,
                offset=offset,
                total=total if include_total else None,
                has_more=offset + limit < total,
                next_cursor=None,
            ),
            "total_count": total,
        }
    )


# Literal routes (list, execute/...) before /{taxonomy_identifier}.
@router.post("/list", response_model=TaxonomyList)
def list_taxonomies(
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: Annotated[ListBody | None, Body()] = None,
) -> JsonResponse:
    return _list(stores, ns, pq, body)


@router.get("", response_model=TaxonomyList)
def list_taxonomies_get(
    stores: StoresDep, ns: NamespaceDep, pq: Annotated[PageQuery, Depends(page_query)]
) -> JsonResponse:
    return _list(stores, ns, pq, None)


# The deprecated verb-first path and the id-first one: the same handler.
@router.post(
    "/execute/{taxonomy_identifier}",
    response_model=JoinResponse,
    deprecated=True,
    openapi_extra=body_doc(TaxonomyExecuteBody),
)
@router.post(
    "/{taxonomy_identifier}/execute",
    response_model=JoinResponse,
    openapi_extra=body_doc(TaxonomyExecuteBody),
)
def execute_taxonomy(
    taxonomy_identifier: str,
    body: Obj,
    stores: StoresDep,
    ns: NamespaceDep,
    version: int | None = None,
) -> JsonResponse:
    parse_body(TaxonomyExecuteBody, body)
    answer = svc.execute_taxonomy(
        stores, ns=ns, identifier=taxonomy_identifier, body=body, version=version
    )
    return JsonResponse(answer)


@router.get("/{taxonomy_identifier}", response_model=TaxonomyResponse)
def get_taxonomy(
    taxonomy_identifier: str, stores: StoresDep, ns: NamespaceDep, version: int | None = None
) -> JsonResponse:
    tax = svc.get_taxonomy(stores, ns=ns, identifier=taxonomy_identifier, version=version)
    return JsonResponse(taxonomy_public(tax))


@router.patch(
    "/{taxonomy_identifier}",
    response_model=TaxonomyResponse,
    responses=errors(409),
    openapi_extra=body_doc(TaxonomyPatchBody),
)
def patch_taxonomy(
    taxonomy_identifier: str, body: Obj, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    parse_body(TaxonomyPatchBody, body)
    tax = svc.patch_taxonomy(stores, ns=ns, identifier=taxonomy_identifier, body=body)
    return JsonResponse(taxonomy_public(tax))


@router.delete("/{taxonomy_identifier}", response_model=TaxonomyDeleted)
def delete_taxonomy(
    taxonomy_identifier: str, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    tax = svc.delete_taxonomy(stores, ns=ns, identifier=taxonomy_identifier)
    return JsonResponse(
        {
            "success": True,
            "message": f"Taxonomy '{tax.taxonomy_name}' deleted",
            "taxonomy_id": tax.taxonomy_id,
        }
    )
