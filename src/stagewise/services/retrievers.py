"""Retrievers: validated at creation (stage ids, parameters, feature URIs, templates)."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy.exc
from pydantic import ValidationError

from stagewise.domain.filters import parse_filter, parse_path, values_at
from stagewise.domain.pipeline_records import RetrieverRecord
from stagewise.domain.records import CollectionRecord, NamespaceRecord
from stagewise.errors import Conflict, NotFound, ValidationFailed
from stagewise.ids import new_id, utc_now
from stagewise.pipeline.registry import check_references, get_stage, known_stage_ids
from stagewise.pipeline.templating import check_tree_syntax, has_template
from stagewise.services.context import Stores
from stagewise.services.payload_indexes import declare_payload_indexes
from stagewise.services.records import checked

INPUT_TYPES = {
    "string",
    "number",
    "integer",
    "float",
    "boolean",
    "object",
    "array",
    "date",
    "datetime",
    "text",
    "image",
    "audio",
    "video",
    "pdf",
    "excel",
    "document_reference",
}


def resolve_collections(
    stores: Stores, ns: NamespaceRecord, identifiers: list[str]
) -> list[CollectionRecord]:
    out = []
    for ident in identifiers:
        col = stores.metadata.get_collection(ns.namespace_id, ident)
        if col is None:
            raise NotFound("collection", ident, namespace_id=ns.namespace_id)
        out.append(col)
    return out


def _templated(raw: Any, loc: tuple[Any, ...]) -> bool:
    cur = raw
    for part in loc:
        in_dict = isinstance(cur, dict) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and part < len(cur)
        if in_dict or in_list:
            cur = cur[part]
        else:
            return False
        if has_template(cur):
            return True
    return has_template(cur)


def normalise_stage(raw: dict[str, Any], index: int) -> dict[str, Any]:
    if "config" not in raw and "type" in raw:
        raise ValidationFailed(
            f"stages[{index}] uses the legacy shape {{'type': ...}}; send "
            "{'stage_name', 'config': {'stage_id', 'parameters'}}",
            code="legacy_stage_shape",
        )
    config = raw.get("config")
    name = raw.get("stage_name")
    if not isinstance(name, str) or not name:
        raise ValidationFailed(f"stages[{index}] needs a stage_name", code="invalid_stage")
    if not isinstance(config, dict) or not isinstance(config.get("stage_id"), str):
        raise ValidationFailed(
            f"stages[{index}] ('{name}') needs config.stage_id", code="invalid_stage"
        )
    params = config.get("parameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValidationFailed(f"stage '{name}': parameters must be an object")
    return {
        "stage_name": name,
        "config": {
            "stage_id": config["stage_id"],
            "parameters": params,
            **{k: config[k] for k in ("pre_filters", "post_filters") if config.get(k)},
        },
        "on_error": raw.get("on_error") or "error",
        "output_alias": raw.get("output_alias"),
        "description": raw.get("description"),
        "batch_size": raw.get("batch_size"),
    }


def validate_stages(
    raw_stages: list[dict[str, Any]],
    collections: list[CollectionRecord],
    max_stages: int,
) -> list[dict[str, Any]]:
    if not raw_stages:
        raise ValidationFailed("A retriever needs at least one stage", code="no_stages")
    if len(raw_stages) > max_stages:
        raise ValidationFailed(
            f"A retriever has at most {max_stages} stages; this one has {len(raw_stages)}",
            code="too_many_stages",
            limit=max_stages,
        )
    stages = [normalise_stage(s, i) for i, s in enumerate(raw_stages)]
    names = [s["stage_name"] for s in stages]
    if len(set(names)) != len(names):
        raise ValidationFailed(f"Stage names must be unique: {names}", code="duplicate_stage_name")
    for spec in stages:
        name, config = spec["stage_name"], spec["config"]
        cls = get_stage(config["stage_id"])
        if cls is None:
            known = known_stage_ids()
            raise ValidationFailed(
                f"Unknown stage_id '{config['stage_id']}' in stage '{name}'. Known stage ids: "
                f"{', '.join(known)}",
                code="unknown_stage_id",
                known_stage_ids=known,
            )
        if spec["on_error"] not in ("error", "skip"):
            raise ValidationFailed(f"stage '{name}': on_error must be 'error' or 'skip'")
        check_tree_syntax(config["parameters"], f"stage '{name}' parameters")
        check_tree_syntax(config.get("pre_filters"), f"stage '{name}' pre_filters")
        try:
            params = cls.Params.model_validate(config["parameters"])
        except ValidationError as exc:
            real = [e for e in exc.errors() if not _templated(config["parameters"], e["loc"])]
            if real:
                first = real[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise ValidationFailed(
                    f"stage '{name}' ({config['stage_id']}): {loc or 'parameters'}: {first['msg']}",
                    code="invalid_stage_parameters",
                    errors=[{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in real],
                ) from exc
            continue  # only templated values failed: they are checked once rendered
        cls.validate_for(params, collections)
        spec["stage_type"] = cls.category
    for spec in stages:
        spec.setdefault("stage_type", get_stage(spec["config"]["stage_id"]).category)  # type: ignore[union-attr]
    return stages


def validate_input_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    schema = schema or {}
    if "properties" in schema and isinstance(schema["properties"], dict):
        schema = schema["properties"]
    for name, field in schema.items():
        if not isinstance(field, dict) or field.get("type") not in INPUT_TYPES:
            raise ValidationFailed(
                f"input_schema.{name}.type must be one of {sorted(INPUT_TYPES)}",
                code="invalid_input_schema",
            )
    return schema


def _filter_leaves(tree: Any) -> list[dict[str, Any]]:
    if isinstance(tree, dict):
        if "field" in tree:
            return [tree]
        return [leaf for v in tree.values() for leaf in _filter_leaves(v)]
    if isinstance(tree, list):
        return [leaf for v in tree for leaf in _filter_leaves(v)]
    return []


_INPUT_REF = re.compile(r"^\s*\{\{\s*(?:INPUT|Input|input)\.(\w+)\s*\}\}\s*$")
_SAMPLES: dict[str, Any] = {
    "integer": 1,
    "number": 1.5,
    "float": 1.5,
    "string": "a",
    "text": "a",
    "date": "2000-01-01",
    "datetime": "2000-01-01T00:00:00Z",
    "boolean": True,
}
_UNKNOWN = object()


def _typed_value(value: Any, input_schema: dict[str, Any]) -> Any:
    """A stand-in of the type a leaf's value will have once rendered: a templated or dynamic
    value takes its input's type from the retriever's input_schema; _UNKNOWN when that type
    cannot be told from the retriever alone."""
    name = None
    if isinstance(value, str) and has_template(value):
        match = _INPUT_REF.match(value)
        if match is None:
            return "a" if not value.strip().startswith("{{") else _UNKNOWN  # mixed text: a str
        name = match.group(1)
    elif isinstance(value, dict) and value.get("type") == "dynamic":
        ref = str(value.get("field") or "")
        name = ref.removeprefix("inputs.")
    elif isinstance(value, list):
        items = [_typed_value(v, input_schema) for v in value]
        return _UNKNOWN if any(v is _UNKNOWN for v in items) else items
    else:
        return value
    field = input_schema.get(name) or {}
    kind = field.get("type")
    if kind == "array":
        item = (field.get("items") or {}).get("type")
        return [_SAMPLES[item]] if item in _SAMPLES else _UNKNOWN
    return _SAMPLES.get(str(kind), _UNKNOWN)


def _stored_sample(stores: Stores, collections: list[CollectionRecord], field: str) -> Any:
    """A value the field holds in the collections (numbers and strings want different
    indexes), when the retriever does not say: 'a' when nothing is stored yet."""
    for col in collections:
        for hit in stores.index.scroll(col.collection_id, None, 200):
            for value in values_at(hit.payload, field):
                if isinstance(value, int | float | str) and not isinstance(value, bool):
                    return value
    return "a"


def filter_index_plan(
    stores: Stores,
    stages: list[dict[str, Any]],
    input_schema: dict[str, Any],
    collections: list[CollectionRecord],
) -> dict[str, str]:
    """Payload indexes for every field a stage filters or facets on, whatever the value:
    templated values are typed from the input schema (or, failing that, from what the
    collections hold). Without them Qdrant cannot estimate a filter's selectivity and a
    filtered HNSW search loses most of its hits (docs/architecture.md)."""
    wanted: dict[str, str] = {}
    for spec in stages:
        config = spec["config"]
        params = config.get("parameters") or {}
        trees = [config.get("pre_filters")]
        if config["stage_id"] == "attribute_filter":
            trees.append(
                params.get("conditions")
                or {k: params.get(k) for k in ("field", "operator", "value")}
            )
        if config["stage_id"] == "feature_search":
            for facet in params.get("facets") or []:
                key = facet.get("key") if isinstance(facet, dict) else None
                # A templated key names its field per execution: nothing to index in advance.
                if isinstance(key, str) and not has_template(key) and parse_path(key):
                    wanted.setdefault(key, "keyword")
        for leaf in _filter_leaves(trees):
            field = leaf.get("field")
            if not isinstance(field, str) or has_template(field):
                continue
            value = _typed_value(leaf.get("value"), input_schema)
            if value is _UNKNOWN:
                sample = _stored_sample(stores, collections, field)
                value = [sample] if leaf.get("operator") in ("in", "nin") else sample
            try:
                wanted.update(stores.index.wanted_indexes(parse_filter({**leaf, "value": value})))
            except ValidationFailed:
                continue  # reported when the stage itself is validated or run
    return wanted


def ensure_filter_indexes(
    stores: Stores,
    stages: list[dict[str, Any]],
    collections: list[CollectionRecord],
    input_schema: dict[str, Any],
) -> dict[str, str]:
    """Create the payload indexes of filter_index_plan. Only writes (retriever create and
    patch) call this: a read never creates an index."""
    wanted = filter_index_plan(stores, stages, input_schema, collections)
    for col in collections:
        declare_payload_indexes(stores, col, wanted)
    return wanted


def fusion_of(stages: list[dict[str, Any]]) -> str | None:
    for spec in stages:
        if spec["config"]["stage_id"] == "feature_search":
            searches = spec["config"]["parameters"].get("searches") or []
            if len(searches) > 1:
                return str(spec["config"]["parameters"].get("fusion") or "rrf")
    return None


def create_retriever(
    stores: Stores, *, ns: NamespaceRecord, body: dict[str, Any]
) -> RetrieverRecord:
    name = body.get("retriever_name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("retriever_name is required", code="invalid_name")
    collections = resolve_collections(stores, ns, list(body.get("collection_identifiers") or []))
    record = checked(
        RetrieverRecord,
        {
            "retriever_id": new_id("ret_"),
            "namespace_id": ns.namespace_id,
            "retriever_name": name,
            "description": body.get("description"),
            "collection_ids": [c.collection_id for c in collections],
            "stages": validate_stages(
                list(body.get("stages") or []), collections, stores.settings.max_stages
            ),
            "input_schema": validate_input_schema(body.get("input_schema")),
            "budget_limits": body.get("budget_limits"),
            "tags": body.get("tags") or [],
            "metadata": body.get("metadata") or {},
            "display_config": body.get("display_config"),
            "visibility": body.get("visibility"),
        },
    )
    check_references(record.stages, stores, ns.namespace_id)  # e.g. a taxonomy exists
    if stores.metadata.get_retriever(ns.namespace_id, name) is not None:
        raise Conflict(f"Retriever name '{name}' is already taken", code="retriever_name_taken")
    ensure_filter_indexes(stores, record.stages, collections, record.input_schema)
    try:
        stores.metadata.create_retriever(record)
    except sqlalchemy.exc.IntegrityError as exc:
        raise Conflict(
            f"Retriever name '{name}' is already taken", code="retriever_name_taken"
        ) from exc
    return record


def get_retriever(stores: Stores, *, ns: NamespaceRecord, identifier: str) -> RetrieverRecord:
    r = stores.metadata.get_retriever(ns.namespace_id, identifier)
    if r is None:
        raise NotFound("retriever", identifier, namespace_id=ns.namespace_id)
    return r


def patch_retriever(
    stores: Stores, *, ns: NamespaceRecord, identifier: str, body: dict[str, Any]
) -> RetrieverRecord:
    r = get_retriever(stores, ns=ns, identifier=identifier)
    if "budget_limits" in body and body["budget_limits"] != r.budget_limits:
        raise ValidationFailed(
            "budget_limits cannot be changed; clone the retriever to change them",
            code="immutable_field",
        )
    changes: dict[str, Any] = {}
    for key in ("description", "display_config", "visibility", "tags", "metadata"):
        if key in body:
            changes[key] = body[key]
    new_name = body.get("retriever_name")
    if new_name and new_name != r.retriever_name:
        if stores.metadata.get_retriever(ns.namespace_id, new_name) is not None:
            raise Conflict(
                f"Retriever name '{new_name}' is already taken", code="retriever_name_taken"
            )
        changes["retriever_name"] = new_name
    collections = resolve_collections(stores, ns, r.collection_ids)
    if body.get("collection_identifiers") is not None:
        collections = resolve_collections(stores, ns, list(body["collection_identifiers"]))
        changes["collection_ids"] = [c.collection_id for c in collections]
    if body.get("stages") is not None or "collection_ids" in changes:
        changes["stages"] = validate_stages(
            list(body.get("stages") or r.stages), collections, stores.settings.max_stages
        )
        check_references(changes["stages"], stores, ns.namespace_id)
    if body.get("input_schema") is not None:
        changes["input_schema"] = validate_input_schema(body["input_schema"])
    updated = checked(
        RetrieverRecord,
        {**r.model_dump(), **changes, "version": r.version + 1, "updated_at": utc_now()},
    )
    ensure_filter_indexes(stores, updated.stages, collections, updated.input_schema)
    stores.metadata.update_retriever(updated)
    return updated


def clone_retriever(
    stores: Stores, *, ns: NamespaceRecord, identifier: str, body: dict[str, Any]
) -> RetrieverRecord:
    source = get_retriever(stores, ns=ns, identifier=identifier)
    merged = {
        "retriever_name": body.get("retriever_name"),
        "description": body.get("description", source.description),
        "collection_identifiers": body.get("collection_identifiers")
        or body.get("collection_ids")
        or source.collection_ids,
        "stages": body.get("stages") or source.stages,
        "input_schema": body.get("input_schema") or source.input_schema,
        "budget_limits": body.get("budget_limits", source.budget_limits),
        "tags": body.get("tags", source.tags),
        "metadata": source.metadata,
        "display_config": body.get("display_config", source.display_config),
    }
    return create_retriever(stores, ns=ns, body=merged)


def delete_retriever(stores: Stores, *, ns: NamespaceRecord, identifier: str) -> RetrieverRecord:
    r = get_retriever(stores, ns=ns, identifier=identifier)
    stores.metadata.delete_retriever(r.retriever_id)
    return r
