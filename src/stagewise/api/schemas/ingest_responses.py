"""Documented request and response bodies of buckets and objects (api/schemas/ingest_public.py
writes the responses). Documentation only, as in responses.py: extra keys allowed, every key
that is always present required."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stagewise.api.schemas.responses import ListPagination

JsonObject = dict[str, Any]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---- request bodies (the routes take plain objects; services answer the specific 422s)


class BucketBody(_Open):
    bucket_name: str | None = None
    description: str | None = None
    bucket_schema: JsonObject | None = Field(
        None, description="{properties: {name: {type, required, ...}}}", examples=[{}]
    )
    unique_key: JsonObject | None = Field(None, description="{fields: [...], default_policy}")
    metadata: JsonObject | None = None


class ObjectBody(_Open):
    """Custom fields go at the root, beside these keys."""

    key_prefix: str | None = None
    blobs: list[JsonObject] | None = Field(
        None, description="Each {property, type, data}: data is text, base64, data: or file://"
    )
    idempotency_key: str | None = Field(None, max_length=255)


class ObjectsBatchBody(_Open):
    objects: list[JsonObject] = Field(description="1 to 100 object bodies")


# ---- responses


class BucketResponse(_Open):
    bucket_id: str
    bucket_name: str
    description: str | None
    bucket_schema: JsonObject
    unique_key: JsonObject | None
    metadata: JsonObject
    object_count: int
    failed_object_count: int
    total_size_bytes: int
    status: str
    is_locked: bool
    created_at: str
    updated_at: str


class BucketList(BaseModel):
    results: list[BucketResponse]
    pagination: ListPagination
    total_count: int


class BucketDeleted(_Open):
    task_id: str
    status: str
    success: bool
    bucket_id: str
    bucket_name: str
    object_count: int


class BlobDetails(BaseModel):
    filename: str | None
    size_bytes: int
    mime_type: str | None
    hash: str


class BlobResponse(BaseModel):
    blob_id: str
    property: str
    type: str
    key_prefix: str | None
    properties: JsonObject
    details: BlobDetails


class ObjectResponse(_Open):
    object_id: str
    bucket_id: str
    key_prefix: str | None
    blobs: list[BlobResponse]
    status: str
    error: str | None
    created_at: str
    updated_at: str
    consistency: JsonObject | None = Field(None, description="On create answers only")


class ObjectList(BaseModel):
    results: list[ObjectResponse]
    pagination: ListPagination


class BatchObjectRow(ObjectResponse):
    object_index: int
    replayed: bool
    replayed_by: str | None


class FailedObject(BaseModel):
    object_index: int
    error: str
    error_type: str


class ObjectsBatchResponse(BaseModel):
    succeeded: list[BatchObjectRow]
    failed: list[FailedObject]
    total_requested: int
    succeeded_count: int
    failed_count: int
