"""Processing a bucket-sourced collection (trigger) and reading where documents came from."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from stagewise.api.deps import NamespaceDep, StoresDep, WriterKey
from stagewise.api.responses import JsonResponse
from stagewise.api.schemas.batch_responses import (
    LineageResponse,
    ObjectDocuments,
    TriggerResponse,
)
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.services import collections as collections_svc
from stagewise.services import lineage, triggers

router = APIRouter(tags=["processing"], route_class=StrictJSONRoute)


@router.post(
    "/v1/collections/{collection_identifier}/trigger",
    response_model=TriggerResponse,
    status_code=202,
)
def trigger_collection(
    collection_identifier: str,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> JsonResponse:
    col = collections_svc.get_collection(stores, ns=ns, identifier=collection_identifier)
    return JsonResponse(triggers.trigger_collection(stores, col=col, body=body or {}), 202)


@router.get(
    "/v1/collections/{collection_id}/documents/{document_id}/lineage",
    response_model=LineageResponse,
)
def document_lineage(
    collection_id: str, document_id: str, stores: StoresDep, ns: NamespaceDep
) -> JsonResponse:
    col = collections_svc.get_collection(stores, ns=ns, identifier=collection_id)
    return JsonResponse(lineage.document_lineage(stores, col=col, document_id=document_id))


@router.get("/v1/objects/{object_id}/documents", response_model=ObjectDocuments)
def documents_of_object(
    object_id: str,
    stores: StoresDep,
    ns: NamespaceDep,
    collection_ids: Annotated[list[str] | None, Query()] = None,
) -> JsonResponse:
    return JsonResponse(
        lineage.documents_of_object(
            stores, ns=ns, object_id=object_id, collection_ids=collection_ids
        )
    )
