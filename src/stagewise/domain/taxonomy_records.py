"""Stored taxonomies (docs/ingestion.md, "Taxonomies")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from stagewise.ids import utc_now


class TaxonomyRecord(BaseModel):
    taxonomy_id: str
    namespace_id: str
    taxonomy_name: str
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    # The validated config, as the SDK writes it (taxonomy_type always set): immutable once
    # created, so `version` stays 1.
    config: dict[str, Any] = Field(default_factory=dict)
    version: int = 1
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)

    @property
    def taxonomy_type(self) -> str:
        return str(self.config.get("taxonomy_type") or "flat")
