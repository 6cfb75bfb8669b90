"""summarize: condense the documents (or each group of them) into one LLM-written summary.

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


class SummarizeParams(StageParams):
    prompt: str | None = Field(
        default="Summarize the following {{DOC_COUNT}} documents concisely:\n\n{{DOCUMENTS}}",
        description="Prompt template; {{DOCUMENTS}} receives the formatted documents",
    )
    provider: LLMProvider | None = Field(default=None, description="LLM provider")
    model_name: str | None = Field(default=None, description="Model; None: provider default")
    group_by: str | None = Field(default=None, description="One summary per value of this field")
    output_field: str = Field(default="summary", description="Field holding the summary")
    include_sources: bool = Field(default=True, description="Add source_document_ids")
    max_input_tokens: int | None = Field(default=None, ge=100, le=128000)
    truncation_strategy: Literal["drop_last", "truncate_each", "smart"] | None = Field(
        default="drop_last", description="How documents are cut past max_input_tokens"
    )
    temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    max_output_tokens: int = Field(default=1024, ge=10, le=16000)
    output_schema: dict[str, Any] | None = Field(
        default=None, description="JSON schema of a structured summary"
    )
    inference_name: str | None = Field(default=None, description="Deprecated 'provider:model'")
    document_template: str | None = Field(default="[{{INDEX}}] {{DOC.content}}\n")
    content_field: str | None = Field(default="content")
    include_metadata: bool = True
    api_key: str | None = Field(default=None, description="Bring-your-own provider key")


@register
class Summarize(LLMStage):
    stage_id: ClassVar[str] = "summarize"
    category: ClassVar[Category] = "reduce"
    description: ClassVar[str] = (
        "Condense the documents, or each group of them, into an LLM-written summary "
        "(needs an LLM provider)"
    )
    icon: ClassVar[str] = "file-text"
    Params = SummarizeParams
