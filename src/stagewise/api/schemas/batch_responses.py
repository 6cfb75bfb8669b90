"""Documented response bodies of batches, tasks, triggers and lineage (see responses.py for
why these only document: routes return JsonResponse objects)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

JsonObject = dict[str, Any]


class TaskResponse(BaseModel):
    task_id: str
    task_type: str
    status: str
    inputs: list[Any] | None = None
    outputs: list[Any] | None = None
    additional_data: JsonObject | None = None
    error: str | None = None


class TaskCancelResponse(TaskResponse):
    cancellation: JsonObject


class TaskList(BaseModel):
    results: list[TaskResponse]
    pagination: JsonObject
    total_count: int


class TaskKilled(BaseModel):
    success: bool
    message: str
    task_id: str


class BatchResponse(BaseModel):
    batch_id: str
    bucket_id: str
    namespace_id: str
    status: str
    object_ids: list[str]
    collection_ids: list[str]
    progress: JsonObject
    documents_written: int
    documents_resolvable: bool
    failed_objects: list[JsonObject]
    failed_object_count: int
    max_node_death_resubmits: int
    max_deploy_resubmits: int
    lifecycle: str
    lifecycle_reason: str | None
    task_id: str | None = None
    tier_tasks: list[JsonObject] | None = None


class BatchList(BaseModel):
    results: list[BatchResponse]
    total_count: int
    pagination: JsonObject


class BatchDeleted(BaseModel):
    message: str
    success: bool


class TriggerResponse(BaseModel):
    task_id: str
    collection_id: str
    total_tiers: int
    message: str
    batch_id: str | None = None
    batch_ids: list[str]
    task_ids: list[str]
    batch_count: int
    object_count: int
    source_bucket_ids: list[str]


class LineageResponse(BaseModel):
    document_id: str
    collection_id: str
    lineage: JsonObject | None
    depth: int
    total_steps: int
    message: str | None = None


class ObjectDocuments(BaseModel):
    object_id: str
    documents: list[JsonObject]
    total: int


class ApplyTaxonomyResponse(BaseModel):
    task_id: str
    status: str
    collection_id: str
    taxonomy_id: str
    estimated_documents: int


class DecompositionTree(BaseModel):
    object_id: str
    collections: list[JsonObject]
    total_documents: int
