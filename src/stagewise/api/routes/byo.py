from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from stagewise.api.deps import RawBody, StoresDep, WriterKey, parse_body
from stagewise.api.responses import JsonResponse
from stagewise.api.schemas.public import document_public
from stagewise.api.schemas.requests import ByoUpsertBody
from stagewise.errors import NotFound
from stagewise.services import byo
from stagewise.services.namespaces import get_namespace

router = APIRouter(prefix="/v1/namespaces/{namespace_id}/documents", tags=["documents"])


@router.post(
    "/upsert",
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
    ns = get_namespace(stores, identifier=namespace_id)
    principal.require_namespace(ns.namespace_id)
    # Not model_dump(): that deep-copies 1,000 documents and their vectors (~19 ms).
    plain: dict[str, Any] = {"documents": body.documents}
    if body.collection_id is not None:
        plain["collection_id"] = body.collection_id
    if body.options is not None:
        plain["options"] = body.options.model_dump(exclude_none=True)
    return JsonResponse(byo.upsert_documents(stores, ns=ns, body=plain))


@router.get("/{document_id}")
def get_document(
    namespace_id: str,
    document_id: str,
    stores: StoresDep,
    principal: WriterKey,
    return_vectors: bool = False,
) -> JsonResponse:
    ns = get_namespace(stores, identifier=namespace_id)
    principal.require_namespace(ns.namespace_id)
    for col in stores.metadata.list_collections(ns.namespace_id):
        doc = stores.metadata.get_document(col.collection_id, document_id)
        if doc is not None:
            return JsonResponse(document_public(doc, return_vectors=return_vectors))
    raise NotFound("document", document_id, namespace_id=ns.namespace_id)
