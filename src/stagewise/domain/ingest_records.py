"""Stored buckets, objects, batches and tasks (ingestion; docs/architecture.md "Ingestion").

Statuses use the SDK's upper-case TaskStatusEnum values; task types its lower-case TaskType.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from stagewise.ids import utc_now

TERMINAL_STATUSES = frozenset({"COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELED"})


class BucketRecord(BaseModel):
    bucket_id: str
    namespace_id: str
    bucket_name: str
    description: str | None = None
    # {"properties": {name: {"type": ..., "required": bool, ...}}}
    bucket_schema: dict[str, Any] = Field(default_factory=dict)
    # {"fields": [...], "default_policy": "insert" | "update" | "upsert"} or None
    unique_key: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: str = "ACTIVE"  # ACTIVE, or IN_PROGRESS while an asynchronous delete runs
    # Kept by the store in the same transaction as each object write.
    object_count: int = 0
    total_size_bytes: int = 0
    failed_object_count: int = 0
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class BlobRef(BaseModel):
    """One blob of an object. The bytes live in the blob store under `content_hash`."""

    property: str
    type: str  # lower-case BucketSchemaFieldType: text, image, pdf, ...
    blob_id: str
    content_hash: str  # sha256 hex of the bytes
    size_bytes: int
    mime_type: str | None = None
    filename: str | None = None
    # What the client sent, as echoed (inline text is not repeated here; see the blob store).
    properties: dict[str, Any] = Field(default_factory=dict)


class ObjectRecord(BaseModel):
    object_id: str
    bucket_id: str
    namespace_id: str
    key_prefix: str | None = None
    # Custom fields at the object root (the SDK sends them flat), validated by the schema.
    fields: dict[str, Any] = Field(default_factory=dict)
    blobs: list[BlobRef] = Field(default_factory=list)
    # The unique key's values joined canonically (None when the bucket has no unique key).
    unique_key_value: str | None = None
    idempotency_key: str | None = None
    # sha256 over fields + blob hashes: what processing keys its idempotence on.
    content_hash: str = ""
    size_bytes: int = 0
    status: str = "PENDING"  # PENDING until a batch finishes with it: COMPLETED | FAILED
    error: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class BatchRecord(BaseModel):
    batch_id: str
    namespace_id: str
    bucket_id: str
    batch_name: str | None = None
    # DRAFT -> PENDING -> IN_PROGRESS -> COMPLETED | COMPLETED_WITH_ERRORS | FAILED | CANCELED
    status: str = "DRAFT"
    object_ids: list[str] = Field(default_factory=list)
    # Empty: every collection sourced from the bucket, resolved at submit.
    collection_ids: list[str] = Field(default_factory=list)
    dedup_strategy: str = "skip"  # skip | replace | force
    task_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    # The highest document seq this batch committed per collection: its documents are
    # resolvable in a process once that process's index has applied them.
    written_seqs: dict[str, int] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None


class BatchItem(BaseModel):
    """One object's outcome in one batch: what progress, errors and retries count from."""

    batch_id: str
    object_id: str
    status: str = "PENDING"  # PENDING | COMPLETED | FAILED | SKIPPED
    documents_written: int = 0
    error: str | None = None
    error_type: str | None = None  # transient | permanent | resource
    updated_at: datetime = Field(default_factory=utc_now)


class TaskRecord(BaseModel):
    task_id: str
    namespace_id: str
    task_type: str  # lower-case SDK TaskType, e.g. api_buckets_batches_process
    status: str = "PENDING"  # PENDING -> IN_PROGRESS -> COMPLETED | FAILED (| CANCELED)
    inputs: list[Any] = Field(default_factory=list)  # strings or objects (the SDK refuses numbers)
    outputs: list[Any] = Field(default_factory=list)
    additional_data: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    # How many times a worker started it; at-least-once delivery may start it twice.
    attempts: int = 0
    worker_id: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    started_at: datetime | None = None
    completed_at: datetime | None = None
