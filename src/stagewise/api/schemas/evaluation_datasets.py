"""Evaluation-dataset wire shapes (mixpeek 1.3.783: CreateDatasetRequest, EvaluationDataset,
DatasetListResponse, GenerateFromInteractionsRequest).

Request bodies ignore keys they do not declare, as the SDK documents; response models only
document, the routes return JsonResponse objects."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictInt, StrictStr

from stagewise.api.schemas.requests import _Body
from stagewise.domain.evaluation_records import (
    MAX_NAME,
    MAX_QUERIES,
    DatasetRecord,
    GroundTruthQuery,
)
from stagewise.domain.interaction_records import InteractionType
from stagewise.ids import iso

JsonObject = dict[str, Any]


class CreateDatasetBody(_Body):
    dataset_name: StrictStr = Field(min_length=1, max_length=MAX_NAME)
    description: StrictStr | None = None
    queries: list[GroundTruthQuery] = Field(min_length=1, max_length=MAX_QUERIES)
    metadata: JsonObject | None = None


class GenerateBody(_Body):
    dataset_name: StrictStr | None = Field(
        None, min_length=1, max_length=MAX_NAME, description="Default auto_{retriever_id}_{date}"
    )
    min_interactions: StrictInt = Field(
        5, ge=1, le=1_000_000, description="Positive interactions a query needs to be kept"
    )
    lookback_days: StrictInt = Field(30, ge=1, le=365)
    positive_interaction_types: list[InteractionType] | None = Field(
        None,
        min_length=1,
        max_length=32,
        description="Default click, purchase, positive_feedback, bookmark, share",
    )


class DatasetResponse(BaseModel):
    dataset_id: str
    dataset_name: str
    description: str | None
    queries: list[GroundTruthQuery]
    created_at: str
    updated_at: str
    namespace_id: str
    internal_id: str = Field(description="Self-hosted: the namespace (no organization above it)")
    query_count: int
    metadata: JsonObject | None


class DatasetList(BaseModel):
    datasets: list[DatasetResponse]
    total: int
    page: int
    page_size: int


def dataset_public(d: DatasetRecord) -> JsonObject:
    return {
        "dataset_id": d.dataset_id,
        "dataset_name": d.dataset_name,
        "description": d.description,
        "queries": [q.model_dump(mode="json") for q in d.queries],
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
        "namespace_id": d.namespace_id,
        "internal_id": d.namespace_id,
        "query_count": len(d.queries),
        "metadata": d.metadata,
    }
