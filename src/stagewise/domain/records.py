"""Stored records: what the metadata store keeps, independent of the wire format."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from stagewise.ids import utc_now

Distance = Literal["cosine", "dot", "euclidean"]


class ApiKeyRecord(BaseModel):
    key_id: str
    key_hash: str
    name: str = ""
    namespace_id: str | None = None  # None: valid for every namespace
    read_only: bool = False
    created_at: datetime = Field(default_factory=utc_now)
    # The secret's first characters ("sk_" and 7 more, as Mixpeek shows them), to tell keys
    # apart in lists; 214 of the secret's 256 random bits stay unknown.
    key_prefix: str = ""
    expires_at: datetime | None = None  # None: never expires
    revoked_at: datetime | None = None  # set once; a revoked key is kept for the record

    def state(self, now: datetime) -> Literal["active", "revoked", "expired"]:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class NamespaceRecord(BaseModel):
    namespace_id: str
    namespace_name: str
    description: str | None = None
    mode: str = "managed"
    feature_extractors: list[dict[str, Any]] = Field(default_factory=list)
    payload_indexes: list[dict[str, Any]] = Field(default_factory=list)
    vector_configs: list[dict[str, Any]] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class VectorIndexSpec(BaseModel):
    """One named dense vector of a collection."""

    name: str  # storage name, e.g. text_extractor_v1_all_minilm_l6_v2
    short_name: str  # output segment of the feature URI
    feature_uri: str
    dimensions: int
    distance: Distance = "cosine"
    inference_name: str | None = None  # None: vectors are brought by the user
    input_field: str | None = None  # the document field the text comes from


class CollectionRecord(BaseModel):
    collection_id: str
    namespace_id: str
    collection_name: str
    description: str | None = None
    source: dict[str, Any] = Field(default_factory=dict)
    feature_extractor: dict[str, Any] = Field(default_factory=dict)
    vector_indexes: list[VectorIndexSpec] = Field(default_factory=list)
    input_schema: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    # Payload indexes declared for this collection (field -> kind): by its namespace, and by
    # the filters of the retrievers that read it. Every worker's index applies them.
    payload_index_kinds: dict[str, str] = Field(default_factory=dict)
    # Taxonomies materialised onto this collection's documents as they are written
    # (services/taxonomy_materialize.py), validated: [{taxonomy_id, execution_mode, ...}].
    taxonomy_applications: list[dict[str, Any]] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)

    def vector_index(self, name: str) -> VectorIndexSpec | None:
        for spec in self.vector_indexes:
            if name in (spec.name, spec.short_name, spec.feature_uri):
                return spec
        return None

    @property
    def text_field(self) -> str | None:
        """The document field whose text is embedded and BM25-indexed."""
        for spec in self.vector_indexes:
            if spec.input_field:
                return spec.input_field
        return None


class DocumentRecord(BaseModel):
    document_id: str
    collection_id: str
    namespace_id: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    # User fields stored at the document root (text, title, url, ...).
    fields: dict[str, Any] = Field(default_factory=dict)
    vectors: dict[str, list[float]] = Field(default_factory=dict)
    source_type: str = "direct_upsert"
    seq: int = 0
    deleted: bool = False
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class IdempotencyRecord(BaseModel):
    namespace_id: str
    key: str
    request_hash: str
    response: dict[str, Any]
    created_at: datetime = Field(default_factory=utc_now)
