"""Runs a retriever's stages in order: renders parameters, times each stage, enforces the
budget between and inside stages, and reports progress through a callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from stagewise.domain.filters import FilterNode, combine_and
from stagewise.domain.records import CollectionRecord
from stagewise.errors import StagewiseError, ValidationFailed
from stagewise.pipeline.registry import get_stage
from stagewise.pipeline.stage import Budget, Candidate, Stage, StageContext, StageResult
from stagewise.pipeline.templating import (
    DROPPED,
    RenderReport,
    has_template,
    render_params,
    resolve_filter,
    scope,
)


@dataclass
class RunOutcome:
    candidates: list[Candidate] = field(default_factory=list)
    stage_statistics: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages_completed: int = 0
    error: str | None = None
    error_type: str | None = None
    warnings: list[str] = field(default_factory=list)
    relaxations: list[dict[str, Any]] = field(default_factory=list)
    facets: list[dict[str, Any]] | None = None
    degraded: list[dict[str, Any]] = field(default_factory=list)


# (event, stage index, stage name, payload)
ProgressFn = Callable[[str, int, str, dict[str, Any]], None]


def stage_outputs_scope(outputs: dict[str, list[Candidate]]) -> dict[str, Any]:
    return {
        name: {"documents": [c.public() for c in cands[:100]], "count": len(cands)}
        for name, cands in outputs.items()
    }


def _run_stage(
    stage_cls: type[Stage],
    params_raw: dict[str, Any],
    ctx: StageContext,
    candidates: list[Candidate],
) -> StageResult:
    try:
        params = stage_cls.Params.model_validate(params_raw)
    except ValidationError as exc:
        raise ValidationFailed(
            f"Stage '{ctx.stage_name}' parameters are invalid after rendering: "
            f"{exc.errors()[0]['msg']}"
        ) from exc
    result = stage_cls(params).run(ctx, candidates)
    ctx.budget.charge(stage_cls.credits_per_document * len(candidates) + result.credits)
    result.warnings = [*result.warnings, *ctx.warnings]
    return result


def run_stages(
    *,
    stores: Any,
    namespace_id: str,
    collections: list[CollectionRecord],
    stages: list[dict[str, Any]],
    inputs: dict[str, Any],
    request_filter: FilterNode | None,
    budget: Budget,
    progress: ProgressFn | None = None,
    reads: dict[str, str | None] | None = None,
    consistency: Any = None,
) -> RunOutcome:
    outcome = RunOutcome()
    candidates: list[Candidate] = []
    outputs: dict[str, list[Candidate]] = {}
    context: dict[str, Any] = {}
    for index, spec in enumerate(stages):
        name = spec["stage_name"]
        config = spec["config"]
        stage_cls = get_stage(config["stage_id"])
        if progress:
            progress("stage_start", index, name, {})
        started = time.perf_counter()
        credits_before = budget.credits_used
        stats: dict[str, Any] = {
            "input_count": len(candidates),
            "output_count": 0,
            "duration_ms": 0.0,
            "efficiency": 0.0,
            "stage_id": config["stage_id"],
            "metadata": {},
        }
        try:
            budget.check()
            if stage_cls is None:
                raise ValidationFailed(f"Unknown stage '{config['stage_id']}'")
            report = RenderReport()
            variables = scope(inputs=inputs, context=context, stages=stage_outputs_scope(outputs))
            raw = dict(config.get("parameters") or {})
            for key, field in stage_cls.Params.model_fields.items():
                # Defaults such as rerank's query '{{INPUT.query}}' are templates too.
                if key not in raw and has_template(field.default):
                    raw[key] = field.default
            own = {k: raw.pop(k) for k in stage_cls.per_document_params if k in raw}
            rendered = render_params(raw, variables, report)
            pre = resolve_filter(
                config.get("pre_filters"),
                variables,
                inputs,
                report,
                where=f"stage '{name}' pre_filters",
            )
            outcome.relaxations.extend({**r, "stage": name} for r in report.relaxations)
            if rendered is DROPPED:
                # The stage is one filter condition whose input is missing: dropped, so the
                # documents pass through (a relaxation, listed in the interpretation).
                result = StageResult(list(candidates), metadata={"relaxed": True})
            else:
                result = _run_stage(
                    stage_cls,
                    {**rendered, **own},
                    StageContext(
                        stores=stores,
                        namespace_id=namespace_id,
                        collections=collections,
                        inputs=inputs,
                        budget=budget,
                        stage_name=name,
                        stage_index=index,
                        stage_outputs=outputs,
                        context=context,
                        stage_filter=combine_and(pre, request_filter),
                        reads=reads,
                        consistency=consistency,
                    ),
                    candidates,
                )
                outcome.warnings.extend(result.warnings)
        except StagewiseError as exc:
            stats["duration_ms"] = (time.perf_counter() - started) * 1000.0
            stats["error"] = exc.message
            stats["credits"] = budget.credits_used - credits_before
            outcome.stage_statistics[name] = stats
            if spec.get("on_error") == "skip" and exc.code != "budget_exceeded":
                outcome.warnings.append(f"stage '{name}' failed and was skipped: {exc.message}")
                outcome.degraded.append(
                    {
                        "resource": "stage",
                        "id": name,
                        "reason": exc.message,
                        "next_step": "fix the stage's error; its on_error 'skip' passed the "
                        "documents through unchanged",
                        "stage": name,
                    }
                )
                stats["output_count"] = len(candidates)
                stats["efficiency"] = 1.0 if candidates else 0.0
                outcome.stages_completed += 1
                if progress:
                    progress("stage_error", index, name, {"error": exc.message, "skipped": True})
                continue
            outcome.error, outcome.error_type = exc.message, exc.code
            outcome.candidates = candidates
            if progress:
                progress("stage_error", index, name, {"error": exc.message})
            return outcome
        if result.considered is not None:
            stats["input_count"] = result.considered
        outcome.degraded.extend({**d, "stage": name} for d in result.degraded)
        candidates = result.candidates
        if result.facets is not None:
            outcome.facets = result.facets
        outputs[name] = candidates
        if spec.get("output_alias"):
            context[spec["output_alias"]] = [c.public() for c in candidates]
        stats.update(
            output_count=len(candidates),
            duration_ms=(time.perf_counter() - started) * 1000.0,
            efficiency=(len(candidates) / stats["input_count"]) if stats["input_count"] else 0.0,
            metadata=result.metadata,
            credits=budget.credits_used - credits_before,
        )
        if stage_cls is not None and stage_cls.keeps_cache:
            # Only a stage with a cache of its own can say whether it served the run;
            # `cache_hit` is the SDK's deprecated alias of the same flag.
            stats["stage_cache_hit"] = stats["cache_hit"] = result.stage_cache_hit
        outcome.stage_statistics[name] = stats
        outcome.stages_completed += 1
        if progress:
            progress("stage_complete", index, name, {"statistics": stats, "count": len(candidates)})
    outcome.candidates = candidates
    return outcome
