"""Feature extractors this server can run locally, and the vector indexes they produce."""

from __future__ import annotations

from typing import Any

from stagewise.domain.records import VectorIndexSpec
from stagewise.errors import ValidationFailed

TEXT_EXTRACTOR = "text_extractor"
MINILM = "all_minilm_l6_v2"
MINILM_DIMENSIONS = 384


def text_extractor_index(input_field: str) -> VectorIndexSpec:
    return VectorIndexSpec(
        name=f"{TEXT_EXTRACTOR}_v1_{MINILM}",
        short_name=MINILM,
        feature_uri=f"mixpeek://{TEXT_EXTRACTOR}@v1/{MINILM}",
        dimensions=MINILM_DIMENSIONS,
        distance="cosine",
        inference_name=MINILM,
        input_field=input_field,
    )


def _text_extractor_definition() -> dict[str, Any]:
    spec = text_extractor_index("text")
    return {
        "feature_extractor_name": TEXT_EXTRACTOR,
        "version": "v1",
        "feature_extractor_id": f"{TEXT_EXTRACTOR}_v1",
        "description": (
            "Embeds a text field with the local all-MiniLM-L6-v2 model (384-d, cosine) "
            "and indexes the same text for BM25."
        ),
        "icon": "type",
        "category": "text",
        "source": "builtin",
        "inference_type": "embedding",
        "input_schema": {"text": {"type": "string", "description": "The text to embed"}},
        "output_schema": {MINILM: {"type": "vector", "dimensions": MINILM_DIMENSIONS}},
        "parameter_schema": {"type": "object", "properties": {}},
        "supported_input_types": ["text", "string"],
        "max_inputs": {"text": 1},
        "default_parameters": {},
        "required_vector_indexes": [
            {
                "name": spec.short_name,
                "description": "Dense text embedding from all-MiniLM-L6-v2",
                "type": "single",
                "feature_uri": spec.feature_uri,
                "index": {
                    "name": spec.name,
                    "description": "all-MiniLM-L6-v2 sentence embedding, L2-normalised",
                    "dimensions": spec.dimensions,
                    "type": "dense",
                    "distance": spec.distance,
                    "inference_name": spec.inference_name,
                },
            }
        ],
        "required_payload_indexes": [],
        "capabilities": ["batch", "realtime"],
        "realtime_available": True,
    }


def list_extractors() -> list[dict[str, Any]]:
    return [_text_extractor_definition()]


def get_extractor(extractor_id: str) -> dict[str, Any] | None:
    for definition in list_extractors():
        if extractor_id in (
            definition["feature_extractor_id"],
            definition["feature_extractor_name"],
        ):
            return definition
    return None


def feature_keys() -> list[str]:
    return [f"{TEXT_EXTRACTOR}@v1"]


def resolve_extractor(config: dict[str, Any]) -> list[VectorIndexSpec]:
    """Vector indexes for a collection's feature_extractor config; 422 when unknown."""
    name = config.get("feature_extractor_name")
    version = config.get("version", "v1")
    if name == TEXT_EXTRACTOR and version == "v1":
        mappings = config.get("input_mappings")
        field = "text"
        if isinstance(mappings, dict) and mappings:
            field = str(mappings.get("text") or next(iter(mappings.values())))
        elif isinstance(mappings, list) and mappings:
            first = mappings[0]
            if isinstance(first, dict):
                field = str(first.get("source_path") or first.get("path") or field)
        return [text_extractor_index(field)]
    known = [f"{d['feature_extractor_name']}@{d['version']}" for d in list_extractors()]
    raise ValidationFailed(
        f"Unknown feature extractor '{name}@{version}'. Available here: {', '.join(known)}",
        code="unknown_feature_extractor",
        available=known,
    )
