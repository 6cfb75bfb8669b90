"""Namespaces: create, resolve, update, delete (cascading)."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy.exc

from stagewise.domain.filters import parse_path
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import Conflict, NotFound, ValidationFailed
from stagewise.ids import CLIENT_ID, check_client_id, new_id, utc_now
from stagewise.services.context import Stores
from stagewise.services.extractors import TEXT_EXTRACTOR
from stagewise.services.keys import Principal
from stagewise.services.payload_indexes import declare_payload_indexes

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{2,63}$")
_METRICS = {"cosine", "euclidean", "dot_product", "dot"}
MAX_DIMENSIONS = 65_536  # the engine's own bound on a dense vector


def validate_name(name: str, *, kind: str, max_len: int) -> None:
    if not (3 <= len(name) <= max_len) or not NAME_PATTERN.match(name[:64]):
        raise ValidationFailed(
            f"{kind} name '{name}' is invalid: use 3-{max_len} letters, digits, '_', '-' or '.', "
            "starting with a letter or digit",
            code="invalid_name",
            field=f"{kind.lower()}_name",
        )


def _extractors(raw: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(raw or []):
        name, version = item.get("feature_extractor_name"), item.get("version")
        if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
            raise ValidationFailed(
                f"feature_extractors[{i}] needs a feature_extractor_name and a version",
                field=f"feature_extractors[{i}]",
            )
        out.append(
            {
                "feature_extractor_name": name,
                "version": version,
                "params": item.get("params") or {},
                "feature_extractor_id": f"{name}_{version}",
            }
        )
    return out


def _vector_configs(raw: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(raw or []):
        where = f"vector_configs[{i}]"
        metric = item.get("metric") or "cosine"
        if metric not in _METRICS:
            raise ValidationFailed(
                f"{where}.metric '{metric}' is not one of {sorted(_METRICS)}", field=where
            )
        name, dimension = item.get("name"), item.get("dimension")
        if not isinstance(name, str) or not CLIENT_ID.match(name):
            raise ValidationFailed(f"{where}.name must be a vector name", field=where)
        if not isinstance(dimension, int) or isinstance(dimension, bool):
            raise ValidationFailed(f"{where}.dimension must be an integer", field=where)
        if not 1 <= dimension <= MAX_DIMENSIONS:
            raise ValidationFailed(
                f"{where}.dimension must be within 1..{MAX_DIMENSIONS}", field=where
            )
        out.append({"name": name, "dimension": dimension, "metric": metric})
    return out


# The namespace's declared payload index types -> the index kind each gets on every shard.
# Numbers get a float index whatever their declared type: an integer index changes what
# numeric conditions answer (5.0 stops equalling 5, storage/index/qdrant_filter.py), and a
# float index keeps every numeric comparison exact. A uuid is matched as a keyword.
_INDEX_KINDS = {
    "keyword": "keyword",
    "uuid": "keyword",
    "integer": "float",
    "float": "float",
    "bool": "bool",
    "geo": "geo",
    "datetime": "datetime",
    "text": "text",
}


def _payload_indexes(raw: Any) -> list[dict[str, Any]]:
    """The namespace's payload_indexes, checked before anything is stored."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValidationFailed("payload_indexes must be a list", field="payload_indexes")
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(raw):
        where = f"payload_indexes[{i}]"
        field = item.get("field_name") if isinstance(item, dict) else None
        if not isinstance(field, str) or parse_path(field) is None or field.startswith("_"):
            raise ValidationFailed(
                f"{where}.field_name must be a field path such as 'metadata.brand'",
                field=where,
            )
        kind = str(item.get("type") or "").lower()
        if kind not in _INDEX_KINDS:
            raise ValidationFailed(
                f"{where}.type must be one of {sorted(_INDEX_KINDS)}, not {item.get('type')!r}",
                field=where,
            )
        if field in out and out[field]["type"] != kind:
            raise ValidationFailed(f"{where}: field '{field}' is declared twice", field=where)
        out[field] = {"field_name": field, "type": kind}
    return list(out.values())


def namespace_index_kinds(ns: NamespaceRecord) -> dict[str, str]:
    """Field -> index kind for the payload indexes a namespace declares (see _INDEX_KINDS)."""
    return {i["field_name"]: _INDEX_KINDS[i["type"]] for i in ns.payload_indexes}


def apply_namespace_indexes(stores: Stores, ns: NamespaceRecord) -> None:
    """Create the declared payload indexes on every collection of the namespace (a write:
    namespace create/update and collection create call this; reads never do)."""
    kinds = namespace_index_kinds(ns)
    for col in stores.metadata.list_collections(ns.namespace_id):
        declare_payload_indexes(stores, col, kinds)


