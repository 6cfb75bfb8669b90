from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from stagewise.api.deps import CurrentKey, RawBody, StoresDep, WriterKey, parse_body
from stagewise.api.responses import JsonResponse
from stagewise.api.schemas.openapi import errors
from stagewise.api.schemas.public import document_public
from stagewise.api.schemas.requests import ByoUpsertBody
from stagewise.api.schemas.responses import DocumentResponse, UpsertResult
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.errors import NotFound
from stagewise.services import byo
from stagewise.services.namespaces import namespace_for

router = APIRouter(
    prefix="/v1/namespaces/{namespace_id}/documents",
    tags=["documents"],
    route_class=StrictJSONRoute,
)


@router.post(
    "/upsert",
    response_model=UpsertResult,
    responses=errors(409),
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": ByoUpsertBody.model_json_schema()}},
            "required": True,
        }
    },
)
def upsert_documents(
    namespace_id: str, raw: RawBody, stores: StoresDep, principal: WriterKey
) -> JsonResponse:
    body = parse_body(ByoUpsertBody, raw)
    ns = namespace_for(stores, principal, namespace_id)
    # Not model_dump(): that deep-copies 1,000 documents and their vectors (~19 ms).
    plain: dict[str, Any] = {"documents": body.documents}
    if body.collection_id is not None:
        plain["collection_id"] = body.collection_id
    if body.options is not None:
        plain["options"] = body.options.model_dump(exclude_none=True)
    return JsonResponse(byo.upsert_documents(stores, ns=ns, body=plain))


@router.get("/{document_id}", response_model=DocumentResponse, responses=errors(403))
def get_document(
    namespace_id: str,
    document_id: str,
    stores: StoresDep,
    principal: CurrentKey,  # a read: read-only keys may call it
    return_vectors: bool = False,
) -> JsonResponse:
    ns = namespace_for(stores, principal, namespace_id)
    for col in stores.metadata.list_collections(ns.namespace_id):
        doc = stores.metadata.get_document(col.collection_id, document_id)
        if doc is not None:
            return JsonResponse(document_public(doc, return_vectors=return_vectors))
    raise NotFound("document", document_id, namespace_id=ns.namespace_id)
