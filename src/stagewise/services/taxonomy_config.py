"""A taxonomy's config, validated against the namespace and normalised for storage.

Every reference is resolved to an id now (retrievers, node collections), and each node's
retriever must read its node collection: matching runs that retriever restricted to the node
collection (pipeline/taxonomy_match.py), so a retriever that never searches it could never
match. The stored config always carries `taxonomy_type`, which the SDK's oneOf needs.
"""

from __future__ import annotations

from typing import Any

from stagewise.domain.pipeline_records import RetrieverRecord
from stagewise.domain.records import CollectionRecord, NamespaceRecord
from stagewise.errors import NotFound, ValidationFailed
from stagewise.services.context import Stores

MAX_NODES = 50  # hierarchical node collections per taxonomy
MAX_MAPPINGS = 20
SOURCE_TYPES = ("payload", "literal")
MERGE_MODES = ("replace", "append")
# Hierarchy builders that need a clustering or LLM job, or per-document paths: not built.
_UNSUPPORTED = ("inference_strategy", "inference_collections", "cluster_ids", "path_field")


def _fail(message: str, field: str, code: str = "invalid_taxonomy_config") -> ValidationFailed:
    return ValidationFailed(message, code=code, field=field)


def _path(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or any(not p for p in value.split(".")):
        raise _fail(f"{field} must be a dot path such as 'text' or 'metadata.title'", field)
    return value


def input_mappings(raw: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise _fail(f"{field} needs at least one input mapping", field)
    if len(raw) > MAX_MAPPINGS:
        raise _fail(f"{field} holds at most {MAX_MAPPINGS} mappings", field)
    out: list[dict[str, Any]] = []
    for i, m in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(m, dict) or not isinstance(m.get("input_key"), str) or not m["input_key"]:
            raise _fail(f"{where} needs an input_key", where)
        kind = m.get("source_type") or ("payload" if m.get("path") is not None else "literal")
        if kind not in SOURCE_TYPES:
            raise _fail(
                f"{where}.source_type '{kind}' is not supported; use one of {list(SOURCE_TYPES)}",
                f"{where}.source_type",
                code="unsupported_input_mapping",
            )
        path = _path(m.get("path"), f"{where}.path") if kind == "payload" else None
        out.append(
            {"input_key": m["input_key"], "source_type": kind, "path": path, "override": None}
        )
        if kind == "literal":
            out[-1]["override"] = m.get("override")
    keys = [m["input_key"] for m in out]
    if len(set(keys)) != len(keys):
        raise _fail(f"{field}: each input_key may be mapped once", field)
    return out


def enrichment_fields(raw: Any, field: str) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _fail(f"{field} must be a list", field)
    out = []
    for i, f in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(f, dict):
            raise _fail(f"{where} must be an object", where)
        target = f.get("target_field")
        mode = f.get("merge_mode") or "replace"
        if mode not in MERGE_MODES:
            raise _fail(f"{where}.merge_mode must be one of {list(MERGE_MODES)}", where)
        out.append(
            {
                "field_path": _path(f.get("field_path"), f"{where}.field_path"),
                "target_field": None if target is None else _path(target, f"{where}.target_field"),
                "merge_mode": mode,
            }
        )
    return out


def _collection(stores: Stores, ns: NamespaceRecord, ident: Any, field: str) -> CollectionRecord:
    if not isinstance(ident, str) or not ident:
        raise _fail(f"{field} is required", field)
    col = stores.metadata.get_collection(ns.namespace_id, ident)
    if col is None:
        raise NotFound("collection", ident, namespace_id=ns.namespace_id, field=field)
    return col


def _retriever(
    stores: Stores,
    ns: NamespaceRecord,
    ident: Any,
    col: CollectionRecord,
    mappings: list[dict[str, Any]],
    field: str,
) -> RetrieverRecord:
    if not isinstance(ident, str) or not ident:
        raise _fail(f"{field} is required", field)
    r = stores.metadata.get_retriever(ns.namespace_id, ident)
    if r is None:
        raise NotFound("retriever", ident, namespace_id=ns.namespace_id, field=field)
    if col.collection_id not in r.collection_ids:
        raise _fail(
            f"retriever '{r.retriever_name}' does not read collection '{col.collection_name}'; "
            "a taxonomy's retriever must search its node collection (add the collection to "
            "its collection_identifiers)",
            field,
            code="retriever_collection_mismatch",
        )
    mapped = {m["input_key"] for m in mappings}
    missing = sorted(
        name
        for name, spec in (r.input_schema or {}).items()
        if isinstance(spec, dict)
        and spec.get("required")
        and spec.get("default") is None
        and name not in mapped
    )
    if missing:
        raise _fail(
            f"retriever '{r.retriever_name}' requires inputs {missing} that the input_mappings "
            "do not provide",
            field,
            code="unmapped_retriever_input",
        )
    return r


def _top_k(raw: Any) -> int:
    if raw is None:
        return 1
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= 50:
        raise _fail("config.top_k must be an integer in 1..50", "config.top_k")
    return raw


def flat_config(stores: Stores, ns: NamespaceRecord, config: dict[str, Any]) -> dict[str, Any]:
    source = config.get("source_collection")
    if not isinstance(source, dict):
        raise _fail("config.source_collection is required", "config.source_collection")
    col = _collection(
        stores, ns, source.get("collection_id"), "config.source_collection.collection_id"
    )
    mappings = input_mappings(config.get("input_mappings"), "config.input_mappings")
    r = _retriever(stores, ns, config.get("retriever_id"), col, mappings, "config.retriever_id")
    return {
        "taxonomy_type": "flat",
        "retriever_id": r.retriever_id,
        "input_mappings": mappings,
        "source_collection": {
            "collection_id": col.collection_id,
            "enrichment_fields": enrichment_fields(
                source.get("enrichment_fields"), "config.source_collection.enrichment_fields"
            ),
        },
        "top_k": _top_k(config.get("top_k")),
    }


def hierarchical_config(
    stores: Stores, ns: NamespaceRecord, config: dict[str, Any]
) -> dict[str, Any]:
    for key in _UNSUPPORTED:
        if config.get(key):
            raise _fail(
                f"config.{key} is not supported: this server builds hierarchies from explicit "
                "hierarchical_nodes only (no schema, cluster or LLM inference, no path_field)",
                f"config.{key}",
                code="unsupported_hierarchy",
            )
    raw_nodes = config.get("hierarchical_nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes or len(raw_nodes) > MAX_NODES:
        raise _fail(
            f"config.hierarchical_nodes needs 1 to {MAX_NODES} nodes",
            "config.hierarchical_nodes",
        )
    default_mappings = config.get("input_mappings")
    defaults = None if default_mappings is None else input_mappings(default_mappings, "config")
    nodes: list[dict[str, Any]] = []
    for i, raw in enumerate(raw_nodes):
        where = f"config.hierarchical_nodes[{i}]"
        if not isinstance(raw, dict):
            raise _fail(f"{where} must be an object", where)
        col = _collection(stores, ns, raw.get("collection_id"), f"{where}.collection_id")
        parent = raw.get("parent_collection_id")
        if parent is not None:
            parent = _collection(stores, ns, parent, f"{where}.parent_collection_id").collection_id
        own = raw.get("input_mappings")
        mappings = input_mappings(own, f"{where}.input_mappings") if own is not None else None
        if mappings is None and defaults is None:
            raise _fail(f"{where} needs input_mappings (its own or the config's)", where)
        r = _retriever(
            stores,
            ns,
            raw.get("retriever_id") or config.get("retriever_id"),
            col,
            mappings or defaults or [],
            f"{where}.retriever_id",
        )
        label = raw.get("label")
        if label is not None and not isinstance(label, str):
            raise _fail(f"{where}.label must be a string", f"{where}.label")
        nodes.append(
            {
                "collection_id": col.collection_id,
                "parent_collection_id": parent,
                "label": label,
                "retriever_id": r.retriever_id,
                "enrichment_fields": enrichment_fields(
                    raw.get("enrichment_fields"), f"{where}.enrichment_fields"
                ),
                "input_mappings": mappings,
            }
        )
    _check_tree(nodes)
    default_retriever = config.get("retriever_id")
    if default_retriever is not None:
        found = stores.metadata.get_retriever(ns.namespace_id, str(default_retriever))
        if found is None:
            raise NotFound("retriever", str(default_retriever), namespace_id=ns.namespace_id)
        default_retriever = found.retriever_id
    return {
        "taxonomy_type": "hierarchical",
        "retriever_id": default_retriever,
        "input_mappings": defaults,
        "hierarchical_nodes": nodes,
    }


def _check_tree(nodes: list[dict[str, Any]]) -> None:
    """One node per collection, every parent a node, and every node under a root."""
    ids = [n["collection_id"] for n in nodes]
    if len(set(ids)) != len(ids):
        raise _fail("each collection may be one hierarchical node only", "config")
    for n in nodes:
        if n["parent_collection_id"] is not None and n["parent_collection_id"] not in ids:
            raise _fail(
                f"node '{n['collection_id']}' names parent '{n['parent_collection_id']}', "
                "which is not a node of this taxonomy",
                "config.hierarchical_nodes",
            )
    reached: set[str] = set()
    frontier = [n["collection_id"] for n in nodes if n["parent_collection_id"] is None]
    while frontier:
        reached.update(frontier)
        frontier = [n["collection_id"] for n in nodes if n["parent_collection_id"] in frontier]
    if reached != set(ids):
        raise _fail(
            f"nodes {sorted(set(ids) - reached)} form a cycle: they never reach a root "
            "(a node whose parent_collection_id is null)",
            "config.hierarchical_nodes",
        )


def validate_config(stores: Stores, ns: NamespaceRecord, config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise _fail("config is required", "config")
    kind = config.get("taxonomy_type") or (
        "hierarchical" if "hierarchical_nodes" in config else "flat"
    )
    if kind == "flat":
        return flat_config(stores, ns, config)
    if kind == "hierarchical":
        return hierarchical_config(stores, ns, config)
    raise _fail("config.taxonomy_type must be 'flat' or 'hierarchical'", "config.taxonomy_type")
