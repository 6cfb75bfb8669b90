"""taxonomy_enrich (alias taxonomy_join): each document is matched against a taxonomy's nodes
(pipeline/taxonomy_match.py) and the matches are written onto it.

The added fields use the names materialisation uses, at the document's root where
document_enrich merges its fields: `_taxonomy_<id>_id`, `_label` and `_score`, plus the node
fields of `fields` (or else of the taxonomy's enrichment fields; with neither, the node
document's fields the document lacks). `top_k` 1 keeps N -> N; above 1 every kept match
becomes its own output (N -> N*M), in the document's place, best match first. Documents that
do not match `when`, or that match no node (none at or above `min_score`, or a mapped input
missing), pass through unchanged. A taxonomy deleted after the retriever was created fails
the run.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from stagewise.domain.filters import matches, parse_filter
from stagewise.domain.records import CollectionRecord
from stagewise.errors import StageFailed, ValidationFailed
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)
from stagewise.pipeline.stages.document_enrich import check_when
from stagewise.pipeline.taxonomy_match import (
    PLACEHOLDER,
    TaxonomyMatcher,
    annotate,
    apply_enrichment,
)
from stagewise.pipeline.templating import has_template


class EnrichmentFieldParam(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field_path: str = Field(min_length=1, description="Dot path of the node field to copy")
    target_field: str | None = Field(
        default=None, description="Where it goes in the document (None: field_path)"
    )
    merge_mode: Literal["replace", "append"] | None = Field(
        default=None, description="replace (default) or append (collects into a list)"
    )


class TaxonomyEnrichParams(StageParams):
    taxonomy_id: str = Field(
        default=PLACEHOLDER, description="The taxonomy to match against (id or name)"
    )
    fields: list[EnrichmentFieldParam] | None = Field(
        default=None, description="Node fields to merge; None: the taxonomy's enrichment fields"
    )
    top_k: int = Field(default=3, ge=1, le=50, description="Matches kept per document")
    min_score: float = Field(default=0.0, ge=0.0, le=1.0, description="Lowest score kept")
    when: dict[str, Any] | None = Field(
        default=None, description="Only documents matching this filter are enriched"
    )


@register
class TaxonomyEnrich(Stage):
    stage_id: ClassVar[str] = "taxonomy_enrich"
    category: ClassVar[Category] = "apply"
    description: ClassVar[str] = (
        "Match each document against a taxonomy's nodes through its retriever and attach the "
        "best matches (top_k > 1 fans out one document per match)"
    )
    icon: ClassVar[str] = "tags"
    Params = TaxonomyEnrichParams
    # The taxonomy's retriever charges its own stages' credits for every match it runs.
    credits_per_document: ClassVar[float] = 0.0

    @classmethod
    def validate_for(cls, params: StageParams, collections: list[CollectionRecord]) -> None:
        p: TaxonomyEnrichParams = params  # type: ignore[assignment]
        if p.taxonomy_id == PLACEHOLDER or not p.taxonomy_id.strip():
            raise ValidationFailed(
                f"taxonomy_enrich: taxonomy_id is the placeholder '{PLACEHOLDER}'; set it to "
                "the id or name of the taxonomy to apply",
                code="invalid_stage_parameters",
            )
        check_when(p.when)

    @classmethod
    def validate_references(cls, params: StageParams, stores: Any, namespace_id: str) -> None:
        p: TaxonomyEnrichParams = params  # type: ignore[assignment]
        if has_template(p.taxonomy_id):
            return  # names its taxonomy per execution
        if stores.taxonomies.get_taxonomy(namespace_id, p.taxonomy_id) is None:
            raise ValidationFailed(
                f"taxonomy_enrich: taxonomy '{p.taxonomy_id}' does not exist in this namespace",
                code="taxonomy_not_found",
                taxonomy_id=p.taxonomy_id,
            )

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: TaxonomyEnrichParams = self.params  # type: ignore[assignment]
        taxonomy = ctx.stores.taxonomies.get_taxonomy(ctx.namespace_id, p.taxonomy_id)
        if taxonomy is None:
            raise StageFailed(
                f"taxonomy_enrich: taxonomy '{p.taxonomy_id}' no longer exists",
                code="taxonomy_not_found",
            )
        matcher = TaxonomyMatcher(
            ctx.stores, taxonomy, ctx.budget, ctx.collection, consistency=ctx.consistency
        )
        node = parse_filter(p.when, ctx.inputs) if p.when else None
        fields = [f.model_dump() for f in p.fields] if p.fields is not None else None
        out: list[Candidate] = []
        matched = unmatched = skipped = assignments = 0
        for c in candidates:
            view = c.public()
            if node is not None and not matches(node, view):
                skipped += 1
                out.append(c)
                continue
            found = matcher.match(view, p.top_k, p.min_score)
            if not found:
                unmatched += 1
                out.append(c)
                continue
            matched += 1
            assignments += len(found)
            # Fanned out, each match gets its own copy of the document as it came in.
            targets = [c] if len(found) == 1 else [_copy(c) for _ in found]
            for target, assignment in zip(targets, found, strict=True):
                annotate(target.doc, taxonomy.taxonomy_id, [assignment], ranked=False)
                apply_enrichment(target.doc, [assignment], fields)
                out.append(target)
        metadata = {
            "taxonomy_id": taxonomy.taxonomy_id,
            "taxonomy_name": taxonomy.taxonomy_name,
            "taxonomy_type": taxonomy.taxonomy_type,
            "matched": matched,
            "unmatched": unmatched,
            "unmapped": matcher.stats.unmapped,
            "skipped_by_when": skipped,
            "assignments": assignments,
            "retriever_runs": matcher.stats.retriever_runs,
        }
        return StageResult(out, metadata=metadata)


def _copy(c: Candidate) -> Candidate:
    return Candidate(
        c.document_id, c.collection_id, c.score, copy.deepcopy(c.doc), copy.deepcopy(c.scores)
    )
