"""sort_attribute: reorder by a document field."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stagewise.pipeline.docpath import get_field, sort_key
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)


class SortAttributeParams(StageParams):
    field: str = Field(default="metadata.created_at", description="Dot path to sort by")
    direction: Literal["asc", "desc"] = "desc"
    nulls_last: bool = Field(default=True, description="Documents without the field go last")


@register
class SortAttribute(Stage):
    stage_id: ClassVar[str] = "sort_attribute"
    category: ClassVar[Category] = "sort"
    description: ClassVar[str] = "Sort documents by a field (ties keep their incoming order)"
    icon: ClassVar[str] = "arrow-up-down"
    Params = SortAttributeParams
    credits_per_document: ClassVar[float] = 0.0001

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: SortAttributeParams = self.params  # type: ignore[assignment]
        present = [c for c in candidates if get_field(c, p.field) is not None]
        missing = [c for c in candidates if get_field(c, p.field) is None]
        # sorted() is stable, so equal values keep the upstream (relevance) order.
        present = sorted(
            present, key=lambda c: sort_key(get_field(c, p.field)), reverse=p.direction == "desc"
        )
        ordered = present + missing if p.nulls_last else missing + present
        return StageResult(ordered, metadata={"field": p.field, "missing_field": len(missing)})
