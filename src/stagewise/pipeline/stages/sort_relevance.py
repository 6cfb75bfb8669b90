"""sort_relevance: reorder the documents by a score (the top-level `score` by default).

A document "has a score" when `score_field` holds a finite number (booleans, strings, NaN and
missing values do not count); where the others go is `missing_score`:

* ``bottom`` (default): after every scored document, in their incoming order;
* ``top``: before every scored document, in their incoming order;
* ``preserve``: each stays at its incoming position; the scored documents are sorted into
  the remaining positions.

Equal scores keep their incoming order in both directions. No document is added or removed.
`feature_address` is deprecated and has no effect (a warning says so when it is set).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from stagewise.pipeline.docpath import get_field
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)


class SortRelevanceParams(StageParams):
    score_field: str = Field(
        default="score", description="Dot path of the score, e.g. 'score' or 'scores.rerank'"
    )
    direction: Literal["asc", "desc"] = Field(
        default="desc", description="'desc': highest first (default); 'asc': lowest first"
    )
    missing_score: Literal["bottom", "top", "preserve"] = Field(
        default="bottom",
        description="Documents without a numeric score: at the end, at the start, or in place",
    )
    feature_address: str | None = Field(
        default=None, description="Deprecated and without effect: sorting uses score_field"
    )

    @field_validator("direction", mode="before")
    @classmethod
    def _direction_default(cls, value: Any) -> Any:
        # The SDK's own default for direction is None, meaning "desc".
        return "desc" if value is None else value


def numeric_score(value: Any) -> float | None:
    """The value as a finite float, or None when it is not a usable score."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@register
class SortRelevance(Stage):
    stage_id: ClassVar[str] = "sort_relevance"
    category: ClassVar[Category] = "sort"
    description: ClassVar[str] = (
        "Sort documents by a relevance score field (ties keep their incoming order; documents "
        "without a score go to the bottom, the top, or stay in place)"
    )
    icon: ClassVar[str] = "arrow-down-wide-narrow"
    Params = SortRelevanceParams
    credits_per_document: ClassVar[float] = 0.0001

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: SortRelevanceParams = self.params  # type: ignore[assignment]
        ctx.budget.check()
        if p.feature_address is not None:
            ctx.warnings.append(
                "sort_relevance: feature_address is deprecated and has no effect; "
                f"documents are sorted by '{p.score_field}'"
            )
        scored: list[tuple[float, Candidate]] = []
        missing_positions: list[int] = []
        for i, c in enumerate(candidates):
            if i % 256 == 0:
                ctx.budget.check()
            value = numeric_score(get_field(c, p.score_field))
            if value is None:
                missing_positions.append(i)
            else:
                scored.append((value, c))
        # sorted() is stable (also with reverse=True), so equal scores keep incoming order.
        scored.sort(key=lambda item: item[0], reverse=p.direction == "desc")
        ordered_scored = [c for _, c in scored]
        missing = [candidates[i] for i in missing_positions]
        if p.missing_score == "bottom":
            ordered = ordered_scored + missing
        elif p.missing_score == "top":
            ordered = missing + ordered_scored
        else:
            ordered = []
            fill = iter(ordered_scored)
            keep = set(missing_positions)
            for i, c in enumerate(candidates):
                ordered.append(c if i in keep else next(fill))
        return StageResult(
            ordered,
            metadata={
                "score_field": p.score_field,
                "direction": p.direction,
                "missing_score": p.missing_score,
                "scored": len(ordered_scored),
                "missing_score_count": len(missing),
            },
        )
