"""Public (wire) shapes of buckets and objects, as the Mixpeek SDK parses them."""

from __future__ import annotations

from typing import Any

from stagewise.domain.ingest_records import BlobRef, BucketRecord, ObjectRecord
from stagewise.ids import iso


def bucket_public(bucket: BucketRecord) -> dict[str, Any]:
    return {
        "bucket_id": bucket.bucket_id,
        "bucket_name": bucket.bucket_name,
        "description": bucket.description,
        "bucket_schema": bucket.bucket_schema,
        "unique_key": bucket.unique_key,
        "metadata": bucket.metadata,
        "object_count": bucket.object_count,
        "failed_object_count": bucket.failed_object_count,
        "total_size_bytes": bucket.total_size_bytes,
        "status": bucket.status,
        "is_locked": False,
        "created_at": iso(bucket.created_at),
        "updated_at": iso(bucket.updated_at),
    }


def blob_public(blob: BlobRef) -> dict[str, Any]:
    return {
        "blob_id": blob.blob_id,
        "property": blob.property,
        "type": blob.type,
        "key_prefix": blob.properties.get("key_prefix"),
        "properties": blob.properties,
        "details": {
            "filename": blob.filename,
            "size_bytes": blob.size_bytes,
            "mime_type": blob.mime_type,
            "hash": f"sha256:{blob.content_hash}",
        },
    }


def object_public(obj: ObjectRecord, *, written: bool = False) -> dict[str, Any]:
    """Custom fields at the root, as they were sent. `written`: a create's answer, which says
    when the object becomes searchable (after a batch processes it)."""
    out: dict[str, Any] = {
        **obj.fields,
        "object_id": obj.object_id,
        "bucket_id": obj.bucket_id,
        "key_prefix": obj.key_prefix,
        "blobs": [blob_public(b) for b in obj.blobs],
        "status": obj.status,
        "error": obj.error,
        "created_at": iso(obj.created_at),
        "updated_at": iso(obj.updated_at),
    }
    if obj.idempotency_key is not None:  # so a client can tell what it uploaded already
        out["idempotency_key"] = obj.idempotency_key
    if written:
        out["consistency"] = {
            "retriever_visible": "after_processing",
            "write_token_available": False,
            "expected_visible_within_ms": None,
            "poll": {
                "endpoint": f"/v1/buckets/{obj.bucket_id}/objects/{obj.object_id}",
                "field": "status",
                "ready_when": "COMPLETED",
            },
        }
    return out


def batch_row_public(index: int, obj: ObjectRecord, replayed: bool) -> dict[str, Any]:
    return {
        **object_public(obj, written=True),
        "object_index": index,
        "replayed": replayed,
        "replayed_by": "idempotency_key" if replayed else None,
    }
