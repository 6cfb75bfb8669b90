"""Public shapes of retrievers and execution summaries."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

from stagewise.domain.pipeline_records import ExecutionRecord, RetrieverRecord
from stagewise.errors import ValidationFailed
from stagewise.ids import iso
from stagewise.services.retrievers import fusion_of

_URI = re.compile(
    r"^(?P<scheme>\w+)://(?P<extractor>[\w-]+)@(?P<version>[\w.-]+)(?:/(?P<output>.+))?$"
)


def feature_dependencies(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The extractor features a retriever's searches use, parsed from their feature URIs."""
    seen: dict[str, dict[str, Any]] = {}
    for spec in stages:
        params = spec["config"].get("parameters") or {}
        for search in params.get("searches") or []:
            uri = search.get("feature_uri") if isinstance(search, dict) else None
            match = _URI.match(uri) if isinstance(uri, str) else None
            if match:
                seen[uri] = match.groupdict()  # type: ignore[index]
    return list(seen.values())


def retriever_public(r: RetrieverRecord) -> dict[str, Any]:
    stages = [
        {
            "stage_name": s["stage_name"],
            "stage_type": s.get("stage_type"),
            "config": s["config"],
            "parameters": s["config"].get("parameters") or {},
            "on_error": s.get("on_error"),
            "output_alias": s.get("output_alias"),
            "description": s.get("description"),
        }
        for s in r.stages
    ]
    return {
        "retriever_id": r.retriever_id,
        "retriever_name": r.retriever_name,
        "description": r.description,
        "collection_ids": r.collection_ids,
        "collection_identifiers": r.collection_ids,
        "stages": stages,
        "input_schema": r.input_schema,
        "budget_limits": r.budget_limits,
        "tags": r.tags,
        "metadata": r.metadata,
        "display_config": r.display_config,
        "version": r.version,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
        "fusion": fusion_of(r.stages),
        "feature_dependencies": feature_dependencies(r.stages),
    }


def total_processed(x: ExecutionRecord) -> int:
    return sum(int(s.get("input_count", 0)) for s in x.stage_statistics.values())


def _brief(value: Any) -> Any:
    """Inputs with long arrays (query vectors) shortened before they are serialised."""
    if isinstance(value, dict):
        return {k: _brief(v) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > 8:
            kind = "numbers" if all(isinstance(v, int | float) for v in value) else "items"
            return f"[{len(value)} {kind}]"
        return [_brief(v) for v in value]
    return value


def query_summary(x: ExecutionRecord) -> str:
    return orjson.dumps(_brief(x.inputs)).decode()[:200]


STATUSES = ("pending", "processing", "completed", "failed")


def time_filter(raw: Any, field: str) -> datetime | None:
    """A list filter's ISO-8601 bound (start_time / end_time); absent or empty: no bound.
    Without an offset it is UTC, as every stored time is."""
    if raw in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed(f"{field} must be an ISO-8601 date-time", field=field) from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def status_filter(status: Any) -> list[str] | None:
    """The list filter's statuses, one or a list: 'running' means pending or processing."""
    if not status:
        return None
    wanted = status if isinstance(status, list) else [status]
    out: list[str] = []
    for item in wanted:
        if item == "running":
            out += ["pending", "processing"]
        elif item in STATUSES:
            out.append(item)
        else:
            raise ValidationFailed(
                f"status must be one of {[*STATUSES, 'running']} or a list of them, not {item!r}",
                field="status",
            )
    return sorted(set(out))


def execution_summary(x: ExecutionRecord) -> dict[str, Any]:
    return {
        "execution_id": x.execution_id,
        "status": x.status,
        "created_at": iso(x.created_at),
        "completed_at": iso(x.completed_at),
        "duration_ms": x.total_time_ms,
        "credits_used": x.credits_used,
        "total_processed": total_processed(x),
        "total_returned": x.total_results,
        "cache_hit_rate": 1.0 if x.cache_hit else 0.0,
        "inputs_hash": x.inputs_hash,
        "query_summary": query_summary(x),
        "error": x.error,
        "trace_id": x.trace_id,
    }
