"""Collections: create (with their vector indexes), resolve, update, delete."""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc

from stagewise.domain.records import CollectionRecord, NamespaceRecord, VectorIndexSpec
from stagewise.errors import Conflict, NotFound, ValidationFailed
from stagewise.ids import new_id, utc_now
from stagewise.services.bucket_source import CHUNK_FIELD, resolve_source
from stagewise.services.context import Stores
from stagewise.services.extractors import resolve_extractor, text_extractor_index
from stagewise.services.namespaces import namespace_index_kinds, validate_name
from stagewise.services.records import checked
from stagewise.services.taxonomy_materialize import validate_applications


def all_collections(stores: Stores) -> list[CollectionRecord]:
    """Every collection of every namespace (start-up recovery, index upkeep, health)."""
    meta = stores.metadata
    return [c for ns in meta.list_namespaces() for c in meta.list_collections(ns.namespace_id)]


DIRECT_UPSERT_COLLECTION = "_direct_upsert"
SUPPORTED_SOURCES = ("direct_upsert", "none", "bucket")
_BYO_DISTANCE = {"cosine": "cosine", "euclidean": "euclidean", "dot_product": "dot", "dot": "dot"}


def byo_indexes(ns: NamespaceRecord) -> list[VectorIndexSpec]:
    """Vectors a standalone namespace declares; users bring them, nothing is inferred."""
    return [
        VectorIndexSpec(
            name=cfg["name"],
            short_name=cfg["name"],
            feature_uri=cfg["name"],
            dimensions=int(cfg["dimension"]),
            distance=_BYO_DISTANCE[cfg.get("metric") or "cosine"],
        )
        for cfg in ns.vector_configs
    ]


def _feature_extractor_config(body: dict[str, Any]) -> dict[str, Any]:
    config = body.get("feature_extractor")
    features = body.get("features")
    if config and features:
        raise ValidationFailed("Send either feature_extractor or features, not both")
    if not config and features:
        name, _, version = str(features[0]).partition("@")
        config = {"feature_extractor_name": name, "version": version or "v1"}
    if not config:
        return {}
    config = dict(config)
    # The SDK's constructor sends input_mappings: null when it loses the value; null = absent.
    for key in ("input_mappings", "params", "parameters", "field_passthrough"):
        if config.get(key) is None:
            config.pop(key, None)
    return config


def create_collection(
    stores: Stores, *, ns: NamespaceRecord, body: dict[str, Any]
) -> CollectionRecord:
    name = body["collection_name"]
    validate_name(name, kind="Collection", max_len=100)
    source = dict(body.get("source") or {"type": "none"})
    source_type = source.get("type")
    if source_type not in SUPPORTED_SOURCES:
        raise ValidationFailed(
            f"source.type '{source_type}' is not supported yet; "
            f"use one of {list(SUPPORTED_SOURCES)}",
            code="unsupported_source_type",
            supported=list(SUPPORTED_SOURCES),
        )
    extractor = _feature_extractor_config(body)
    indexes = resolve_extractor(extractor) if extractor else []
    input_schema = body.get("input_schema")
    if source_type == "bucket":
        if not extractor:
            raise ValidationFailed(
                "A bucket-sourced collection needs a feature_extractor to turn objects into "
                "documents",
                code="missing_feature_extractor",
                field="feature_extractor",
            )
        source, _ = resolve_source(stores.ingest, ns.namespace_id, source, extractor)
        # Documents hold their chunk in `text`, whatever bucket field it was read from.
        indexes = [text_extractor_index(CHUNK_FIELD)]
        if input_schema is None:
            first = stores.ingest.get_bucket_by_id(source["bucket_ids"][0])
            input_schema = first.bucket_schema if first is not None else None
    if extractor:
        extractor["feature_extractor_id"] = (
            f"{extractor['feature_extractor_name']}_{extractor.get('version', 'v1')}"
        )
    indexes += [byo for byo in byo_indexes(ns) if all(byo.name != i.name for i in indexes)]
    return _insert(
        stores,
        ns,
        CollectionRecord(
            collection_id=new_id("col_", 10),
            namespace_id=ns.namespace_id,
            collection_name=name,
            description=body.get("description"),
            source=source,
            feature_extractor=extractor,
            vector_indexes=indexes,
            input_schema=input_schema,
            metadata=body.get("metadata") or {},
            enabled=body.get("enabled", True) is not False,
            taxonomy_applications=validate_applications(
                stores, ns, body.get("taxonomy_applications")
            ),
        ),
    )


