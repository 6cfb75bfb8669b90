"""stage_id -> Stage class. Built-ins register themselves the way third-party stages would."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from stagewise.pipeline.stage import Stage

_REGISTRY: dict[str, type[Stage]] = {}
_ALIASES = {"feature_filter": "feature_search", "taxonomy_join": "taxonomy_enrich"}


def register(cls: type[Stage]) -> type[Stage]:
    if cls.stage_id in _REGISTRY and _REGISTRY[cls.stage_id] is not cls:
        raise ValueError(f"stage id '{cls.stage_id}' is registered twice")
    _REGISTRY[cls.stage_id] = cls
    return cls


def _load_builtins() -> None:
    import stagewise.pipeline.stages  # noqa: F401  (registers on import)


def get_stage(stage_id: str) -> type[Stage] | None:
    _load_builtins()
    return _REGISTRY.get(_ALIASES.get(stage_id, stage_id))


def known_stage_ids() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def check_references(stages: list[dict[str, Any]], stores: Any, namespace_id: str) -> None:
    """What validated stages name beyond the retriever's collections (a taxonomy) must exist
    now: each stage's validate_references, at retriever creation and patch."""
    for spec in stages:
        cls = get_stage(spec["config"]["stage_id"])
        if cls is None:
            continue  # refused when the stages were validated
        try:
            params = cls.Params.model_validate(spec["config"]["parameters"])
        except ValidationError:
            continue  # templated values, checked once rendered
        cls.validate_references(params, stores, namespace_id)


def stage_definitions() -> list[dict[str, Any]]:
    """GET /v1/retrievers/stages, generated from each stage's Params model."""
    _load_builtins()
    return [
        {
            "stage_id": cls.stage_id,
            "description": cls.description,
            "category": cls.category,
            "icon": cls.icon,
            "parameter_schema": cls.Params.model_json_schema(),
            "credits_per_document": cls.credits_per_document,
        }
        for cls in (_REGISTRY[k] for k in sorted(_REGISTRY))
    ]
