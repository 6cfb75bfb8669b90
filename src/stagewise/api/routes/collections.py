from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from stagewise.api.deps import NamespaceDep, StoresDep, WriterKey, parse_body
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.paging import PageQuery, page_query, slice_page
from stagewise.api.schemas.bodies import CollectionPatchBody
from stagewise.api.schemas.openapi import body_doc, errors
from stagewise.api.schemas.public import collection_public, list_pagination
from stagewise.api.schemas.requests import CreateCollectionBody, ListBody
from stagewise.api.schemas.responses import (
    CollectionDeleted,
    CollectionList,
    CollectionResponse,
    FeatureExtractor,
)
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.domain.records import CollectionRecord, NamespaceRecord
from stagewise.errors import NotFound
from stagewise.services import collections as svc
from stagewise.services import extractors, stats
from stagewise.services.context import Stores

router = APIRouter(prefix="/v1/collections", tags=["collections"], route_class=StrictJSONRoute)


def _public_many(stores: Stores, cols: list[CollectionRecord]) -> list[dict[str, Any]]:
    if not cols:
        return []
    figures = stats.collection_stats(stores, cols[0].namespace_id, cols)
    return [collection_public(c, s) for c, s in zip(cols, figures, strict=True)]


def _public(stores: Stores, col: CollectionRecord) -> dict[str, Any]:
    return _public_many(stores, [col])[0]


# Literal routes come before /{collection_identifier}.
@router.get("/features", response_model=list[str])
def list_features() -> JsonResponse:
    return JsonResponse(extractors.feature_keys())


@router.get("/features/extractors", response_model=list[FeatureExtractor])
def list_extractors() -> JsonResponse:
    return JsonResponse(extractors.list_extractors())


@router.get("/features/extractors/{feature_extractor_id}", response_model=FeatureExtractor)
def get_extractor(feature_extractor_id: str) -> JsonResponse:
    found = extractors.get_extractor(feature_extractor_id)
    if found is None:
        raise NotFound("feature_extractor", feature_extractor_id)
    return JsonResponse(found)


@router.post("", response_model=CollectionResponse, responses=errors(409))
def create_collection(
    body: CreateCollectionBody, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    raw = body.model_dump()
    if body.feature_extractor is not None:
        # Keep exactly what the client sent (null input_mappings included).
        raw["feature_extractor"] = body.feature_extractor.model_dump(exclude_unset=True)
    col = svc.create_collection(stores, ns=ns, body=raw)
    return JsonResponse(_public(stores, col))


def _list(
    stores: Stores,
    ns: NamespaceRecord,
    pq: PageQuery,
    body: ListBody | None,
    search: str | None,
    include_system: bool,
) -> JsonResponse:
    limit, offset, _, include_total = pq.resolve(body)
    if body is not None:
        search = body.search or search
        include_system = bool(body.include_system) or include_system
    items = svc.list_collections(stores, ns=ns, include_system=include_system)
    if search:
        items = [c for c in items if search.lower() in c.collection_name.lower()]
    page, has_more = slice_page(items, limit, offset)
    return JsonResponse(
        {
            "results": _public_many(stores, page),
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


@router.post("/list", response_model=CollectionList)
def list_collections(
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: Annotated[ListBody | None, Body()] = None,
) -> JsonResponse:
    return _list(stores, ns, pq, body, None, False)


@router.get("", response_model=CollectionList)
def list_collections_get(
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    search: str | None = None,
    include_system: bool = False,
) -> JsonResponse:
    return _list(stores, ns, pq, None, search, include_system)


@router.get("/{collection_identifier}", response_model=CollectionResponse)
def get_collection(collection_identifier: str, stores: StoresDep, ns: NamespaceDep) -> JsonResponse:
    return JsonResponse(
        _public(stores, svc.get_collection(stores, ns=ns, identifier=collection_identifier))
    )


@router.patch(
    "/{collection_identifier}",
    response_model=CollectionResponse,
    responses=errors(409),
    openapi_extra=body_doc(CollectionPatchBody),
)
def update_collection(
    collection_identifier: str,
    body: Annotated[dict[str, Any], Body()],
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
) -> JsonResponse:
    parse_body(CollectionPatchBody, body)  # each key's type: a 422, not a stored bad value
    col = svc.update_collection(stores, ns=ns, identifier=collection_identifier, body=body)
    return JsonResponse(_public(stores, col))


@router.delete("/{collection_identifier}", response_model=CollectionDeleted)
def delete_collection(
    collection_identifier: str, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    col = svc.delete_collection(stores, ns=ns, identifier=collection_identifier)
    return JsonResponse(
        {
            "success": True,
            "message": f"Collection '{col.collection_name}' deleted",
            "collection_id": col.collection_id,
        }
    )