def _insert(stores: Stores, ns: NamespaceRecord, record: CollectionRecord) -> CollectionRecord:
    if stores.metadata.get_collection(record.namespace_id, record.collection_name) is not None:
        raise Conflict(
            f"Collection name '{record.collection_name}' is already taken in this namespace",
            code="collection_name_taken",
        )
    # Index first: a failed index creation must not leave a collection without one. The
    # namespace's payload indexes exist before the first point, so HNSW links them.
    record.payload_index_kinds = namespace_index_kinds(ns)  # declared for every worker
    stores.index.ensure_collection(record)
    for field, kind in record.payload_index_kinds.items():
        stores.index.ensure_payload_index(record.collection_id, field, kind)
    try:
        stores.metadata.create_collection(record)
    except sqlalchemy.exc.IntegrityError as exc:
        stores.index.drop_collection(record.collection_id)
        raise Conflict(
            f"Collection name '{record.collection_name}' is already taken in this namespace",
            code="collection_name_taken",
        ) from exc
    return record


def direct_upsert_collection(stores: Stores, *, ns: NamespaceRecord) -> CollectionRecord:
    existing = stores.metadata.get_collection(ns.namespace_id, DIRECT_UPSERT_COLLECTION)
    if existing is not None:
        return existing
    return _insert(
        stores,
        ns,
        CollectionRecord(
            collection_id=new_id("col_", 10),
            namespace_id=ns.namespace_id,
            collection_name=DIRECT_UPSERT_COLLECTION,
            description="Documents upserted without a collection_id",
            source={"type": "direct_upsert"},
            vector_indexes=byo_indexes(ns),
        ),
    )


def get_collection(stores: Stores, *, ns: NamespaceRecord, identifier: str) -> CollectionRecord:
    col = stores.metadata.get_collection(ns.namespace_id, identifier)
    if col is None:
        raise NotFound("collection", identifier, namespace_id=ns.namespace_id)
    return col


def list_collections(
    stores: Stores, *, ns: NamespaceRecord, include_system: bool = False
) -> list[CollectionRecord]:
    cols = stores.metadata.list_collections(ns.namespace_id)
    if include_system:
        return cols
    return [c for c in cols if not c.collection_name.startswith("_")]


def update_collection(
    stores: Stores, *, ns: NamespaceRecord, identifier: str, body: dict[str, Any]
) -> CollectionRecord:
    col = get_collection(stores, ns=ns, identifier=identifier)
    changes: dict[str, Any] = {"updated_at": utc_now()}
    new_name = body.get("collection_name")
    if new_name is not None and new_name != col.collection_name:
        validate_name(new_name, kind="Collection", max_len=100)
        if stores.metadata.get_collection(ns.namespace_id, new_name) is not None:
            raise Conflict(
                f"Collection name '{new_name}' is already taken", code="collection_name_taken"
            )
        changes["collection_name"] = new_name
    if "description" in body:
        changes["description"] = body["description"]
    if body.get("enabled") is not None:
        if not isinstance(body["enabled"], bool):
            raise ValidationFailed("enabled must be a boolean", field="enabled")
        changes["enabled"] = body["enabled"]
    if body.get("metadata") is not None:
        if not isinstance(body["metadata"], dict):
            raise ValidationFailed("metadata must be an object", field="metadata")
        changes["metadata"] = body["metadata"]
    if "taxonomy_applications" in body:  # replaced as a whole; null clears it
        changes["taxonomy_applications"] = validate_applications(
            stores, ns, body["taxonomy_applications"]
        )
    updated = checked(CollectionRecord, {**col.model_dump(), **changes})
    stores.metadata.update_collection(updated)
    return updated


def delete_collection(stores: Stores, *, ns: NamespaceRecord, identifier: str) -> CollectionRecord:
    col = get_collection(stores, ns=ns, identifier=identifier)
    stores.metadata.delete_collection(col.collection_id)
    stores.index.drop_collection(col.collection_id)
    return col
