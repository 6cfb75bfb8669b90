"""attribute_filter: keep documents matching a condition or a boolean tree of them."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import Field, model_validator

from stagewise.domain.filters import OPERATORS, FilterNode, combine_and, matches, parse_filter
from stagewise.domain.records import CollectionRecord
from stagewise.pipeline.candidates import candidates_from_hits
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)

FIRST_STAGE_SCAN_LIMIT = 1000  # per collection, as the contract specifies


class AttributeFilterParams(StageParams):
    field: str | None = Field(default="metadata.status", description="Simple mode: dot path")
    operator: str | None = Field(default="eq", description=f"One of {', '.join(OPERATORS)}")
    value: Any = None
    conditions: dict[str, Any] | None = Field(
        default=None, description="Boolean mode: a LogicalOperator {AND/OR/NOT: [...]}"
    )
    natural_language: str | None = Field(default=None, description="Needs an LLM provider")
    field_hints: list[str] | None = None
    batch_size: int = Field(default=100, ge=1)
    case_insensitive: bool = False

    @model_validator(mode="after")
    def _one_mode(self) -> AttributeFilterParams:
        if self.natural_language:
            raise ValueError(
                "natural_language needs an LLM provider; configure STAGEWISE_LLM_PROVIDER "
                "or use conditions"
            )
        return self

    def filter_tree(self) -> dict[str, Any]:
        if self.conditions:
            return self.conditions
        return {"AND": [{"field": self.field, "operator": self.operator, "value": self.value}]}


@register
class AttributeFilter(Stage):
    stage_id: ClassVar[str] = "attribute_filter"
    category: ClassVar[Category] = "filter"
    description: ClassVar[str] = (
        "Keep documents whose fields match a condition, or an AND/OR/NOT tree of conditions"
    )
    icon: ClassVar[str] = "filter"
    Params = AttributeFilterParams
    credits_per_document: ClassVar[float] = 0.0001

    @classmethod
    def validate_for(cls, params: StageParams, collections: list[CollectionRecord]) -> None:
        p: AttributeFilterParams = params  # type: ignore[assignment]
        if "{{" not in json.dumps(p.filter_tree(), default=str):
            parse_filter(p.filter_tree())  # templated trees are checked once rendered

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: AttributeFilterParams = self.params  # type: ignore[assignment]
        node = parse_filter(p.filter_tree(), ctx.inputs)
        if ctx.stage_index == 0 and not candidates:
            return self._scan(ctx, p, node)
        kept = []
        for i, c in enumerate(candidates):
            if i % 256 == 0:
                ctx.budget.check()
            if node is None or matches(node, c.public(), case_insensitive=p.case_insensitive):
                kept.append(c)
        return StageResult(kept, metadata={"mode": "in_memory"})

    @staticmethod
    def _scan(ctx: StageContext, p: AttributeFilterParams, node: FilterNode | None) -> StageResult:
        """First stage: the filter, AND-ed with the stage's pre_filters and the request's
        filters, is pushed into the index (exact), bounded per collection."""
        # case_insensitive applies to this stage's own conditions only, so the other
        # filters join in the engine only when the comparison is case-sensitive anyway.
        engine = node if p.case_insensitive else combine_and(node, ctx.stage_filter)
        scanned: list[Candidate] = []
        clamped: list[str] = []  # collections with more matches than the scan bound
        for col in ctx.collections:
            hits = ctx.stores.index.scroll(
                col.collection_id,
                engine,
                FIRST_STAGE_SCAN_LIMIT,
                case_insensitive=p.case_insensitive,
            )
            if len(hits) == FIRST_STAGE_SCAN_LIMIT:
                clamped.append(col.collection_id)
            scanned.extend(candidates_from_hits(col.collection_id, hits, scored=False))
        if p.case_insensitive and ctx.stage_filter is not None:
            outer = ctx.stage_filter
            scanned = [c for c in scanned if matches(outer, c.public())]
        considered = sum(ctx.stores.index.count(col.collection_id) for col in ctx.collections)
        metadata: dict[str, Any] = {"mode": "index_scan"}
        if clamped:  # said only when the bound cut something off
            metadata["scan_limit"] = FIRST_STAGE_SCAN_LIMIT
            metadata["scan_limit_reached_in"] = clamped
        return StageResult(scanned, metadata=metadata, considered=considered)
