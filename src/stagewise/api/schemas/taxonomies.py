"""Taxonomy wire shapes: the public body, documented responses and request bodies.

The response models only document (routes return JsonResponse objects, see
api/schemas/responses.py); the body models refuse a key of the wrong type with a 422 before
the service reads it, and leave required keys to the service's own specific 422s.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stagewise.api.schemas.responses import ListPagination
from stagewise.domain.taxonomy_records import TaxonomyRecord
from stagewise.ids import iso

JsonObject = dict[str, Any]

FLAT_EXAMPLE: JsonObject = {
    "taxonomy_name": "topics",
    "config": {
        "taxonomy_type": "flat",
        "retriever_id": "ret_abc123",
        "input_mappings": [{"input_key": "query", "source_type": "payload", "path": "text"}],
        "source_collection": {"collection_id": "col_topics", "enrichment_fields": None},
        "top_k": 1,
    },
}


def taxonomy_public(tax: TaxonomyRecord) -> JsonObject:
    config = tax.config
    return {
        "taxonomy_id": tax.taxonomy_id,
        "version": tax.version,
        "taxonomy_name": tax.taxonomy_name,
        "description": tax.description,
        "retriever_id": config.get("retriever_id"),
        "input_mappings": config.get("input_mappings"),
        "config": config,
        "nodes": None,
        "ready": True,
        "created_at": iso(tax.created_at),
        "updated_at": iso(tax.updated_at),
        "metadata": tax.metadata,
    }


# ---- responses


class TaxonomyResponse(BaseModel):
    taxonomy_id: str
    version: int
    taxonomy_name: str
    description: str | None
    retriever_id: str | None
    input_mappings: list[JsonObject] | None
    config: JsonObject = Field(description="Always carries taxonomy_type (flat | hierarchical)")
    nodes: list[JsonObject] | None
    ready: bool
    created_at: str
    updated_at: str
    metadata: JsonObject


class TaxonomyList(BaseModel):
    results: list[TaxonomyResponse]
    pagination: ListPagination
    total_count: int


class TaxonomyDeleted(BaseModel):
    success: bool
    message: str
    taxonomy_id: str


class JoinStats(BaseModel):
    processed_docs: int
    batches: int
    errors: int
    enriched: int


class TaxonomyMatch(BaseModel):
    document_id: str
    taxonomy_id: str
    taxonomy_name: str
    node_id: str
    label: str
    score: float
    path: list[str]
    hierarchy_level: int
    enriched_fields: list[str]


class JoinResponse(BaseModel):
    stats: JoinStats
    results: list[JsonObject] = Field(description="The sample documents, enriched")
    matches: list[TaxonomyMatch]


# ---- request bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class TaxonomyBody(_Body):
    """POST /v1/taxonomies (taxonomy_name and config are required)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"required": ["taxonomy_name", "config"], "examples": [FLAT_EXAMPLE]},
    )

    taxonomy_name: str | None = None
    description: str | None = None
    config: JsonObject | None = None
    metadata: JsonObject | None = None


class TaxonomyPatchBody(_Body):
    """PATCH /v1/taxonomies/{id}: name, description and metadata; config is immutable."""

    taxonomy_name: str | None = None
    description: str | None = None
    metadata: JsonObject | None = None


class TaxonomyExecuteBody(_Body):
    """POST /v1/taxonomies/{id}/execute: 1 to 5 sample documents; nothing is stored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "required": ["source_documents"],
            "examples": [{"source_documents": [{"text": "A kitten napped"}]}],
        },
    )

    source_documents: list[JsonObject] | None = None
    join_mode: str | None = None
