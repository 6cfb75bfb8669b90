"""The batch task: every object of a batch through every collection in its scope.

Objects go in slices; after each slice the per-object outcomes are stored as batch items, so
a task delivered again (its worker died) resumes after the last stored slice, and what it
redoes is idempotent (services/processing.py)."""

from __future__ import annotations

from collections.abc import Sequence

from stagewise.domain.ingest_records import BatchItem, BatchRecord, ObjectRecord, TaskRecord
from stagewise.domain.records import CollectionRecord
from stagewise.ids import utc_now
from stagewise.services.bucket_source import BucketSource, parse_source
from stagewise.services.ingest_context import IngestContext
from stagewise.services.processing import ObjectOutcome, process_objects
from stagewise.services.task_runner import TaskOutcome, task_handler

BATCH_TASK = "api_buckets_batches_process"
# Objects per embedding call and per stored progress step: the embedder's batch (64), so a
# slice is one model call (32 took two, through the micro-batching queue).
SLICE = 64
PERSIST_EVERY = 8  # slices between two saves of the seqs written so far


def _merge(object_id: str, per_collection: Sequence[ObjectOutcome]) -> BatchItem:
    """One object's outcome over every collection: failed if any failed."""
    failed = [o for o in per_collection if o.status == "FAILED"]
    written = sum(o.documents_written for o in per_collection)
    if failed:
        status = "FAILED"
    elif per_collection and all(o.status == "SKIPPED" for o in per_collection):
        status = "SKIPPED"
    else:
        status = "COMPLETED"
    return BatchItem(
        batch_id="",
        object_id=object_id,
        status=status,
        documents_written=written,
        error="; ".join(sorted({f.error or "" for f in failed})) or None,
        error_type=failed[0].error_type if failed else None,
    )


def _scope(
    ctx: IngestContext, batch: BatchRecord
) -> tuple[list[tuple[CollectionRecord, BucketSource]], list[str]]:
    scope: list[tuple[CollectionRecord, BucketSource]] = []
    gone: list[str] = []
    for collection_id in batch.collection_ids:
        col = ctx.metadata.get_collection(batch.namespace_id, collection_id)
        if col is None:
            gone.append(collection_id)
        else:
            scope.append((col, parse_source(col)))
    return scope, gone


def _stopped(ctx: IngestContext, batch_id: str) -> BatchRecord | None:
    """The batch, unless it was deleted or canceled (canceling a batch task cancels its
    batch too: services/tasks.py)."""
    batch = ctx.ingest.get_batch(batch_id)
    return None if batch is None or batch.status == "CANCELED" else batch


def _process_slice(
    ctx: IngestContext,
    batch: BatchRecord,
    scope: list[tuple[CollectionRecord, BucketSource]],
    object_ids: list[str],
) -> dict[str, int]:
    found = ctx.ingest.get_objects(batch.bucket_id, object_ids)
    objects: list[ObjectRecord] = [found[oid] for oid in object_ids if oid in found]
    per_object: dict[str, list[ObjectOutcome]] = {oid: [] for oid in object_ids}
    for oid in object_ids:
        if oid not in found:
            per_object[oid].append(
                ObjectOutcome(oid, "FAILED", 0, "the object was deleted", "permanent")
            )
    seqs: dict[str, int] = {}
    for col, source in scope:
        outcomes, seq = process_objects(ctx, col, source, objects, batch.dedup_strategy)
        for outcome in outcomes:
            per_object[outcome.object_id].append(outcome)
        if seq:
            seqs[col.collection_id] = seq
    items = [
        _merge(oid, outs).model_copy(update={"batch_id": batch.batch_id})
        for oid, outs in per_object.items()
    ]
    ctx.ingest.put_batch_items(items)
    ctx.ingest.set_object_statuses(
        [
            (i.object_id, "FAILED" if i.status == "FAILED" else "COMPLETED", i.error)
            for i in items
            if i.object_id in found
        ]
    )
    return seqs


def _batch_failed(ctx: IngestContext, task: TaskRecord, error: str) -> None:
    batch_id = str(task.additional_data.get("batch_id"))
    _finish(ctx, batch_id, "FAILED", error, {})


@task_handler(BATCH_TASK, on_failure=_batch_failed)
def process_batch(ctx: IngestContext, task: TaskRecord) -> TaskOutcome:
    batch_id = str(task.additional_data.get("batch_id"))
    batch = ctx.ingest.get_batch(batch_id)
    if batch is None:
        return TaskOutcome("FAILED", f"batch '{batch_id}' was deleted")
    if batch.status == "CANCELED":
        return TaskOutcome("CANCELED", "the batch was canceled")
    scope, gone = _scope(ctx, batch)
    batch = batch.model_copy(
        update={"status": "IN_PROGRESS", "started_at": batch.started_at or utc_now()}
    )
    ctx.ingest.update_batch(batch)
    finished = {i.object_id for i in ctx.ingest.get_batch_items(batch_id) if i.status != "PENDING"}
    todo = [oid for oid in batch.object_ids if oid not in finished]
    written = dict(batch.written_seqs)
    for n, start in enumerate(range(0, len(todo), SLICE)):
        current = _stopped(ctx, batch_id)
        if current is None:
            return _finish(ctx, batch_id, "CANCELED", "the batch was canceled or deleted", written)
        if n and n % PERSIST_EVERY == 0:  # a resumed task then knows what was written before
            ctx.ingest.update_batch(current.model_copy(update={"written_seqs": written}))
        seqs = _process_slice(ctx, batch, scope, todo[start : start + SLICE])
        for collection_id, seq in seqs.items():
            written[collection_id] = max(seq, written.get(collection_id, 0))
    counts = ctx.ingest.batch_item_counts(batch_id)
    failed, total = counts.get("FAILED", 0), len(batch.object_ids)
    error = f"collections deleted before processing: {gone}" if gone else None
    if total and failed == total:
        status = "FAILED"
        error = error or f"all {total} objects failed"
    elif failed or gone:
        status = "COMPLETED_WITH_ERRORS"
    else:
        status = "COMPLETED"
    return _finish(ctx, batch_id, status, error, written)


def _finish(
    ctx: IngestContext, batch_id: str, status: str, error: str | None, written: dict[str, int]
) -> TaskOutcome:
    batch = ctx.ingest.get_batch(batch_id)
    if batch is not None:
        written = written or batch.written_seqs
        ctx.ingest.update_batch(
            batch.model_copy(
                update={
                    "status": status,
                    "error": error,
                    "written_seqs": written,
                    "completed_at": utc_now(),
                    "updated_at": utc_now(),
                }
            )
        )
    # The task ran to its end even when some objects failed: they are listed on the batch.
    task_status = status if status in ("FAILED", "CANCELED") else "COMPLETED"
    totals = ctx.ingest.batch_item_totals(batch_id)
    counts = {
        "objects_processed": sum(n for status, (n, _) in totals.items() if status != "PENDING"),
        "objects_failed": totals.get("FAILED", (0, 0))[0],
        "objects_skipped": totals.get("SKIPPED", (0, 0))[0],
        "documents_written": sum(docs for _, docs in totals.values()),
    }
    return TaskOutcome(
        task_status, error if task_status != "COMPLETED" else None, additional_data=counts
    )
