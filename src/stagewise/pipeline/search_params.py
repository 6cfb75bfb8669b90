"""The parameters of feature_search (pydantic models; GET /v1/retrievers/stages is generated
from them). Parameters this build does not implement are refused when set, never ignored."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stagewise.pipeline.embed_cache import CachedStageParams
from stagewise.pipeline.search_extras import FacetConfig, GroupByConfig


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DocumentRef(_Model):
    collection_id: str
    document_id: str


class SearchQuery(_Model):
    input_mode: Literal["text", "vector", "document", "content", "multi_content"] = "text"
    value: Any = None
    text: str | None = None
    embedding_task: str | None = None
    document_ref: DocumentRef | None = None
    values: list[str] | None = None


class FeatureSearchConfig(_Model):
    feature_uri: str
    query: SearchQuery | str | None = None
    top_k: int = Field(default=100, ge=1, le=5000)
    min_score: float | None = Field(default=None, ge=0, le=1)
    weight: float = Field(default=1.0, ge=0, le=1)
    lexical: bool = False
    optional: bool = False
    on_empty: Literal["error", "skip", "random"] = "error"
    collection_identifiers: list[str] | None = None
    query_preprocessing: dict[str, Any] | None = Field(
        default=None, description="Not implemented (media decomposition): refused when set"
    )


def _refuse_unimplemented(values: dict[str, Any]) -> None:
    for name in ("query_preprocessing", "learning_config"):
        if values.get(name):
            raise ValueError(f"{name} is not implemented in this build; remove it")


class FeatureSearchParams(CachedStageParams):  # its cache: query embeddings
    searches: list[FeatureSearchConfig] = Field(default_factory=list, max_length=10)
    final_top_k: int = Field(default=25, ge=1, le=5000)
    fusion: Literal["rrf", "dbsf", "weighted", "max"] = "rrf"
    collection_identifiers: list[str] | None = None
    facets: list[FacetConfig] | None = None
    group_by: GroupByConfig | None = None
    # Media queries (content modes) are refused, so auto-detection has nothing to decide.
    auto_preprocess: bool = True
    hard_timeout_ms: int | None = Field(
        default=None,
        ge=1,
        description="Once passed, the collections not yet searched are skipped and listed "
        "in the execution's degraded entries (checked between engine calls)",
    )
    # No run is ever retried after a timeout here: every run degrades at its first ceiling,
    # which is what interactive=true asks for and what degrade_retry=false means.
    interactive: bool = False
    degrade_retry: bool = False
    learning_config: dict[str, Any] | None = Field(
        default=None, description="Learned fusion is not implemented: refused when set"
    )
    query_preprocessing: dict[str, Any] | None = Field(
        default=None, description="Not implemented (media decomposition): refused when set"
    )

    @model_validator(mode="after")
    def _implemented(self) -> FeatureSearchParams:
        if self.degrade_retry:
            raise ValueError("degrade_retry is not implemented: runs are never retried here")
        _refuse_unimplemented({"learning_config": self.learning_config})
        _refuse_unimplemented({"query_preprocessing": self.query_preprocessing})
        for search in self.searches:
            _refuse_unimplemented({"query_preprocessing": search.query_preprocessing})
        return self
