"""Bucket objects: create (unique-key policies, idempotency keys), batch create, get, list
(keyset, oldest first), patch, update, delete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stagewise.domain.ingest_records import BucketRecord, ObjectRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import Conflict, InvalidRequest, NotFound, StagewiseError, ValidationFailed
from stagewise.ids import utc_now
from stagewise.services.bucket_schema import POLICIES
from stagewise.services.context import Stores
from stagewise.services.object_intake import (
    PreparedObject,
    check_custom_fields,
    check_idempotency_key,
    check_key_prefix,
    finish,
    prepare_object,
    store_blobs,
)

MAX_BATCH = 100
CURSOR_KIND = "objects"
# PATCH/PUT bodies: keys that are not custom fields, and keys a client may not set.
_UPDATE_KEYS = frozenset({"key_prefix", "skip_duplicates"})
_NOT_PATCHABLE = frozenset({"status", "object_id", "blobs", "bucket_id", "idempotency_key"})


def resolve_policy(bucket: BucketRecord, policy: str | None) -> str | None:
    """`?policy` wins over the bucket's default_policy; a unique-key bucket needs one."""
    if policy is not None and policy not in POLICIES:
        raise ValidationFailed(f"policy must be one of {', '.join(POLICIES)}", field="policy")
    if not bucket.unique_key:
        return None
    chosen = policy or bucket.unique_key.get("default_policy")
    if chosen is None:
        raise InvalidRequest(
            "This bucket has a unique key and no default_policy: send ?policy=insert, "
            "update or upsert",
            code="policy_required",
            field="policy",
        )
    return str(chosen)


def create_object(
    stores: Stores, *, bucket: BucketRecord, body: Any, policy: str | None
) -> tuple[ObjectRecord, bool]:
    """The object as stored, and whether it was an existing one (an idempotency key reused)."""
    chosen = resolve_policy(bucket, policy)
    key = check_idempotency_key(body.get("idempotency_key") if isinstance(body, dict) else None)
    if key is not None:
        existing = stores.ingest.find_object_by_idempotency_key(bucket.bucket_id, key)
        if existing is not None:
            return existing, True
    prepared = prepare_object(stores, bucket, body)
    if chosen is not None:
        replaced = _write_by_unique_key(stores, bucket, prepared, chosen)
        if replaced is not None:
            return replaced, False
    store_blobs(stores, [prepared])
    try:
        stores.ingest.create_objects([prepared.record])
    except Conflict:
        if key is not None:  # a concurrent create with the same key won
            existing = stores.ingest.find_object_by_idempotency_key(bucket.bucket_id, key)
            if existing is not None:
                return existing, True
        if chosen == "upsert":  # a concurrent insert of the same unique key won
            replaced = _write_by_unique_key(stores, bucket, prepared, chosen)
            if replaced is not None:
                return replaced, False
        raise
    return prepared.record, False


def _write_by_unique_key(
    stores: Stores, bucket: BucketRecord, prepared: PreparedObject, policy: str
) -> ObjectRecord | None:
    """Replaces the object holding the unique key (update, upsert); None when a new object
    is to be created (insert, upsert of a new key)."""
    value = prepared.record.unique_key_value
    assert value is not None
    existing = stores.ingest.find_object_by_unique_key(bucket.bucket_id, value)
    if existing is None:
        if policy == "update":
            raise NotFound("object", value, unique_key=value, policy="update")
        return None
    if policy == "insert":
        raise Conflict(
            f"An object with unique key {value} already exists ({existing.object_id})",
            code="unique_key_exists",
            object_id=existing.object_id,
        )
    replaced = prepared.record.model_copy(
        update={
            "object_id": existing.object_id,
            "created_at": existing.created_at,
            "idempotency_key": prepared.record.idempotency_key or existing.idempotency_key,
            "status": "PENDING",  # new content: to be processed again
        }
    )
    store_blobs(stores, [prepared])
    stores.ingest.replace_object(replaced)
    return replaced


@dataclass
class BatchOutcome:
    succeeded: list[tuple[int, ObjectRecord, bool]] = field(default_factory=list)
    failed: list[tuple[int, StagewiseError]] = field(default_factory=list)


