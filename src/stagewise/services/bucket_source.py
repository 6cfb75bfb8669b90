"""Collections sourced from buckets: what their config means, checked once at creation.

A bucket-sourced collection names its buckets (`source.bucket_ids`), the bucket field its
extractor reads (`input_mappings`, e.g. {"text": "content"}), the fields copied onto every
document (`field_passthrough`), and the chunking policy (`parameters`). Documents keep the
chunk text in `text`, which is what the vector index and BM25 read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stagewise.domain.ingest_records import BucketRecord
from stagewise.domain.records import CollectionRecord
from stagewise.errors import NotFound, ValidationFailed
from stagewise.services.chunking import ChunkPolicy, policy_from_parameters
from stagewise.storage.ingest import IngestStore

CHUNK_FIELD = "text"  # where a document holds its chunk; the index embeds this field
TEXT_TYPES = frozenset({"text", "string"})
# Document fields processing writes itself; a passthrough may not target them.
LINEAGE_FIELDS = frozenset(
    {
        CHUNK_FIELD,
        "source_type",
        "source_object_id",
        "root_object_id",
        "root_bucket_id",
        "lineage_chain",
        "chunk_index",
        "chunk_count",
        "bucket_id",
        "object_id",
    }
)


@dataclass(frozen=True)
class Passthrough:
    source_path: str
    target_path: str
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class BucketSource:
    bucket_ids: tuple[str, ...]
    input_field: str  # the bucket field (a text blob property or a string field) read
    passthrough: tuple[Passthrough, ...]
    include_all_source_fields: bool
    chunking: ChunkPolicy


def is_bucket_sourced(col: CollectionRecord) -> bool:
    return col.source.get("type") == "bucket"


def _input_field(extractor: dict[str, Any]) -> str:
    mappings = extractor.get("input_mappings")
    if isinstance(mappings, dict) and mappings:
        value = mappings.get("text", next(iter(mappings.values())))
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, str) and value:
            return value
    if isinstance(mappings, list) and mappings:
        first = mappings[0]
        if isinstance(first, dict) and isinstance(first.get("path"), str):
            return str(first["path"])
    raise ValidationFailed(
        "A bucket-sourced collection needs feature_extractor.input_mappings naming the bucket "
        "field to embed, e.g. {'text': 'content'}",
        code="missing_input_mappings",
        field="feature_extractor.input_mappings",
    )


def _passthrough(extractor: dict[str, Any]) -> tuple[Passthrough, ...]:
    items = extractor.get("field_passthrough") or []
    if not isinstance(items, list):
        raise ValidationFailed("field_passthrough must be a list", field="field_passthrough")
    out: list[Passthrough] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("source_path"), str):
            raise ValidationFailed(
                f"field_passthrough[{i}] needs a source_path", field=f"field_passthrough[{i}]"
            )
        source = item["source_path"]
        target = item.get("target_path") or source.rsplit(".", 1)[-1]
        out.append(Passthrough(source, target, item.get("default"), item.get("required") is True))
    targets = [p.target_path for p in out]
    clash = sorted({t for t in targets if targets.count(t) > 1 or t in LINEAGE_FIELDS})
    if clash or any(t.startswith("_") or t == "metadata" for t in targets):
        raise ValidationFailed(
            f"field_passthrough targets {clash or targets} collide with each other or with "
            "fields processing writes",
            code="passthrough_collision",
            field="field_passthrough",
        )
    return tuple(out)


def _schema_type(bucket: BucketRecord, path: str) -> str | None:
    props = (bucket.bucket_schema or {}).get("properties") or {}
    field = props.get(path.split(".", 1)[0])
    return field.get("type") if isinstance(field, dict) else None


def resolve_source(
    ingest: IngestStore, namespace_id: str, source: dict[str, Any], extractor: dict[str, Any]
) -> tuple[dict[str, Any], BucketSource]:
    """The source as stored (bucket names resolved to ids), and its parsed form; 404 for an
    unknown bucket, 422 for a field the buckets' schemas do not have."""
    raw_ids = source.get("bucket_ids")
    if not isinstance(raw_ids, list) or not raw_ids or not all(isinstance(b, str) for b in raw_ids):
        raise ValidationFailed(
            "source.bucket_ids must list at least one bucket id or name",
            code="missing_bucket_ids",
            field="source.bucket_ids",
        )
    buckets: list[BucketRecord] = []
    for ident in dict.fromkeys(raw_ids):
        bucket = ingest.get_bucket(namespace_id, ident)
        if bucket is None:
            raise NotFound("bucket", ident, namespace_id=namespace_id)
        buckets.append(bucket)
    field = _input_field(extractor)
    passthrough = _passthrough(extractor)
    for bucket in buckets:
        kind = _schema_type(bucket, field)
        if kind not in TEXT_TYPES:
            raise ValidationFailed(
                f"input_mappings reads '{field}', which bucket '{bucket.bucket_name}' "
                + (f"holds as '{kind}'" if kind else "does not declare")
                + "; the text extractor reads a text blob or a string field",
                code="incompatible_input_mapping",
                field="feature_extractor.input_mappings",
                bucket_id=bucket.bucket_id,
            )
        missing = [
            p.source_path for p in passthrough if _schema_type(bucket, p.source_path) is None
        ]
        if missing:
            raise ValidationFailed(
                f"field_passthrough reads {missing}, which bucket '{bucket.bucket_name}' does "
                "not declare",
                code="unknown_passthrough_field",
                field="field_passthrough",
                bucket_id=bucket.bucket_id,
            )
    params = extractor.get("parameters")
    chunking = policy_from_parameters(params if isinstance(params, dict) else None)
    stored = {
        **{k: v for k, v in source.items() if k != "field_map" or v},
        "bucket_ids": [b.bucket_id for b in buckets],
    }
    parsed = BucketSource(
        bucket_ids=tuple(b.bucket_id for b in buckets),
        input_field=field,
        passthrough=passthrough,
        include_all_source_fields=extractor.get("include_all_source_fields") is True,
        chunking=chunking,
    )
    return stored, parsed


def parse_source(col: CollectionRecord) -> BucketSource:
    """A stored collection's source, already checked at creation."""
    extractor = col.feature_extractor
    params = extractor.get("parameters")
    return BucketSource(
        bucket_ids=tuple(col.source.get("bucket_ids") or ()),
        input_field=_input_field(extractor),
        passthrough=_passthrough(extractor),
        include_all_source_fields=extractor.get("include_all_source_fields") is True,
        chunking=policy_from_parameters(params if isinstance(params, dict) else None),
    )
