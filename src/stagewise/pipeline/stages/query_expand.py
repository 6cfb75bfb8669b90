"""query_expand: search with LLM-written variations of the query and fuse the results.

Needs an LLM provider (see `stagewise.pipeline.llm`) to write the variations; this build has
no provider client, so the stage is refused at creation without one and fails at run time
with one.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from stagewise.pipeline.llm import LLMStage
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Category,
    StageParams,
)


class QueryExpandParams(StageParams):
    feature_search_config: dict[str, Any] = Field(
        description="A feature_search configuration; its query text is replaced by each variation"
    )
    num_expansions: int = Field(default=3, ge=1, le=10, description="Variations to generate")
    expansion_model: str = Field(default="gpt-4o-mini", description="LLM writing the variations")
    expansion_prompt: str | None = Field(default=None, description="Custom expansion prompt")
    include_original: bool = Field(default=True, description="Also search the original query")
    rrf_k: int = Field(default=60, ge=1, le=1000, description="RRF constant")
    fusion_strategy: Literal["rrf", "linear"] = "rrf"
    deduplicate: bool = Field(default=True, description="One result per document")
    expansion_timeout_ms: int | None = Field(default=None, ge=1, le=5000)


@register
class QueryExpand(LLMStage):
    stage_id: ClassVar[str] = "query_expand"
    category: ClassVar[Category] = "filter"
    description: ClassVar[str] = (
        "Search with LLM-written variations of the query and fuse the result lists "
        "(needs an LLM provider)"
    )
    icon: ClassVar[str] = "wand"
    Params = QueryExpandParams
