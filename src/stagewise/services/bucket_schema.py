"""Bucket schemas: checked when a bucket is written, and every object checked against its
bucket's schema before anything is stored (docs/ingestion.md)."""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any

from stagewise.errors import ValidationFailed

METADATA_TYPES = frozenset(
    {"string", "number", "integer", "float", "boolean", "object", "array", "date", "datetime"}
)
BLOB_TYPES = frozenset({"text", "image", "audio", "video", "pdf", "excel"})
FIELD_TYPES = METADATA_TYPES | BLOB_TYPES
# What a unique key may be made of: values with one canonical text form.
SCALAR_TYPES = frozenset({"string", "number", "integer", "float", "boolean", "date", "datetime"})
POLICIES = ("insert", "update", "upsert")
# Keys of an object's response that a custom root field may not take.
RESERVED_FIELDS = frozenset(
    {
        "object_id",
        "bucket_id",
        "namespace_id",
        "status",
        "error",
        "created_at",
        "updated_at",
        "document_count",
        "consistency",
        "source_details",
        "blobs",
        "key_prefix",
        "edges",
        "auto_process",
        "object_index",
        "replayed",
        "replayed_by",
        "_internal",
    }
)
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_FIELD_KEYS = frozenset(
    {"type", "default", "items", "properties", "examples", "description", "enum", "required"}
)
MAX_UNIQUE_KEY_CHARS = 1024  # the column's width


def _fail(field: str, message: str, code: str = "invalid_bucket_schema") -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", code=code, field=field)


