"""Processing a bucket-sourced collection (trigger) and reading where documents came from."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from stagewise.api.deps import NamespaceDep, StoresDep, WriterKey
from stagewise.api.responses import JsonResponse
from stagewise.api.schemas.batch_responses import (
    ApplyTaxonomyResponse,
    DecompositionTree,
    LineageResponse,
    ObjectDocuments,
    TriggerResponse,
)
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.services import collections as collections_svc
from stagewise.services import lineage, taxonomy_backfill, triggers

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


@router.get("/v1/objects/{object_id}/decomposition-tree", response_model=DecompositionTree)
def decomposition_tree(
    object_id: str, stores: StoresDep, ns: NamespaceDep, include_document_ids: bool = False
) -> JsonResponse:
    return JsonResponse(
        lineage.decomposition_tree(
            stores, ns=ns, object_id=object_id, include_document_ids=include_document_ids
        )
    )


@router.post(
    "/v1/collections/{collection_identifier}/apply-taxonomy",
    response_model=ApplyTaxonomyResponse,
)
def apply_taxonomy(
    collection_identifier: str,
    body: Annotated[dict[str, Any], Body()],
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
) -> JsonResponse:
    col = collections_svc.get_collection(stores, ns=ns, identifier=collection_identifier)
    task = taxonomy_backfill.start_backfill(stores, col=col, body=body)
    return JsonResponse(
        {
            "task_id": task.task_id,
            "status": task.status,
            "collection_id": col.collection_id,
            "taxonomy_id": task.additional_data["taxonomy_id"],
            "estimated_documents": task.additional_data["estimated_documents"],
        }
    )
