"""Documented response bodies: namespaces, collections, documents, keys, health, errors.

These models only document: the routes return JsonResponse objects, which FastAPI passes
through unvalidated, so they cost nothing at run time. They are written from what the
routes return (api/schemas/public.py, services/*), with every key that is always present
required, every value that may be null Optional, and extra keys allowed (pydantic's default
writes no `additionalProperties: false`), so the schema is true without being brittle.
tests/fuzz/test_schemathesis.py holds every response to them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JsonObject = dict[str, Any]


class ErrorBody(BaseModel):
    message: str
    type: str = Field(description="The error's class, e.g. ValidationError")
    code: str = Field(description="A stable machine-readable code, e.g. invalid_cursor")
    details: JsonObject


class ErrorResponse(BaseModel):
    """Every error, whatever its status (api/errors.py)."""

    success: Literal[False]
    status: int
    error: ErrorBody


# ---- health


class HealthResponse(BaseModel):
    status: str
    service: str
    version: str


class HealthScope(BaseModel):
    namespace_id: str | None = Field(description="null: every namespace")


class DeepHealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, JsonObject]
    index: dict[str, JsonObject] = Field(description="Per collection id: its shard's state")
    follower: JsonObject = Field(
        description="This worker's index follower: its id, how it is woken, writes applied, "
        "and the lag from a write's commit to its apply here (ms, p50/p99)"
    )
    scope: HealthScope


# ---- lists


class ListPagination(BaseModel):
    total: int | None
    total_pages: int | None
    page: int
    page_size: int
    next_page: str | None
    previous_page: str | None
    next_cursor: str | None


class Deleted(BaseModel):
    success: bool
    message: str


# ---- namespaces


class NamespaceResponse(BaseModel):
    object: str
    namespace_id: str
    namespace_name: str
    description: str | None
    feature_extractors: list[JsonObject]
    payload_indexes: list[JsonObject]
    payload_index_count: int
    document_count: int
    collection_count: int
    mode: str
    vector_configs: list[JsonObject]
    vector_inference_map: dict[str, str]
    namespace_ready: bool
    created_at: str
    updated_at: str


class NamespaceList(BaseModel):
    results: list[NamespaceResponse]
    pagination: ListPagination
    total_count: int


class NamespaceDeleted(Deleted):
    namespace_id: str


# ---- collections


class VectorIndexSettings(BaseModel):
    name: str
    dimensions: int
    distance: str
    inference_name: str | None


class CollectionVectorIndex(BaseModel):
    name: str
    feature_uri: str
    type: str
    index: VectorIndexSettings
    source: str | None = None


class PayloadIndex(BaseModel):
    field_name: str
    type: str


class CollectionResponse(BaseModel):
    collection_id: str
    collection_name: str
    description: str | None
    input_schema: JsonObject | None
    output_schema: JsonObject
    feature_extractor: JsonObject
    source: JsonObject
    vector_indexes: list[CollectionVectorIndex]
    index_map: dict[str, str]
    enabled: bool
    metadata: JsonObject
    created_at: str
    updated_at: str
    document_count: int
    retriever_count: int
    indexing_status: str
    payload_indexes: list[PayloadIndex] | None = Field(
        None, description="Absent when the collection's shard did not answer"
    )
    taxonomy_applications: list[JsonObject]
    taxonomy_count: int


class CollectionList(BaseModel):
    results: list[CollectionResponse]
    pagination: ListPagination
    total_count: int


class CollectionDeleted(Deleted):
    collection_id: str


class FeatureExtractor(BaseModel):
    feature_extractor_name: str
    version: str
    feature_extractor_id: str
    description: str
    input_schema: JsonObject
    output_schema: JsonObject
    required_vector_indexes: list[JsonObject]


# ---- documents


class DocumentInternal(BaseModel):
    internal_id: str
    namespace_id: str
    document_id: str
    collection_id: str
    created_at: str
    updated_at: str
    metadata: JsonObject


class DocumentResponse(BaseModel):
    """A document: its own root fields (text, title, ...) besides these keys."""

    model_config = ConfigDict(populate_by_name=True)

    document_id: str
    collection_id: str
    metadata: JsonObject
    source_type: str
    searchable_at: str
    internal: DocumentInternal = Field(alias="_internal")
    vectors: dict[str, list[float]] | None = Field(None, description="With return_vectors")
    vector_hydration_incomplete: bool | None = None


class DocumentList(BaseModel):
    results: list[DocumentResponse]
    pagination: ListPagination
    total_documents: int | None


class DocumentCount(BaseModel):
    collection_id: str
    count: int


class UpsertResult(BaseModel):
    inserted: int
    document_ids: list[str]
    collection_id: str
    unsearchable_document_ids: list[str]
    warnings: list[str]


# ---- keys


class KeyResponse(BaseModel):
    key_id: str
    name: str
    key_prefix: str | None
    role: Literal["admin", "namespace", "read_only"]
    namespace_id: str | None
    read_only: bool
    status: Literal["active", "revoked", "expired"]
    created_at: str
    expires_at: str | None
    revoked_at: str | None


class CreatedKey(KeyResponse):
    key: str = Field(description="The secret, shown this once")


class KeyList(BaseModel):
    results: list[KeyResponse]
    total_count: int