def create_namespace(stores: Stores, *, body: dict[str, Any]) -> NamespaceRecord:
    name = body["namespace_name"]
    validate_name(name, kind="Namespace", max_len=64)
    extractors = _extractors(body.get("feature_extractors"))
    for feature in body.get("features") or []:
        fe_name, _, version = str(feature).partition("@")
        extractors.append(
            {
                "feature_extractor_name": fe_name,
                "version": version or "v1",
                "params": {},
                "feature_extractor_id": f"{fe_name}_{version or 'v1'}",
            }
        )
    vector_configs = _vector_configs(body.get("vector_configs"))
    if not extractors and not vector_configs:
        extractors = _extractors([{"feature_extractor_name": TEXT_EXTRACTOR, "version": "v1"}])
    mode = body.get("mode") or "managed"
    if vector_configs and not extractors:
        mode = "standalone"
    record = NamespaceRecord(
        namespace_id=check_client_id(body["namespace_id"], "namespace_id")
        if body.get("namespace_id")
        else new_id("ns_"),
        namespace_name=name,
        description=body.get("description"),
        mode=mode,
        feature_extractors=list({e["feature_extractor_id"]: e for e in extractors}.values()),
        payload_indexes=_payload_indexes(body.get("payload_indexes")),
        vector_configs=vector_configs,
    )
    if stores.metadata.get_namespace(name) is not None:
        raise Conflict(f"Namespace name '{name}' is already taken", code="namespace_name_taken")
    try:
        stores.metadata.create_namespace(record)
    except sqlalchemy.exc.IntegrityError as exc:
        raise Conflict(
            f"Namespace '{name}' or id '{record.namespace_id}' already exists",
            code="namespace_name_taken",
        ) from exc
    return record


def namespace_for(stores: Stores, principal: Principal, identifier: str) -> NamespaceRecord:
    """The namespace `identifier` names, if the principal may use it. A key bound to one
    namespace gets the same 403 for every other identifier, whether a namespace by that name
    exists or not: its answers never tell which other namespaces there are."""
    if principal.namespace_id is None:
        return get_namespace(stores, identifier=identifier)
    bound = get_namespace(stores, identifier=principal.namespace_id)
    if identifier not in (bound.namespace_id, bound.namespace_name):
        principal.require_namespace("")  # the one refusal, for any other identifier
    return bound


def get_namespace(stores: Stores, *, identifier: str) -> NamespaceRecord:
    ns = stores.metadata.get_namespace(identifier)
    if ns is None:
        raise NotFound("namespace", identifier)
    return ns


def update_namespace(
    stores: Stores, *, identifier: str, body: dict[str, Any], replace: bool = False
) -> NamespaceRecord:
    ns = get_namespace(stores, identifier=identifier)
    changes: dict[str, Any] = {"updated_at": utc_now()}
    if body.get("namespace_name") is not None and body["namespace_name"] != ns.namespace_name:
        new_name = body["namespace_name"]
        validate_name(new_name, kind="Namespace", max_len=64)
        if stores.metadata.get_namespace(new_name) is not None:
            raise Conflict(
                f"Namespace name '{new_name}' is already taken", code="namespace_name_taken"
            )
        changes["namespace_name"] = new_name
    if "description" in body and (body["description"] is not None or replace):
        changes["description"] = body["description"]
    if body.get("feature_extractors"):
        added = _extractors(body["feature_extractors"])
        merged = {e["feature_extractor_id"]: e for e in [*ns.feature_extractors, *added]}
        changes["feature_extractors"] = list(merged.values())
    if body.get("payload_indexes") is not None:
        changes["payload_indexes"] = _payload_indexes(body["payload_indexes"])
    updated = ns.model_copy(update=changes)
    stores.metadata.update_namespace(updated)
    apply_namespace_indexes(stores, updated)
    return updated


def delete_namespace(stores: Stores, *, identifier: str) -> NamespaceRecord:
    ns = get_namespace(stores, identifier=identifier)
    collections = stores.metadata.list_collections(ns.namespace_id)
    # Buckets first (each with its objects, batches and items): if this stops halfway, the
    # namespace is still there and a repeated delete finishes the job.
    while buckets := stores.ingest.list_buckets(ns.namespace_id, limit=100)[0]:
        for bucket in buckets:
            stores.ingest.delete_bucket(bucket.bucket_id)
    stores.metadata.delete_namespace(ns.namespace_id)
    stores.taxonomies.delete_namespace_taxonomies(ns.namespace_id)
    for col in collections:
        stores.index.drop_collection(col.collection_id)
    return ns
