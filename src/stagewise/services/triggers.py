"""`POST /v1/collections/{id}/trigger`: (re)process a bucket-sourced collection's objects,
in batches of at most TRIGGER_BATCH objects, each with its own task."""

from __future__ import annotations

from typing import Any

from stagewise.domain.ingest_records import BucketRecord
from stagewise.domain.records import CollectionRecord
from stagewise.errors import InvalidRequest, ValidationFailed
from stagewise.services.batches import DEDUP_STRATEGIES, submit_objects
from stagewise.services.bucket_source import is_bucket_sourced
from stagewise.services.context import Stores

TRIGGER_BATCH = 1000


def _buckets(stores: Stores, col: CollectionRecord, include: Any) -> list[BucketRecord]:
    sourced = [
        b
        for b in (stores.ingest.get_bucket_by_id(i) for i in col.source.get("bucket_ids") or ())
        if b is not None
    ]
    if include is None:
        return sourced
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
        raise ValidationFailed("include_buckets must list bucket ids or names")
    chosen = [b for b in sourced if b.bucket_id in include or b.bucket_name in include]
    unknown = [i for i in include if all(i not in (b.bucket_id, b.bucket_name) for b in sourced)]
    if unknown:
        raise ValidationFailed(
            f"Buckets {unknown} are not sources of collection '{col.collection_name}'",
            code="bucket_not_a_source",
            field="include_buckets",
        )
    return chosen


def trigger_collection(
    stores: Stores, *, col: CollectionRecord, body: dict[str, Any]
) -> dict[str, Any]:
    if not is_bucket_sourced(col):
        raise ValidationFailed(
            f"Collection '{col.collection_name}' is not sourced from a bucket; its documents "
            "are written directly",
            code="not_bucket_sourced",
        )
    if body.get("source_filters") or body.get("reembed") or body.get("include_collections"):
        raise ValidationFailed(
            "source_filters, reembed and include_collections are not supported yet",
            code="unsupported_trigger_option",
        )
    dedup = body.get("dedup_strategy") or "skip"
    if dedup not in DEDUP_STRATEGIES:
        raise ValidationFailed(
            f"dedup_strategy must be one of {list(DEDUP_STRATEGIES)}", field="dedup_strategy"
        )
    wanted = body.get("object_ids")
    plan: list[tuple[BucketRecord, list[str]]] = []
    for bucket in _buckets(stores, col, body.get("include_buckets")):
        if wanted is None:
            ids = stores.ingest.all_object_ids(bucket.bucket_id)
        else:
            ids = list(stores.ingest.get_objects(bucket.bucket_id, wanted))
        plan += [(bucket, ids[i : i + TRIGGER_BATCH]) for i in range(0, len(ids), TRIGGER_BATCH)]
    if not plan:
        raise InvalidRequest(
            f"Collection '{col.collection_name}' has no objects to process in its buckets",
            code="nothing_to_process",
        )
    batch_ids, task_ids = [], []
    for bucket, ids in plan:
        batch, task = submit_objects(
            stores,
            bucket=bucket,
            object_ids=ids,
            collection_ids=[col.collection_id],
            dedup_strategy=dedup,
        )
        batch_ids.append(batch.batch_id)
        task_ids.append(task.task_id)
    count = sum(len(ids) for _, ids in plan)
    return {
        "batch_id": batch_ids[0],
        "task_id": task_ids[0],
        "collection_id": col.collection_id,
        "source_bucket_ids": sorted({b.bucket_id for b, _ in plan}),
        "object_count": count,
        "batch_ids": batch_ids,
        "task_ids": task_ids,
        "batch_count": len(batch_ids),
        "total_tiers": 1,
        "message": f"Processing {count} objects in {len(batch_ids)} batch(es)",
    }
