"""Executing retrievers: every run is recorded; pages are served from the stored snapshot."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import orjson

from stagewise.domain.pipeline_records import ExecutionRecord, RetrieverRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import NotFound
from stagewise.ids import iso, new_id, utc_now
from stagewise.pipeline.runner import run_stages
from stagewise.pipeline.stage import Budget
from stagewise.services.context import Stores
from stagewise.services.inputs import resolve_inputs
from stagewise.services.pagination import (
    RESULT_WINDOW,
    PageRequest,
    page_response,
    parse_page_request,
)
from stagewise.services.retrievers import resolve_collections

_CACHE_SIZE = 1024
_cache: OrderedDict[str, str] = OrderedDict()
_cache_lock = threading.Lock()


def _hash(obj: Any) -> str:
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def default_limit(stages: list[dict[str, Any]]) -> int:
    for spec in stages:
        params = spec["config"].get("parameters") or {}
        if spec["config"]["stage_id"] == "feature_search":
            top = params.get("final_top_k")
            if isinstance(top, int):
                return top
    return 10


def _cache_key(stores: Stores, r: RetrieverRecord, inputs_hash: str) -> str:
    signature = [(c, stores.metadata.collection_signature(c)) for c in r.collection_ids]
    return _hash([r.retriever_id, r.version, inputs_hash, signature])


def execute(
    stores: Stores,
    *,
    ns: NamespaceRecord,
    retriever: RetrieverRecord,
    body: dict[str, Any],
    skip_cache: bool = False,
) -> tuple[ExecutionRecord, list[dict[str, Any]], dict[str, Any]]:
    """Runs (or continues, or replays from cache) and returns (record, page, pagination)."""
    req = parse_page_request(
        body.get("pagination"),
        body.get("limit") or body.get("page_size") or default_limit(retriever.stages),
    )
    if req.execution_id is not None:
        return _continue(stores, ns, req)
    inputs, interpretation = resolve_inputs(retriever.input_schema, dict(body.get("inputs") or {}))
    filters = body.get("filters") or None
    inputs_hash = _hash({"inputs": inputs, "filters": filters})
    key = _cache_key(stores, retriever, inputs_hash)
    if (req.method == "offset" and req.offset > 0) or (req.method == "keyset" and req.after):
        # A later page binds to the latest run of the same query: no overlap, no gap.
        latest = _latest(stores, ns, retriever, inputs_hash)
        if latest is not None:
            return _page(stores, latest, _keyset(stores, latest, req))
    if not skip_cache:
        with _cache_lock:
            source_id = _cache.get(key)
        source = stores.metadata.get_execution(ns.namespace_id, source_id) if source_id else None
        if source is not None and source.status == "completed":
            return _page(stores, _replay(stores, source), req)
    record = ExecutionRecord(
        execution_id=new_id("exec_", 16),
        namespace_id=ns.namespace_id,
        retriever_id=retriever.retriever_id,
        retriever_version=retriever.version,
        inputs=inputs,
        inputs_hash=inputs_hash,
        filters=filters,
        total_stages=len(retriever.stages),
        budget_limits=dict(retriever.budget_limits or {}),
        interpretation=interpretation,
        request={"pagination": body.get("pagination")},
    )
    results = run_execution(stores, record, retriever.stages, retriever.collection_ids)
    if record.status == "completed":
        with _cache_lock:
            _cache[key] = record.execution_id
            _cache.move_to_end(key)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return record, *_slice(results, record, _keyset_in(results, req))


def run_execution(
    stores: Stores, record: ExecutionRecord, stages: list[dict[str, Any]], collection_ids: list[str]
) -> list[dict[str, Any]]:
    """Run the pipeline, persisting progress; failures are recorded, not raised."""
    ns = stores.metadata.get_namespace(record.namespace_id)
    record.status, record.started_at = "processing", utc_now()
    stores.metadata.save_execution(record)
    limits = record.budget_limits
    budget = Budget(limits.get("max_credits"), limits.get("max_time_ms"))

    def progress(event: str, index: int, name: str, _: dict[str, Any]) -> None:
        record.current_stage = name
        record.heartbeat_at = utc_now()
        if event == "stage_complete":
            record.stages_completed = index + 1
        stores.metadata.save_execution(record)

    try:
        collections = resolve_collections(stores, ns, collection_ids) if ns else []
        outcome = run_stages(
            stores=stores,
            namespace_id=record.namespace_id,
            collections=collections,
            stages=stages,
            inputs=record.inputs,
            request_filters=record.filters,
            budget=budget,
            progress=progress,
        )
    except NotFound as exc:  # a collection deleted after the retriever was made
        from stagewise.pipeline.runner import RunOutcome

        outcome = RunOutcome(error=exc.message, error_type=exc.code)
    record.stage_statistics = outcome.stage_statistics
    record.stages_completed = outcome.stages_completed
    record.warnings.extend(outcome.warnings)
    record.interpretation["relaxations"] = outcome.relaxations
    record.facets = outcome.facets
    record.total_time_ms = budget.elapsed_ms()
    record.credits_used = budget.credits_used
    record.completed_at = utc_now()
    results: list[dict[str, Any]] = []
    if outcome.error is not None:
        record.status, record.error = "failed", outcome.error
    else:
        record.status, record.current_stage = "completed", None
        results = [c.public() for c in outcome.candidates[:RESULT_WINDOW]]
        if len(outcome.candidates) > RESULT_WINDOW:
            record.limits.append(
                {
                    "name": "result_window",
                    "requested": len(outcome.candidates),
                    "applied": RESULT_WINDOW,
                    "ceiling": RESULT_WINDOW,
                }
            )
    record.total_results = len(results)
    stores.metadata.save_execution(record, results)
    return results


def _replay(stores: Stores, source: ExecutionRecord) -> ExecutionRecord:
    now = utc_now()
    hit = source.model_copy(
        update={
            "execution_id": new_id("exec_", 16),
            "cache_hit": True,
            "cached_at": (source.completed_at or now).timestamp(),
            "source_execution_id": source.source_execution_id or source.execution_id,
            "created_at": now,
            "started_at": now,
            "completed_at": now,
            "total_time_ms": 0.0,
            "credits_used": 0.0,
            "warnings": list(source.warnings),
        }
    )
    stores.metadata.save_execution(hit)
    return hit


def _latest(
    stores: Stores, ns: NamespaceRecord, r: RetrieverRecord, inputs_hash: str
) -> ExecutionRecord | None:
    rows, _ = stores.metadata.list_executions(
        ns.namespace_id, retriever_id=r.retriever_id, mode="named", statuses=["completed"], limit=50
    )
    for row in rows:
        if row.inputs_hash == inputs_hash and row.retriever_version == r.version:
            return row
    return None


def results_of(
    stores: Stores, record: ExecutionRecord, offset: int, limit: int
) -> list[dict[str, Any]]:
    return stores.metadata.get_execution_results(
        record.source_execution_id or record.execution_id, offset, limit
    )


def _keyset_in(results: list[dict[str, Any]], req: PageRequest) -> PageRequest:
    """Resolve a bare keyset marker {score, document_id} to a position in a ranked list."""
    if req.method != "keyset" or not req.after or req.execution_id is not None:
        return req
    doc_id, score = req.after.get("document_id") or req.after.get("id"), req.after.get("score")
    for pos, doc in enumerate(results):
        if doc.get("document_id") == doc_id:
            req.offset = pos + 1
            return req
    if isinstance(score, int | float):
        req.offset = sum(1 for d in results if float(d.get("score") or 0.0) > score)
    return req


def _keyset(stores: Stores, record: ExecutionRecord, req: PageRequest) -> PageRequest:
    if req.method != "keyset":
        return req
    return _keyset_in(results_of(stores, record, 0, record.total_results), req)


def _slice(
    results: list[dict[str, Any]], record: ExecutionRecord, req: PageRequest
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    page = results[req.offset : req.offset + req.limit]
    return page, page_response(req, record.execution_id, record.total_results, page)


def _page(
    stores: Stores, record: ExecutionRecord, req: PageRequest
) -> tuple[ExecutionRecord, list[dict[str, Any]], dict[str, Any]]:
    page = results_of(stores, record, req.offset, req.limit)
    return record, page, page_response(req, record.execution_id, record.total_results, page)


def _continue(
    stores: Stores, ns: NamespaceRecord, req: PageRequest
) -> tuple[ExecutionRecord, list[dict[str, Any]], dict[str, Any]]:
    assert req.execution_id is not None
    record = stores.metadata.get_execution(ns.namespace_id, req.execution_id)
    if record is None:
        raise NotFound("execution", req.execution_id)
    return _page(stores, record, req)


def execution_public(
    record: ExecutionRecord,
    page: list[dict[str, Any]],
    pagination: dict[str, Any] | None,
    *,
    legacy: bool = False,
) -> dict[str, Any]:
    limits = record.budget_limits
    max_credits = limits.get("max_credits")
    body: dict[str, Any] = {
        "retriever_id": record.retriever_id or "",
        "execution_id": record.execution_id,
        "status": record.status,
        "documents": page,
        "pagination": pagination,
        "stage_statistics": {
            "stages": record.stage_statistics,
            "total_time_ms": record.total_time_ms,
            "credits_used": record.credits_used,
        },
        "facets": record.facets,
        "budget": {
            "credits_used": record.credits_used,
            "credits_remaining": max(0.0, max_credits - record.credits_used)
            if isinstance(max_credits, int | float)
            else None,
            "time_used_ms": record.total_time_ms,
            "limits": limits,
        },
        "cache_hit": record.cache_hit,
        "degraded": record.degraded,
        "limits": record.limits,
        "warnings": record.warnings,
        "interpretation": record.interpretation,
        "error": record.error,
        "optimization_applied": False,
        "created_at": iso(record.created_at),
        "completed_at": iso(record.completed_at),
        "current_stage": record.current_stage,
        "stages_completed": record.stages_completed,
        "total_stages": record.total_stages,
        "documents_retained": record.status == "completed",
        "total_returned": len(page),
    }
    if record.cached_at is not None:
        body["cached_at"] = record.cached_at
    if legacy:
        body["results"] = list(page)
    return body
