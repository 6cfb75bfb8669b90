"""Batches and tasks as the SDK reads them (BatchModel, TaskResponse), with progress counted
from the stored per-object items on every read, never kept as a separate tally."""

from __future__ import annotations

from typing import Any

from stagewise.domain.ingest_records import TERMINAL_STATUSES, BatchRecord, TaskRecord
from stagewise.ids import iso, utc_now
from stagewise.services.context import Stores

MAX_LISTED = 1000  # failed objects a batch read lists; failed_object_count counts them all
_LIFECYCLE = {
    "DRAFT": "accepted",
    "PENDING": "queued",
    "IN_PROGRESS": "extracting",
    "COMPLETED": "indexed",
    "COMPLETED_WITH_ERRORS": "indexed",
    "FAILED": "failed",
    "CANCELED": "canceled",
}


def _resolvable(stores: Stores, batch: BatchRecord) -> bool:
    """True once this process's index holds every document the batch committed."""
    if batch.status not in TERMINAL_STATUSES or batch.status == "CANCELED":
        return False
    return all(stores.follower.applied(c) >= seq for c, seq in batch.written_seqs.items())


def _progress(
    batch: BatchRecord, totals: dict[str, tuple[int, int]], first_error: str | None
) -> dict[str, Any]:
    def count(status: str) -> int:
        return totals.get(status, (0, 0))[0]

    done = count("COMPLETED") + count("FAILED") + count("SKIPPED")
    total = len(batch.object_ids)
    out: dict[str, Any] = {
        "processed": done,
        "total": total,
        "percent": round(100.0 * done / total, 2) if total else None,
        "errors": count("FAILED"),
        "objects_extracted": count("COMPLETED"),
        "objects_skipped": count("SKIPPED"),
        "objects_failed": count("FAILED"),
        "documents_written": sum(docs for _, docs in totals.values()),
    }
    if first_error is not None:
        out["first_error"] = first_error[:500]
    if batch.started_at is not None and done:
        end = batch.completed_at or utc_now()
        elapsed = max((end - batch.started_at).total_seconds(), 1e-3)
        rate = done / elapsed
        out["items_per_second"] = round(rate, 3)
        if batch.status not in TERMINAL_STATUSES:
            out["eta_seconds"] = round((total - done) / rate, 1)
    return out


def _failure_category(
    stores: Stores, batch: BatchRecord, task: TaskRecord | None, progress: dict[str, Any]
) -> str:
    """Why a batch FAILED: every object's extraction failed (pipeline), its workers died
    until the task ran out of attempts (infrastructure), or the task itself raised."""
    if progress["total"] and progress["objects_failed"] == progress["total"]:
        return "pipeline"
    if task is not None and task.attempts >= stores.settings.max_task_attempts:
        return "infrastructure"
    return "unknown"


def batch_public(stores: Stores, batch: BatchRecord) -> dict[str, Any]:
    drafted = batch.status == "DRAFT"
    totals = {} if drafted else stores.ingest.batch_item_totals(batch.batch_id)
    failures = [] if drafted else stores.ingest.failed_batch_items(batch.batch_id, MAX_LISTED)
    task = stores.ingest.get_task(batch.task_id) if batch.task_id else None
    progress = _progress(batch, totals, next((i.error for i in failures if i.error), None))
    failed = [
        {
            "object_id": i.object_id,
            "error": i.error or "failed",
            "error_type": i.error_type or "permanent",
            "timestamp": i.updated_at.isoformat(),
        }
        for i in failures
    ]
    error_summary: dict[str, int] = {}
    for entry in failed:
        error_summary[entry["error_type"]] = error_summary.get(entry["error_type"], 0) + 1
    if len(failed) < progress["objects_failed"]:
        error_summary = {}  # only some failures are listed: no partial tally
    out: dict[str, Any] = {
        "batch_id": batch.batch_id,
        "bucket_id": batch.bucket_id,
        "namespace_id": batch.namespace_id,
        "batch_name": batch.batch_name,
        "status": batch.status,
        "type": "BUCKET",
        "object_ids": batch.object_ids,
        "dedup_strategy": batch.dedup_strategy,
        "collection_ids": batch.collection_ids,
        "task_id": batch.task_id,
        "metadata": batch.metadata,
        "total_tiers": 1,
        "dag_tiers": [batch.collection_ids] if batch.collection_ids else None,
        "progress": progress,
        "documents_written": progress["documents_written"],
        "documents_resolvable": _resolvable(stores, batch),
        "failed_objects": failed,
        "failed_object_count": progress["objects_failed"],
        "error_summary": error_summary or None,
        "error": batch.error,
        "failure_reason": batch.error if batch.status == "FAILED" else None,
        "created_at": iso(batch.created_at),
        "updated_at": iso(batch.updated_at),
        # Retries of a task whose worker died: what the task runner allows and has used.
        "max_node_death_resubmits": stores.settings.max_task_attempts - 1,
        "max_deploy_resubmits": stores.settings.max_task_attempts - 1,
        "node_death_resubmit_count": max((task.attempts if task else 0) - 1, 0),
        "lifecycle": _LIFECYCLE.get(batch.status, "accepted"),
        "lifecycle_reason": batch.error,
    }
    if batch.status == "FAILED":
        out["failure_category"] = _failure_category(stores, batch, task, progress)
    if batch.task_id is not None:
        out["current_tier"] = 0
        out["tier_tasks"] = [
            {
                "tier_num": 0,
                "task_id": batch.task_id,
                "status": task.status if task else batch.status,
                "collection_ids": batch.collection_ids or None,
                "source_type": "bucket",
                "started_at": iso(batch.started_at),
                "completed_at": iso(batch.completed_at),
                "duration_ms": (
                    (batch.completed_at - batch.started_at).total_seconds() * 1000.0
                    if batch.completed_at and batch.started_at
                    else None
                ),
                "documents_written": progress["documents_written"],
            }
        ]
    return out


def task_public(task: TaskRecord) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "task_type": task.task_type,
        "status": task.status,
        "inputs": task.inputs,
        "outputs": task.outputs or None,
        "additional_data": {
            **task.additional_data,
            "attempts": task.attempts,
            "created_at": iso(task.created_at),
            "started_at": iso(task.started_at),
            "completed_at": iso(task.completed_at),
            **({"error": task.error} if task.error else {}),
        },
        "error": task.error,
    }
