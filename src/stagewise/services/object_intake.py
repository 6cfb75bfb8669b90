"""One object's create body turned into a record and its blobs' bytes, with everything
checked (schema, blobs, unique key) and nothing written yet."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from stagewise.domain.ingest_records import BucketRecord, ObjectRecord
from stagewise.errors import ValidationFailed
from stagewise.ids import new_sortable_id, utc_now
from stagewise.services.blob_intake import PendingBlob, decode_blob
from stagewise.services.bucket_schema import (
    RESERVED_FIELDS,
    apply_defaults,
    check_fields,
    unique_key_value,
)
from stagewise.services.context import Stores

# The create body's own keys; every other key is a custom field at the object root.
REQUEST_KEYS = frozenset(
    {
        "key_prefix",
        "blobs",
        "skip_duplicates",
        "canonicalize_source",
        "force_remirror",
        "edges",
        "idempotency_key",
    }
)
MAX_BLOBS = 32
MAX_KEY_PREFIX = 1024


@dataclass
class PreparedObject:
    record: ObjectRecord
    blobs: list[PendingBlob]


def _refuse(field: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code, field=field)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_custom_fields(fields: dict[str, Any]) -> None:
    for name in fields:
        if name in RESERVED_FIELDS:
            raise _refuse(name, f"'{name}' is a reserved object field", "reserved_field")


def check_key_prefix(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_KEY_PREFIX):
        raise _refuse("key_prefix", f"key_prefix must be a string of at most {MAX_KEY_PREFIX}")
    return value


def check_idempotency_key(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 255):
        raise _refuse("idempotency_key", "idempotency_key must be a string of 1 to 255 characters")
    return value


def finish(record: ObjectRecord, bucket: BucketRecord) -> ObjectRecord:
    """Checks the record's fields against the schema and sets what derives from them: the
    unique key value, the content hash and the size (blob bytes plus the fields' JSON)."""
    props = bucket.bucket_schema.get("properties", {})
    fields = apply_defaults(record.fields, props)
    check_fields(fields, props, blob_properties=frozenset(b.property for b in record.blobs))
    text = canonical(fields)
    blob_hashes = [[b.property, b.content_hash] for b in record.blobs]
    digest = hashlib.sha256(canonical([text, blob_hashes, record.key_prefix]).encode())
    return record.model_copy(
        update={
            "fields": fields,
            "unique_key_value": unique_key_value(bucket.unique_key, fields),
            "content_hash": digest.hexdigest(),
            "size_bytes": len(text.encode()) + sum(b.size_bytes for b in record.blobs),
        }
    )


def prepare_object(stores: Stores, bucket: BucketRecord, body: Any) -> PreparedObject:
    if not isinstance(body, dict):
        raise _refuse("body", "an object must be a JSON object")
    if "auto_process" in body:
        raise _refuse(
            "auto_process", "auto_process is a query parameter (?auto_process=true), not a body key"
        )
    if body.get("skip_duplicates"):
        raise _refuse(
            "skip_duplicates",
            "skip_duplicates is not supported on this server; use idempotency_key",
            "unsupported_parameter",
        )
    if body.get("edges"):
        raise _refuse("edges", "edges are not supported on this server", "unsupported_parameter")
    fields = {k: v for k, v in body.items() if k not in REQUEST_KEYS}
    check_custom_fields(fields)
    raw_blobs = body.get("blobs") or []
    if not isinstance(raw_blobs, list) or len(raw_blobs) > MAX_BLOBS:
        raise _refuse("blobs", f"blobs must be a list of at most {MAX_BLOBS}")
    props = bucket.bucket_schema.get("properties", {})
    import_dir = stores.settings.blob_import_dir
    blobs = [decode_blob(raw, i, props, import_dir) for i, raw in enumerate(raw_blobs)]
    # Blob metadata is promoted to the root: a root field wins, then the first blob.
    for blob in blobs:
        for key, value in blob.metadata.items():
            if key not in fields and key not in RESERVED_FIELDS:
                fields[key] = value
    now = utc_now()
    record = ObjectRecord(
        object_id=new_sortable_id("obj_"),
        bucket_id=bucket.bucket_id,
        namespace_id=bucket.namespace_id,
        key_prefix=check_key_prefix(body.get("key_prefix")),
        fields=fields,
        blobs=[b.ref for b in blobs],
        idempotency_key=check_idempotency_key(body.get("idempotency_key")),
        created_at=now,
        updated_at=now,
    )
    return PreparedObject(finish(record, bucket), blobs)


def store_blobs(stores: Stores, prepared: list[PreparedObject]) -> None:
    """Before the SQL commit: content-addressed, so a failed commit leaves only bytes no
    object names (and a repeat stores nothing new)."""
    for item in prepared:
        for blob in item.blobs:
            stores.blobs.put(blob.data)