def _field_spec(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _fail(where, "a field definition must be an object with a 'type'")
    kind = raw.get("type")
    if kind == "keyword":
        raise _fail(f"{where}.type", "'keyword' is not a bucket type; use 'string'")
    if kind not in FIELD_TYPES:
        raise _fail(f"{where}.type", f"{kind!r} is not one of {', '.join(sorted(FIELD_TYPES))}")
    spec = {k: v for k, v in raw.items() if k in _FIELD_KEYS and v is not None}
    spec["required"] = raw.get("required", False)
    if not isinstance(spec["required"], bool):
        raise _fail(f"{where}.required", "must be true or false")
    if "description" in spec and not isinstance(spec["description"], str):
        raise _fail(f"{where}.description", "must be a string")
    for key in ("enum", "examples"):
        if key in spec and not isinstance(spec[key], list):
            raise _fail(f"{where}.{key}", "must be a list")
    if "items" in spec:
        if kind != "array":
            raise _fail(f"{where}.items", "only an array field has items")
        spec["items"] = _field_spec(spec["items"], f"{where}.items")
    if "properties" in spec:
        if kind != "object":
            raise _fail(f"{where}.properties", "only an object field has properties")
        spec["properties"] = _properties(spec["properties"], f"{where}.properties")
    if "default" in spec and kind in METADATA_TYPES:
        check_value(spec["default"], spec, f"{where}.default")
    return spec


def _properties(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _fail(where, "must be an object mapping field names to definitions")
    out: dict[str, Any] = {}
    for name, spec in raw.items():
        if not FIELD_NAME.match(name):
            raise _fail(
                f"{where}.{name}",
                "a field name is 1-100 letters, digits or '_', not starting with a digit",
            )
        out[name] = _field_spec(spec, f"{where}.{name}")
    return out


def validate_schema(raw: Any) -> dict[str, Any]:
    """The schema as stored: `{"properties": {name: field}}`, each field's keys checked."""
    if not isinstance(raw, dict) or "properties" not in raw:
        raise _fail("bucket_schema", "must be an object with 'properties'")
    props = _properties(raw["properties"], "bucket_schema.properties")
    for name in props:
        if name in RESERVED_FIELDS:
            raise _fail(f"bucket_schema.properties.{name}", "is a reserved object field name")
    return {"properties": props}


def validate_unique_key(raw: Any, schema: dict[str, Any]) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail("unique_key", "must be an object with 'fields'", "invalid_unique_key")
    fields = raw.get("fields")
    if not isinstance(fields, list) or not fields or len(fields) > 10:
        raise _fail("unique_key.fields", "must list 1 to 10 field names", "invalid_unique_key")
    props = schema["properties"]
    for name in fields:
        spec = props.get(name) if isinstance(name, str) else None
        if spec is None:
            raise _fail(
                "unique_key.fields", f"{name!r} is not a schema field", "invalid_unique_key"
            )
        if spec["type"] not in SCALAR_TYPES:
            raise _fail(
                "unique_key.fields",
                f"{name!r} is a {spec['type']} field; a unique key field must be scalar "
                f"({', '.join(sorted(SCALAR_TYPES))})",
                "invalid_unique_key",
            )
    if len(set(fields)) != len(fields):
        raise _fail("unique_key.fields", "names a field twice", "invalid_unique_key")
    policy = raw.get("default_policy")
    if policy is not None and policy not in POLICIES:
        raise _fail("unique_key.default_policy", f"must be one of {', '.join(POLICIES)}")
    return {"fields": list(fields), "default_policy": policy}


# ---- objects against a schema


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"Field '{field}' {message}", code="schema_violation", field=field)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def check_value(value: Any, spec: dict[str, Any], field: str) -> None:
    kind = spec["type"]
    ok: bool
    if kind in ("string", "text"):
        ok = isinstance(value, str)
    elif kind in ("number", "float"):
        ok = _is_number(value)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "date":
        ok = isinstance(value, str) and _parses(date.fromisoformat, value)
    elif kind == "datetime":
        ok = isinstance(value, str) and _parses(datetime.fromisoformat, value)
    elif kind == "object":
        ok = isinstance(value, dict)
        if ok and "properties" in spec:
            check_fields(value, spec["properties"], prefix=f"{field}.")
    elif kind == "array":
        ok = isinstance(value, list)
        if ok and "items" in spec:
            for i, item in enumerate(value):
                check_value(item, spec["items"], f"{field}[{i}]")
    else:  # image, audio, ...: bytes travel in blobs[]
        raise _invalid(field, f"is a {kind} field: send it in blobs[] (property '{field}')")
    if not ok:
        raise _invalid(field, f"must be a {kind}, got {_json_type(value)}")
    if "enum" in spec and value not in spec["enum"]:
        raise _invalid(field, f"must be one of {json.dumps(spec['enum'])[:200]}")


def _parses(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "null"


def check_fields(
    fields: dict[str, Any],
    props: dict[str, Any],
    *,
    blob_properties: frozenset[str] = frozenset(),
    prefix: str = "",
) -> None:
    """Every declared field present when required (a blob counts for its property) and of
    its type; fields the schema does not declare pass through."""
    for name, spec in props.items():
        value = fields.get(name)
        if value is None:
            if spec.get("required") and name not in blob_properties:
                raise _invalid(prefix + name, "is required by the bucket schema")
            continue
        check_value(value, spec, prefix + name)


def apply_defaults(fields: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    missing = {n: s["default"] for n, s in props.items() if "default" in s and n not in fields}
    return {**fields, **missing} if missing else fields


def unique_key_value(unique_key: dict[str, Any] | None, fields: dict[str, Any]) -> str | None:
    """The key's values as canonical JSON (a list, in the key's field order)."""
    if not unique_key:
        return None
    values = []
    for name in unique_key["fields"]:
        if fields.get(name) is None:
            raise _invalid(name, "is part of the bucket's unique key and must be set")
        values.append(fields[name])
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    if len(text) > MAX_UNIQUE_KEY_CHARS:
        raise ValidationFailed(
            f"The unique key's values are {len(text)} characters; at most {MAX_UNIQUE_KEY_CHARS}",
            code="schema_violation",
            field=unique_key["fields"][0],
        )
    return text
