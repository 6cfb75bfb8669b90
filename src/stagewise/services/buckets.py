"""Buckets: create, resolve (id or name), list, update, delete (with objects and batches)."""

from __future__ import annotations

from typing import Any

from stagewise.domain.ingest_records import BucketRecord, TaskRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import NotFound, ValidationFailed
from stagewise.ids import new_id, utc_now
from stagewise.services.bucket_schema import validate_schema, validate_unique_key
from stagewise.services.context import Stores
from stagewise.services.namespaces import validate_name

DELETE_TASK = "api_buckets_delete"


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed(f"{key} must be a string", field=key)
    return value


def _metadata(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("metadata") or {}
    if not isinstance(value, dict):
        raise ValidationFailed("metadata must be an object", field="metadata")
    return value


def create_bucket(stores: Stores, *, ns: NamespaceRecord, body: dict[str, Any]) -> BucketRecord:
    name = body.get("bucket_name")
    if not isinstance(name, str):
        raise ValidationFailed("bucket_name is required", code="missing_field", field="bucket_name")
    validate_name(name, kind="Bucket", max_len=100)
    if "bucket_schema" not in body:
        raise ValidationFailed(
            "bucket_schema is required: {'properties': {name: {'type': ...}}}",
            code="missing_field",
            field="bucket_schema",
        )
    schema = validate_schema(body["bucket_schema"])
    bucket = BucketRecord(
        bucket_id=new_id("bkt_"),
        namespace_id=ns.namespace_id,
        bucket_name=name,
        description=_text(body, "description"),
        bucket_schema=schema,
        unique_key=validate_unique_key(body.get("unique_key"), schema),
        metadata=_metadata(body),
    )
    stores.ingest.create_bucket(bucket)  # a taken name: Conflict (409)
    return bucket


def get_bucket(stores: Stores, *, ns: NamespaceRecord, identifier: str) -> BucketRecord:
    bucket = stores.ingest.get_bucket(ns.namespace_id, identifier)
    if bucket is None:
        raise NotFound("bucket", identifier)
    return bucket


def list_buckets(
    stores: Stores, *, ns: NamespaceRecord, search: str | None, offset: int, limit: int
) -> tuple[list[BucketRecord], int]:
    return stores.ingest.list_buckets(ns.namespace_id, search=search, offset=offset, limit=limit)


def update_bucket(
    stores: Stores,
    *,
    ns: NamespaceRecord,
    identifier: str,
    body: dict[str, Any],
    force_schema_break: bool = False,
) -> BucketRecord:
    """PATCH and PUT alike: the keys sent change, the others stay. The unique key's fields
    are fixed at creation; its default_policy may change. `force_schema_break` lets a schema
    drop or retype fields that stored objects use (they are not checked again)."""
    bucket = get_bucket(stores, ns=ns, identifier=identifier)
    changes: dict[str, Any] = {"updated_at": utc_now()}
    if body.get("bucket_name") is not None:
        name = body["bucket_name"]
        if not isinstance(name, str):
            raise ValidationFailed("bucket_name must be a string", field="bucket_name")
        validate_name(name, kind="Bucket", max_len=100)
        changes["bucket_name"] = name
    if "description" in body:
        changes["description"] = _text(body, "description")
    if body.get("metadata") is not None:
        changes["metadata"] = _metadata(body)
    schema = bucket.bucket_schema
    if body.get("bucket_schema") is not None:
        schema = validate_schema(body["bucket_schema"])
        if not force_schema_break:
            _keep_existing_fields(bucket, schema)
        changes["bucket_schema"] = schema
    if "unique_key" in body:
        changes["unique_key"] = _new_unique_key(bucket, body["unique_key"], schema)
    elif "bucket_schema" in changes and bucket.unique_key:
        validate_unique_key(bucket.unique_key, schema)  # the key's fields must stay scalar
    updated = bucket.model_copy(update=changes)
    stores.ingest.update_bucket(updated)
    return stores.ingest.get_bucket_by_id(bucket.bucket_id) or updated


def _keep_existing_fields(bucket: BucketRecord, schema: dict[str, Any]) -> None:
    """A schema change may add fields and relax them; it may not drop or retype a field the
    stored objects were checked against (they would no longer pass)."""
    if not bucket.object_count:
        return
    new_props = schema["properties"]
    for name, spec in bucket.bucket_schema.get("properties", {}).items():
        if name not in new_props or new_props[name]["type"] != spec["type"]:
            raise ValidationFailed(
                f"bucket_schema.properties.{name}: the bucket holds objects checked against "
                f"its type '{spec['type']}'; fields can be added, not removed or retyped",
                code="schema_break",
                field=f"bucket_schema.properties.{name}",
            )
        if new_props[name].get("required") and not spec.get("required"):
            raise ValidationFailed(
                f"bucket_schema.properties.{name}: cannot become required while the bucket "
                "holds objects",
                code="schema_break",
                field=f"bucket_schema.properties.{name}",
            )


def _new_unique_key(
    bucket: BucketRecord, raw: Any, schema: dict[str, Any]
) -> dict[str, Any] | None:
    if raw is None and bucket.unique_key is None:
        return None
    checked = validate_unique_key(raw, schema) if raw is not None else None
    old_fields = (bucket.unique_key or {}).get("fields")
    if checked is None or checked["fields"] != old_fields:
        raise ValidationFailed(
            "unique_key.fields is fixed at creation; send the same fields to change default_policy",
            code="unique_key_fixed",
            field="unique_key.fields",
        )
    return checked


def delete_bucket(stores: Stores, *, ns: NamespaceRecord, identifier: str) -> dict[str, Any]:
    """Deletes at once (objects, batches, items) and records the deletion as a finished task,
    which /v1/tasks serves like any other."""
    bucket = get_bucket(stores, ns=ns, identifier=identifier)
    stores.ingest.delete_bucket(bucket.bucket_id)
    now = utc_now()
    summary = {
        "bucket_id": bucket.bucket_id,
        "bucket_name": bucket.bucket_name,
        "object_count": bucket.object_count,
    }
    task = TaskRecord(
        task_id=new_id("task_"),
        namespace_id=ns.namespace_id,
        task_type=DELETE_TASK,
        status="COMPLETED",
        inputs=[bucket.bucket_id],
        additional_data=summary,
        attempts=1,
        started_at=now,
        completed_at=now,
    )
    stores.ingest.create_task(task)
    return {"task_id": task.task_id, "status": task.status, "success": True, **summary}
