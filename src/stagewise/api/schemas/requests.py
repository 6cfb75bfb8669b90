"""Request bodies. Unknown keys are tolerated (the SDK sends many defaults)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class CreateNamespaceBody(_Body):
    namespace_name: str = Field(min_length=3, max_length=64)
    namespace_id: str | None = None
    description: str | None = None
    mode: str | None = "managed"
    features: list[str] | None = None
    feature_extractors: list[dict[str, Any]] | None = None
    vector_configs: list[dict[str, Any]] | None = None
    payload_indexes: list[dict[str, Any]] | None = None


class PatchNamespaceBody(_Body):
    namespace_name: str | None = Field(default=None, min_length=3, max_length=64)
    description: str | None = None
    feature_extractors: list[dict[str, Any]] | None = None
    payload_indexes: list[dict[str, Any]] | None = None


class ListBody(_Body):
    limit: int | None = Field(default=None, ge=1, le=1000)
    page_size: int | None = Field(default=None, ge=1, le=1000)
    offset: int | None = Field(default=None, ge=0, le=10000)
    page: int | None = Field(default=None, ge=1, le=10001)
    cursor: str | None = None
    include_total: bool | None = None
    search: str | None = None
    include_system: bool | None = None


class SourceBody(_Body):
    type: str


class FeatureExtractorBody(_Body):
    feature_extractor_name: str
    version: str = "v1"
    input_mappings: dict[str, Any] | list[Any] | None = None


class CreateCollectionBody(_Body):
    collection_name: str = Field(min_length=3, max_length=100)
    description: str | None = None
    source: SourceBody = Field(default_factory=lambda: SourceBody(type="none"))
    feature_extractor: FeatureExtractorBody | None = None
    features: list[str] | None = None
    input_schema: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    enabled: bool = True


class ListDocumentsBody(ListBody):
    filters: dict[str, Any] | None = None
    sort: dict[str, Any] | str | None = None
    return_vectors: bool | None = None


class ByoUpsertOptions(_Body):
    write_token: bool = False
    idempotency_key: str | None = Field(default=None, max_length=255)


class ByoUpsertBody(_Body):
    collection_id: str | None = None
    documents: list[dict[str, Any]] = Field(min_length=1, max_length=1000)
    options: ByoUpsertOptions | None = None
