"""Retriever-interaction wire shapes (mixpeek 1.3.783: SearchInteraction, InteractionResponse,
BulkInteractionsRequest/Response, ListInteractionsRequest/Response).

One interaction's body is domain/interaction_records.InteractionInput. Request bodies
tolerate unknown keys (the response's `warning` names them); response models only document,
the routes return JsonResponse objects."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from stagewise.api.schemas.requests import ListBody, _Body
from stagewise.api.schemas.responses import ListPagination
from stagewise.domain.interaction_records import (
    InteractionInput,
    InteractionRecord,
    InteractionType,
)
from stagewise.ids import iso

MAX_BATCH = 1000

JsonObject = dict[str, Any]


class BulkInteractionsBody(_Body):
    interactions: list[InteractionInput] = Field(min_length=1, max_length=MAX_BATCH)


class SortBody(_Body):
    field: str
    direction: str | None = Field(None, description="asc | desc (default desc)")


class InteractionListBody(ListBody):
    execution_id: str | None = None
    retriever_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    feature_id: str | None = None
    interaction_type: InteractionType | None = None
    filters: JsonObject | None = Field(
        None,
        description="LogicalOperator over the interaction's fields (position, interaction_type, "
        "timestamp, metadata.*, ...), run over at most FILTER_SCAN_CAP interactions",
    )
    sort: SortBody | None = Field(None, description="timestamp | occurred_at | position")


# ---- responses


class InteractionResponse(BaseModel):
    feature_id: str
    interaction_type: list[str]
    position: int
    metadata: JsonObject | None
    user_id: str | None
    session_id: str | None
    execution_id: str | None
    retriever_id: str | None
    query_snapshot: JsonObject | None
    document_score: float | None
    result_set_size: int | None
    feature_uri: str | None
    occurred_at: str | None
    interaction_id: str | None = Field(description="null when deduplicated")
    deduplicated: bool
    timestamp: str | None
    warning: str | None


class InteractionList(BaseModel):
    results: list[InteractionResponse]
    items: list[InteractionResponse] = Field(description="Deprecated alias of results")
    pagination: ListPagination


class BulkItemResult(BaseModel):
    index: int
    interaction_id: str
    status: str


class BulkInteractionsResponse(BaseModel):
    created: int
    failed: int
    errors: list[str] | None
    results: list[BulkItemResult]


class InteractionDeleted(BaseModel):
    success: bool
    interaction_id: str
    deleted: bool = Field(description="False when there was nothing to delete (idempotent)")


def interaction_public(
    i: InteractionRecord, *, deduplicated: bool = False, warning: str | None = None
) -> JsonObject:
    return {
        "feature_id": i.feature_id,
        "interaction_type": i.interaction_types,
        "position": i.position,
        "metadata": i.metadata,
        "user_id": i.user_id,
        "session_id": i.session_id,
        "execution_id": i.execution_id,
        "retriever_id": i.retriever_id,
        "query_snapshot": i.query_snapshot,
        "document_score": i.document_score,
        "result_set_size": i.result_set_size,
        "feature_uri": i.feature_uri,
        "occurred_at": iso(i.occurred_at),
        "interaction_id": None if deduplicated else i.interaction_id,
        "deduplicated": deduplicated,
        "timestamp": None if deduplicated else iso(i.created_at),
        "warning": warning,
    }
