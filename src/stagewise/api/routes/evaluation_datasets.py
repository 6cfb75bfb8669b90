"""/v1/retrievers/evaluations/datasets and /v1/retrievers/{id}/evaluations/generate-from-
interactions (Bearer + X-Namespace): judged queries for offline evaluation.

Registered before the retrievers router, whose /{retriever_id} routes would otherwise take
these paths. Creating and generating are writes; GET is a read (api/deps.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from stagewise.api.deps import NamespaceDep, StoresDep, WriterKey, parse_body
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.paging import PageQuery, page_query
from stagewise.api.schemas.evaluation_datasets import (
    CreateDatasetBody,
    DatasetList,
    DatasetResponse,
    GenerateBody,
    dataset_public,
)
from stagewise.api.schemas.openapi import body_doc, errors
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.services import dataset_mining
from stagewise.services import evaluation_datasets as svc

router = APIRouter(
    prefix="/v1/retrievers", tags=["retriever evaluations"], route_class=StrictJSONRoute
)
Obj = Annotated[dict[str, Any], Body()]


@router.post(
    "/evaluations/datasets",
    response_model=DatasetResponse,
    responses=errors(409),
    openapi_extra=body_doc(CreateDatasetBody),
)
def create_dataset(body: Obj, stores: StoresDep, ns: NamespaceDep, _: WriterKey) -> JsonResponse:
    parsed = parse_body(CreateDatasetBody, body)
    record = svc.create(
        stores,
        ns,
        name=parsed.dataset_name,
        queries=parsed.queries,
        description=parsed.description,
        metadata=parsed.metadata,
    )
    return JsonResponse(dataset_public(record))


@router.get("/evaluations/datasets", response_model=DatasetList)
def list_datasets(
    stores: StoresDep, ns: NamespaceDep, pq: Annotated[PageQuery, Depends(page_query)]
) -> JsonResponse:
    limit, offset, _, _ = pq.resolve(None, default_limit=20)
    found, total = svc.listing(stores, ns, limit=limit, offset=offset)
    return JsonResponse(
        {
            "datasets": [dataset_public(d) for d in found],
            "total": total,
            "page": offset // limit + 1,
            "page_size": limit,
        }
    )


@router.get("/evaluations/datasets/{dataset_identifier}", response_model=DatasetResponse)
def get_dataset(dataset_identifier: str, stores: StoresDep, ns: NamespaceDep) -> JsonResponse:
    return JsonResponse(dataset_public(svc.get(stores, ns, dataset_identifier)))


@router.post(
    "/{retriever_id}/evaluations/generate-from-interactions",
    response_model=DatasetResponse,
    responses=errors(404, 409),
    openapi_extra=body_doc(GenerateBody),
)
def generate_from_interactions(
    retriever_id: str,
    stores: StoresDep,
    ns: NamespaceDep,
    _: WriterKey,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> JsonResponse:
    """A dataset mined from the retriever's interactions; the click model is in
    services/dataset_mining.py and docs/architecture.md."""
    parsed = parse_body(GenerateBody, body) if body is not None else GenerateBody()
    record = dataset_mining.generate(
        stores,
        ns,
        retriever_id,
        dataset_name=parsed.dataset_name,
        min_interactions=parsed.min_interactions,
        lookback_days=parsed.lookback_days,
        positive_types=parsed.positive_interaction_types,
    )
    return JsonResponse(dataset_public(record))
