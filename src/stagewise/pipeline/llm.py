"""The LLM provider configuration shared by the LLM stages (llm_filter, llm_enrich, ...).

A provider is configured through the environment:

* ``STAGEWISE_LLM_PROVIDER``: openai, google, anthropic, typesafe, ...
* ``STAGEWISE_LLM_API_KEY``: the provider's key
* ``STAGEWISE_LLM_BASE_URL``: optional, an OpenAI-compatible endpoint

This build ships no provider client: with no provider configured the LLM stages are refused
when a retriever is created (422 ``llm_provider_missing``), and with one configured they fail
at run time instead of producing made-up output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar, Literal

from stagewise.domain.records import CollectionRecord
from stagewise.errors import StageFailed, ValidationFailed
from stagewise.pipeline.stage import Candidate, Stage, StageContext, StageParams, StageResult

PROVIDER_ENV = "STAGEWISE_LLM_PROVIDER"
API_KEY_ENV = "STAGEWISE_LLM_API_KEY"
BASE_URL_ENV = "STAGEWISE_LLM_BASE_URL"

# The providers the Mixpeek API names in LLM stage parameters.
LLMProvider = Literal["openai", "google", "anthropic", "typesafe"]

NOT_IMPLEMENTED = "LLM provider calls are not implemented in this build"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class LLMSettings:
    provider: str
    api_key: str | None
    base_url: str | None


def configured_provider() -> str | None:
    """The provider named by STAGEWISE_LLM_PROVIDER (lower-cased), or None."""
    provider = _env(PROVIDER_ENV)
    return provider.lower() if provider else None


def llm_settings() -> LLMSettings | None:
    provider = configured_provider()
    if provider is None:
        return None
    return LLMSettings(provider=provider, api_key=_env(API_KEY_ENV), base_url=_env(BASE_URL_ENV))


def require_provider(stage_id: str) -> str:
    """The configured provider; raises the 422 every LLM stage reports without one."""
    provider = configured_provider()
    if provider is None:
        raise ValidationFailed(
            f"stage {stage_id} needs an LLM provider; configure STAGEWISE_LLM_PROVIDER and "
            "STAGEWISE_LLM_API_KEY",
            code="llm_provider_missing",
            stage_id=stage_id,
        )
    return provider


def fail_not_implemented(stage_id: str) -> StageFailed:
    """What an LLM stage raises at run time when a provider is configured: no fake output."""
    provider = require_provider(stage_id)
    return StageFailed(NOT_IMPLEMENTED, stage_id=stage_id, provider=provider)


class LLMStage(Stage):
    """Base of the LLM stages: refused at creation without a provider, and never faking output
    at run time."""

    icon: ClassVar[str] = "sparkles"
    credits_per_document: ClassVar[float] = 0.0

    @classmethod
    def validate_for(cls, params: StageParams, collections: list[CollectionRecord]) -> None:
        require_provider(cls.stage_id)

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        raise fail_not_implemented(self.stage_id)
