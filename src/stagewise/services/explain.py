"""Explain: a per-stage plan with estimates, taken from this retriever's recorded history
when it has any, and from the stage parameters otherwise."""

from __future__ import annotations

import statistics
from typing import Any

from stagewise.domain.pipeline_records import RetrieverRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.services.context import Stores

HISTORY_WINDOW = 50


def _fallback(spec: dict[str, Any], incoming: int, points: int) -> tuple[int, int]:
    """Estimates from the parameters alone. A first-stage search considers every point of
    the retriever's collections (`points`), as its recorded statistics will say."""
    params = spec["config"].get("parameters") or {}
    stage_id = spec["config"]["stage_id"]
    if stage_id == "feature_search":
        top = params.get("final_top_k")
        return points, min(points, top if isinstance(top, int) else 25)
    for key in ("top_k", "count", "limit"):
        value = params.get(key)
        if isinstance(value, int):
            return incoming, min(incoming, value)
    return incoming, incoming


def explain(stores: Stores, *, ns: NamespaceRecord, retriever: RetrieverRecord) -> dict[str, Any]:
    runs, _ = stores.metadata.list_executions(
        ns.namespace_id,
        retriever_id=retriever.retriever_id,
        mode="named",
        statuses=["completed"],
        limit=HISTORY_WINDOW,
    )
    runs = [r for r in runs if not r.cache_hit and r.retriever_version == retriever.version]
    plan: list[dict[str, Any]] = []
    incoming = 0
    points = sum(stores.index.count(cid) for cid in retriever.collection_ids)
    for index, spec in enumerate(retriever.stages):
        name = spec["stage_name"]
        seen = [r.stage_statistics[name] for r in runs if name in r.stage_statistics]
        notes: list[str] = []
        if seen:
            est_in = round(statistics.median(s["input_count"] for s in seen))
            est_out = round(statistics.median(s["output_count"] for s in seen))
            duration = statistics.median(s["duration_ms"] for s in seen)
            notes.append(f"median of {len(seen)} recorded runs of version {retriever.version}")
        else:
            est_in, est_out = _fallback(spec, incoming, points)
            duration = 0.0
            notes.append("no recorded runs yet: counts from the stage parameters, time unknown")
        credits = [float(s.get("credits", 0.0)) for s in seen]
        plan.append(
            {
                "stage_index": index,
                "stage_name": name,
                "stage_type": spec.get("stage_type") or "filter",
                "estimated_input": int(est_in),
                "estimated_output": int(est_out),
                "estimated_efficiency": (est_out / est_in) if est_in else 0.0,
                "estimated_cost_credits": float(statistics.median(credits)) if credits else 0.0,
                "estimated_duration_ms": float(duration),
                # Likely when the stage's own cache served most of its recorded runs.
                "cache_likely": sum(bool(s.get("stage_cache_hit")) for s in seen) * 2
                > len(seen)
                > 0,
                "optimization_notes": notes,
            }
        )
        incoming = int(est_out)
    slowest = max((p["estimated_duration_ms"] for p in plan), default=0.0)
    bottlenecks = [
        p["stage_name"] for p in plan if slowest > 0 and p["estimated_duration_ms"] >= 0.8 * slowest
    ]
    suggestions = [
        {"type": "bottleneck", "stage": b, "message": f"'{b}' dominates the run time"}
        for b in bottlenecks
    ]
    return {
        "retriever_id": retriever.retriever_id,
        "retriever_name": retriever.retriever_name,
        "estimated_cost": {
            "total_credits": float(sum(p["estimated_cost_credits"] for p in plan)),
            "total_duration_ms": float(sum(p["estimated_duration_ms"] for p in plan)),
        },
        "execution_plan": plan,
        "optimization_suggestions": suggestions,
        "total_estimated_stages": len(plan),
        "bottleneck_stages": bottlenecks,
        "history_runs": len(runs),
    }
