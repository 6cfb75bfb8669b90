"""Batches: a bucket's objects grouped for processing, submitted as one task.

DRAFT (objects may be added) -> PENDING (submitted: its task is queued) -> IN_PROGRESS ->
COMPLETED | COMPLETED_WITH_ERRORS | FAILED | CANCELED. The task does the work
(services/batch_processing.py); this module validates and records, then queues the task
only after everything is committed."""

from __future__ import annotations

from typing import Any

from stagewise.domain.ingest_records import (
    TERMINAL_STATUSES,
    BatchRecord,
    BucketRecord,
    TaskRecord,
)
from stagewise.domain.records import CollectionRecord
from stagewise.errors import Conflict, InvalidRequest, NotFound, ValidationFailed
from stagewise.ids import new_id, utc_now
from stagewise.services.batch_processing import BATCH_TASK
from stagewise.services.bucket_source import is_bucket_sourced
from stagewise.services.context import Stores

DEDUP_STRATEGIES = ("skip", "replace", "force")
MAX_BATCH_OBJECTS = 50_000


def sourced_collections(stores: Stores, bucket: BucketRecord) -> list[CollectionRecord]:
    return [
        c
        for c in stores.metadata.list_collections(bucket.namespace_id)
        if is_bucket_sourced(c) and bucket.bucket_id in (c.source.get("bucket_ids") or ())
    ]


def require_sourced_collections(stores: Stores, bucket: BucketRecord) -> list[str]:
    scope = [c.collection_id for c in sourced_collections(stores, bucket)]
    if not scope:
        raise InvalidRequest(
            f"No collection is sourced from bucket '{bucket.bucket_name}'; create one with "
            "source {'type': 'bucket', 'bucket_ids': [...]} first",
            code="no_collections_for_bucket",
        )
    return scope


def _checked_scope(stores: Stores, bucket: BucketRecord, requested: Any) -> list[str]:
    if requested is None:
        return []
    if not isinstance(requested, list) or not all(isinstance(c, str) for c in requested):
        raise ValidationFailed("collection_ids must be a list of ids", field="collection_ids")
    sourced = {c.collection_id: c for c in sourced_collections(stores, bucket)}
    by_name = {c.collection_name: c.collection_id for c in sourced.values()}
    out: list[str] = []
    for ident in dict.fromkeys(requested):
        collection_id = ident if ident in sourced else by_name.get(ident)
        if collection_id is None:
            raise ValidationFailed(
                f"Collection '{ident}' is not sourced from bucket '{bucket.bucket_name}'",
                code="collection_not_sourced_from_bucket",
                field="collection_ids",
                collection=ident,
            )
        out.append(collection_id)
    return out


def _checked_objects(stores: Stores, bucket: BucketRecord, object_ids: Any) -> list[str]:
    if (
        not isinstance(object_ids, list)
        or not object_ids
        or not all(isinstance(o, str) for o in object_ids)
    ):
        raise ValidationFailed("object_ids must list at least one object id", field="object_ids")
    ids = list(dict.fromkeys(object_ids))
    if len(ids) > MAX_BATCH_OBJECTS:
        raise ValidationFailed(
            f"A batch holds at most {MAX_BATCH_OBJECTS} objects", field="object_ids"
        )
    found = stores.ingest.get_objects(bucket.bucket_id, ids)
    missing = [o for o in ids if o not in found]
    if missing:
        raise ValidationFailed(
            f"{len(missing)} object(s) are not in bucket '{bucket.bucket_name}': {missing[:10]}",
            code="objects_not_found",
            field="object_ids",
            missing=missing[:100],
        )
    return ids


def create_batch(stores: Stores, *, bucket: BucketRecord, body: dict[str, Any]) -> BatchRecord:
    dedup = body.get("dedup_strategy") or "skip"
    if dedup not in DEDUP_STRATEGIES:
        raise ValidationFailed(
            f"dedup_strategy must be one of {list(DEDUP_STRATEGIES)}", field="dedup_strategy"
        )
    if body.get("object_ids") is not None:
        object_ids = _checked_objects(stores, bucket, body["object_ids"])
    elif body.get("filters") is not None:
        raise ValidationFailed(
            "Selecting objects with filters is not supported yet; list object_ids",
            code="unsupported_batch_filters",
            field="filters",
        )
    else:
        object_ids = []
    scope = _checked_scope(stores, bucket, body.get("collection_ids", body.get("collections")))
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValidationFailed("metadata must be an object", field="metadata")
    batch = BatchRecord(
        batch_id=new_id("btch_"),
        namespace_id=bucket.namespace_id,
        bucket_id=bucket.bucket_id,
        batch_name=body.get("batch_name"),
        object_ids=object_ids,
        collection_ids=scope,
        dedup_strategy=dedup,
        metadata=metadata,
    )
    stores.ingest.create_batch(batch)
    return batch


def find_batch(stores: Stores, batch_id: str, namespace_ids: set[str] | None) -> BatchRecord:
    """A batch the caller may see (namespace_ids None: every namespace); 404 otherwise."""
    batch = stores.ingest.get_batch(batch_id)
    if batch is None or (namespace_ids is not None and batch.namespace_id not in namespace_ids):
        raise NotFound("batch", batch_id)
    return batch


