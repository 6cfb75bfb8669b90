"""llm_enrich: write an LLM's answer about each document into a field.

Needs an LLM provider (see `stagewise.pipeline.llm`); this build has no provider client, so
the stage is refused at creation without one and fails at run time with one.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from stagewise.pipeline.llm import LLMProvider, LLMStage
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Category,
    StageParams,
)


class LLMEnrichParams(StageParams):
    provider: LLMProvider | None = Field(default=None, description="LLM provider")
    model_name: str | None = Field(default=None, description="Model; None: provider default")
    prompt: str | None = Field(
        default="Summarize the following content in 2-3 sentences: {{DOC.content}}",
        description="Prompt template (templates: INPUT, DOC)",
    )
    output_field: str = Field(default="summary", description="Dot path receiving the answer")
    batch_size: int = Field(default=5, ge=1, le=25, description="Documents per LLM request")
    schema_: dict[str, Any] | None = Field(
        default=None, alias="schema", description="JSON schema of a structured answer"
    )
    temperature: float = Field(default=0.2, ge=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=100, le=16000)
    api_key: str | None = Field(default=None, description="Bring-your-own provider key")
    when: dict[str, Any] | None = Field(
        default=None, description="Only documents matching this filter are enriched"
    )
    feature_uri: str | None = Field(default=None, description="Custom LLM plugin (unsupported)")
    inference_name: str | None = Field(default=None, description="Deprecated 'provider:model'")
    thinking_level: Literal["minimal", "low", "medium", "high"] | None = None
    multimodal_inputs: dict[str, str] | None = None
    use_vcache: bool | None = False


@register
class LLMEnrich(LLMStage):
    stage_id: ClassVar[str] = "llm_enrich"
    category: ClassVar[Category] = "apply"
    description: ClassVar[str] = (
        "Write an LLM's answer about each document into a field (needs an LLM provider)"
    )
    Params = LLMEnrichParams
