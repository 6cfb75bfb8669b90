"""llm_filter: keep the documents an LLM judges to meet natural-language criteria.

Needs an LLM provider (see `stagewise.pipeline.llm`); this build has no provider client, so
the stage is refused at creation without one and fails at run time with one.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from stagewise.pipeline.llm import LLMProvider, LLMStage
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Category,
    StageParams,
)


class LLMFilterParams(StageParams):
    provider: LLMProvider | None = Field(default=None, description="LLM provider")
    model_name: str | None = Field(default=None, description="Model; None: provider default")
    criteria: str | None = Field(
        default="Keep only documents relevant to {{INPUT.query}}",
        description="What to keep, in natural language (templates: INPUT, DOC)",
    )
    include_reasoning: bool = Field(default=False, description="Reasoning strings in metadata")
    include_media: bool = Field(default=False, description="Send document media to the model")
    feature_uri: str | None = Field(default=None, description="Custom LLM plugin (unsupported)")
    inference_name: str | None = Field(default=None, description="Deprecated 'provider:model'")
    api_key: str | None = Field(default=None, description="Bring-your-own provider key")


@register
class LLMFilter(LLMStage):
    stage_id: ClassVar[str] = "llm_filter"
    category: ClassVar[Category] = "filter"
    description: ClassVar[str] = (
        "Keep documents an LLM judges to meet natural-language criteria (needs an LLM provider)"
    )
    Params = LLMFilterParams