def create_objects_batch(stores: Stores, *, bucket: BucketRecord, items: Any) -> BatchOutcome:
    """Partial success: each item is checked on its own; the valid ones are stored together."""
    if bucket.unique_key:
        raise ValidationFailed(
            "objects/batch does not take unique-key buckets: create their objects one at a "
            "time with a policy",
            code="unique_key_bucket",
            field="objects",
        )
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise ValidationFailed(f"objects must list 1 to {MAX_BATCH} objects", field="objects")
    out = BatchOutcome()
    ready: list[tuple[int, PreparedObject]] = []
    first_by_key: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []  # (index, index of the item with the same key)
    for index, body in enumerate(items):
        try:
            key = check_idempotency_key(
                body.get("idempotency_key") if isinstance(body, dict) else None
            )
            if key is not None and key in first_by_key:
                repeats.append((index, first_by_key[key]))
                continue
            existing = (
                stores.ingest.find_object_by_idempotency_key(bucket.bucket_id, key) if key else None
            )
            if existing is not None:
                out.succeeded.append((index, existing, True))
                continue
            ready.append((index, prepare_object(stores, bucket, body)))
            if key is not None:
                first_by_key[key] = index
        except StagewiseError as exc:
            out.failed.append((index, exc))
    store_blobs(stores, [p for _, p in ready])
    try:
        stores.ingest.create_objects([p.record for _, p in ready])
        out.succeeded += [(i, p.record, False) for i, p in ready]
    except Conflict:  # a concurrent write took a key: store the rest one by one
        for index, prepared in ready:
            try:
                stores.ingest.create_objects([prepared.record])
                out.succeeded.append((index, prepared.record, False))
            except StagewiseError as exc:
                out.failed.append((index, exc))
    done = {i: obj for i, obj, _ in out.succeeded}
    errors = dict(out.failed)
    for index, first in repeats:
        if first in done:
            out.succeeded.append((index, done[first], True))
        else:
            out.failed.append((index, errors[first]))
    out.succeeded.sort(key=lambda s: s[0])
    out.failed.sort(key=lambda f: f[0])
    return out


def get_object(stores: Stores, *, bucket: BucketRecord, object_id: str) -> ObjectRecord:
    obj = stores.ingest.get_object(bucket.bucket_id, object_id)
    if obj is None:
        raise NotFound("object", object_id)
    return obj


def list_objects(
    stores: Stores, *, ns: NamespaceRecord, bucket: BucketRecord, cursor: str | None, limit: int
) -> tuple[list[ObjectRecord], str | None]:
    """A page, oldest first, and the cursor of the next one (None at the end)."""
    after = None
    if cursor is not None:
        position = stores.cursors.decode(
            cursor,
            kind=CURSOR_KIND,
            namespace_id=ns.namespace_id,
            scope=bucket.bucket_id,
            spec={"after": str},
        )
        after = position["after"]
    rows = stores.ingest.list_objects(bucket.bucket_id, after=after, limit=limit + 1)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        fields = {"after": page[-1].object_id}
        next_cursor = stores.cursors.encode(CURSOR_KIND, ns.namespace_id, bucket.bucket_id, fields)
    return page, next_cursor


def update_object(
    stores: Stores, *, bucket: BucketRecord, object_id: str, body: Any, put: bool
) -> ObjectRecord:
    """PATCH: custom fields flat at the root (null removes one). PUT also takes `metadata`,
    whose keys go inside the object's own `metadata` field when it has that key, else to
    the root. Neither touches blobs or status, nor triggers processing."""
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", field="body")
    for key in _NOT_PATCHABLE & set(body):
        raise ValidationFailed(f"'{key}' cannot be changed here", code="reserved_field", field=key)
    obj = get_object(stores, bucket=bucket, object_id=object_id)
    changes = {k: v for k, v in body.items() if k not in _UPDATE_KEYS}
    fields = dict(obj.fields)
    if put and "metadata" in changes:
        meta = changes.pop("metadata") or {}
        if not isinstance(meta, dict):
            raise ValidationFailed("metadata must be an object", field="metadata")
        inner = fields.get("metadata")
        nested = dict(inner) if isinstance(inner, dict) else {}
        for key, value in meta.items():
            if key in nested:
                nested[key] = value
            else:
                changes[key] = value
        if isinstance(inner, dict):
            fields["metadata"] = nested
    check_custom_fields(changes)
    for key, value in changes.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    key_prefix = obj.key_prefix
    if "key_prefix" in body:
        key_prefix = check_key_prefix(body["key_prefix"])
    updated = finish(
        obj.model_copy(
            update={"fields": fields, "key_prefix": key_prefix, "updated_at": utc_now()}
        ),
        bucket,
    )
    stores.ingest.replace_object(updated)
    return updated


def delete_object(stores: Stores, *, bucket: BucketRecord, object_id: str) -> None:
    if not stores.ingest.delete_object(bucket.bucket_id, object_id):
        raise NotFound("object", object_id)