def batch_in_bucket(stores: Stores, bucket: BucketRecord, batch_id: str) -> BatchRecord:
    batch = stores.ingest.get_batch(batch_id)
    if batch is None or batch.bucket_id != bucket.bucket_id:
        raise NotFound("batch", batch_id, bucket_id=bucket.bucket_id)
    return batch


def _require_draft(batch: BatchRecord, action: str) -> None:
    if batch.status != "DRAFT":
        raise Conflict(
            f"Batch '{batch.batch_id}' is {batch.status}; only a DRAFT batch can be {action}",
            code="batch_not_draft",
            status=batch.status,
        )


def add_objects(
    stores: Stores, *, bucket: BucketRecord, batch_id: str, body: dict[str, Any]
) -> BatchRecord:
    batch = batch_in_bucket(stores, bucket, batch_id)
    _require_draft(batch, "changed")
    added = _checked_objects(stores, bucket, body.get("object_ids"))
    ids = list(dict.fromkeys([*batch.object_ids, *added]))
    if len(ids) > MAX_BATCH_OBJECTS:
        raise ValidationFailed(
            f"A batch holds at most {MAX_BATCH_OBJECTS} objects", field="object_ids"
        )
    updated = batch.model_copy(update={"object_ids": ids, "updated_at": utc_now()})
    stores.ingest.update_batch(updated)
    return updated


def submit(stores: Stores, batch: BatchRecord) -> TaskRecord:
    """Queues a DRAFT batch; its task runs wherever tasks run (services/task_queue.py)."""
    _require_draft(batch, "submitted")
    if not batch.object_ids:
        raise InvalidRequest(
            f"Batch '{batch.batch_id}' has no objects; add some before submitting",
            code="empty_batch",
        )
    scope = batch.collection_ids
    if not scope:
        bucket = stores.ingest.get_bucket_by_id(batch.bucket_id)
        if bucket is None:
            raise NotFound("bucket", batch.bucket_id)
        scope = require_sourced_collections(stores, bucket)
    task = TaskRecord(
        task_id=new_id("task_"),
        namespace_id=batch.namespace_id,
        task_type=BATCH_TASK,
        inputs=[batch.batch_id],
        additional_data={
            "batch_id": batch.batch_id,
            "bucket_id": batch.bucket_id,
            "namespace_id": batch.namespace_id,
            "total_tiers": 1,
            "current_tier": 0,
            "collection_ids": scope,
            "object_count": len(batch.object_ids),
            "sample_object_ids": batch.object_ids[:5],
        },
    )
    now = utc_now()
    stores.ingest.create_task(task)
    stores.ingest.update_batch(
        batch.model_copy(
            update={
                "status": "PENDING",
                "collection_ids": scope,
                "task_id": task.task_id,
                "submitted_at": now,
                "updated_at": now,
            }
        )
    )
    stores.tasks.submit(task.task_id)
    return task


def submit_objects(
    stores: Stores,
    *,
    bucket: BucketRecord,
    object_ids: list[str],
    collection_ids: list[str] | None = None,
    dedup_strategy: str = "skip",
) -> tuple[BatchRecord, TaskRecord]:
    """A batch made and submitted at once (auto_process, auto_submit, trigger)."""
    body: dict[str, Any] = {"object_ids": object_ids, "dedup_strategy": dedup_strategy}
    if collection_ids is not None:
        body["collection_ids"] = collection_ids
    batch = create_batch(stores, bucket=bucket, body=body)
    task = submit(stores, batch)
    stored = stores.ingest.get_batch(batch.batch_id)
    return stored or batch, task


def patch_batch(
    stores: Stores, *, bucket: BucketRecord, batch_id: str, body: dict[str, Any]
) -> BatchRecord:
    batch = batch_in_bucket(stores, bucket, batch_id)
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        raise ValidationFailed("metadata must be an object", field="metadata")
    updated = batch.model_copy(update={"metadata": metadata, "updated_at": utc_now()})
    stores.ingest.update_batch(updated)
    return updated


def cancel(stores: Stores, batch: BatchRecord, reason: str | None) -> TaskRecord | None:
    """Stops a batch between slices; a finished batch stays as it ended (409)."""
    if batch.status in TERMINAL_STATUSES:
        raise Conflict(
            f"Batch '{batch.batch_id}' already ended ({batch.status})",
            code="batch_already_ended",
        )
    now = utc_now()
    stores.ingest.update_batch(
        batch.model_copy(
            update={
                "status": "CANCELED",
                "error": reason or "canceled by request",
                "completed_at": now,
                "updated_at": now,
            }
        )
    )
    task = stores.ingest.get_task(batch.task_id) if batch.task_id else None
    return cancel_task(stores, task, reason or "canceled by request") if task else None


def cancel_task(stores: Stores, task: TaskRecord, reason: str) -> TaskRecord:
    if task.status in TERMINAL_STATUSES:
        return task
    now = utc_now()
    canceled = task.model_copy(
        update={"status": "CANCELED", "error": reason, "completed_at": now, "updated_at": now}
    )
    stores.ingest.update_task(canceled)
    return canceled


def delete_batch(stores: Stores, *, bucket: BucketRecord, batch_id: str) -> None:
    batch = batch_in_bucket(stores, bucket, batch_id)
    if batch.status in ("PENDING", "IN_PROGRESS"):
        raise Conflict(
            f"Batch '{batch_id}' is {batch.status}; cancel it before deleting it",
            code="batch_running",
        )
    stores.ingest.delete_batch(batch_id)
