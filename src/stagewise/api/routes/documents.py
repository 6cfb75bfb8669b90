from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from stagewise.api.deps import NamespaceDep, StoresDep, WriterKey, parse_body
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.paging import PageQuery, page_query
from stagewise.api.schemas.bodies import DocumentBody
from stagewise.api.schemas.openapi import body_doc
from stagewise.api.schemas.public import document_public, list_pagination
from stagewise.api.schemas.requests import ListDocumentsBody
from stagewise.api.schemas.responses import (
    Deleted,
    DocumentCount,
    DocumentList,
    DocumentResponse,
)
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.domain.records import CollectionRecord, NamespaceRecord
from stagewise.errors import ValidationFailed
from stagewise.services import documents as svc
from stagewise.services.collections import get_collection
from stagewise.services.context import Stores
from stagewise.services.document_listing import ListQuery, list_documents, parse_sort

router = APIRouter(
    prefix="/v1/collections/{collection_identifier}/documents",
    tags=["documents"],
    route_class=StrictJSONRoute,
)


def _collection(stores: Stores, ns: NamespaceRecord, identifier: str) -> CollectionRecord:
    return get_collection(stores, ns=ns, identifier=identifier)


CreateBody = Annotated[dict[str, Any], Body()]


@router.post("", response_model=DocumentResponse, openapi_extra=body_doc(DocumentBody))
def create_document(
    collection_identifier: str, body: CreateBody, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    parse_body(DocumentBody, body)  # each key's type: a 422, not a 500 in the service
    col = _collection(stores, ns, collection_identifier)
    return JsonResponse(document_public(svc.create_document(stores, col=col, body=body)))


@router.get("/count", response_model=DocumentCount)
def count_documents(
    collection_identifier: str, stores: StoresDep, ns: NamespaceDep
) -> JsonResponse:
    col = _collection(stores, ns, collection_identifier)
    return JsonResponse(
        {
            "collection_id": col.collection_id,
            "count": stores.metadata.count_documents(col.collection_id),
        }
    )


def _parse_filters(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed(
            "The filters query parameter is not valid JSON", field="filters"
        ) from exc
    if not isinstance(parsed, dict):
        raise ValidationFailed("filters must be a JSON object", field="filters")
    return parsed


def _list(
    stores: Stores,
    col: CollectionRecord,
    pq: PageQuery,
    body: ListDocumentsBody | None,
    filters: dict[str, Any] | None,
    sort: Any,
    search: str | None,
    return_vectors: bool,
) -> JsonResponse:
    limit, offset, cursor, include_total = pq.resolve(body, cursors=True)
    if body is not None:
        filters = body.filters or filters
        sort = body.sort or sort
        search = body.search or search
        return_vectors = bool(body.return_vectors) or return_vectors
    sort_field, descending = parse_sort(sort)
    result = list_documents(
        stores,
        col=col,
        query=ListQuery(
            filters=filters,
            sort_field=sort_field,
            descending=descending,
            search=search,
            cursor=cursor,
            limit=limit,
            offset=offset,
            include_total=include_total,
        ),
    )
    return JsonResponse(
        {
            "results": [
                document_public(d, return_vectors=return_vectors) for d in result.documents
            ],
            "pagination": list_pagination(
                limit=limit,
                offset=offset,
                total=result.total,
                has_more=result.has_more,
                next_cursor=result.next_cursor,
            ),
            "total_documents": result.total,
        }
    )


@router.post("/list", response_model=DocumentList)
def list_documents_post(
    collection_identifier: str,
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: Annotated[ListDocumentsBody | None, Body()] = None,
    filters: str | None = None,
    sort: str | None = None,
    search: str | None = None,
    return_vectors: bool = False,
) -> JsonResponse:
    col = _collection(stores, ns, collection_identifier)
    return _list(stores, col, pq, body, _parse_filters(filters), sort, search, return_vectors)


@router.get("", response_model=DocumentList)
def list_documents_get(
    collection_identifier: str,
    stores: StoresDep,
    ns: NamespaceDep,
    pq: Annotated[PageQuery, Depends(page_query)],
    filters: str | None = None,
    sort: str | None = None,
    search: str | None = None,
    return_vectors: bool = False,
) -> JsonResponse:
    col = _collection(stores, ns, collection_identifier)
    return _list(stores, col, pq, None, _parse_filters(filters), sort, search, return_vectors)


@router.get("/{document_id}", response_model=DocumentResponse)
def get_document(
    collection_identifier: str,
    document_id: str,
    stores: StoresDep,
    ns: NamespaceDep,
    return_vectors: Annotated[bool, Query()] = False,
) -> JsonResponse:
    col = _collection(stores, ns, collection_identifier)
    doc = svc.get_document(stores, col=col, document_id=document_id)
    return JsonResponse(document_public(doc, return_vectors=return_vectors))


def _patch(
    stores: Stores, ns: NamespaceRecord, cid: str, document_id: str, body: dict[str, Any]
) -> JsonResponse:
    parse_body(DocumentBody, body)
    col = _collection(stores, ns, cid)
    return JsonResponse(
        document_public(svc.patch_document(stores, col=col, document_id=document_id, body=body))
    )


@router.patch(
    "/{document_id}", response_model=DocumentResponse, openapi_extra=body_doc(DocumentBody)
)
def patch_document(
    collection_identifier: str,
    document_id: str,
    body: CreateBody,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
) -> JsonResponse:
    return _patch(stores, ns, collection_identifier, document_id, body)


@router.put("/{document_id}", response_model=DocumentResponse, openapi_extra=body_doc(DocumentBody))
def update_document(
    collection_identifier: str,
    document_id: str,
    body: CreateBody,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
) -> JsonResponse:
    return _patch(stores, ns, collection_identifier, document_id, body)


@router.delete("/{document_id}", response_model=Deleted)
def delete_document(
    collection_identifier: str, document_id: str, stores: StoresDep, ns: NamespaceDep, _: WriterKey
) -> JsonResponse:
    col = _collection(stores, ns, collection_identifier)
    svc.delete_document(stores, col=col, document_id=document_id)
    return JsonResponse({"message": "Successfully deleted", "success": True})
