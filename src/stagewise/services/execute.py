"""Executing retrievers: every run is recorded; pages are served from the stored snapshot."""

from __future__ import annotations

import contextvars
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from stagewise import request_id
from stagewise.domain.filters import FilterNode
from stagewise.domain.pipeline_records import ExecutionRecord, RetrieverRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import NotFound, ValidationFailed
from stagewise.ids import iso, new_id, utc_now
from stagewise.pipeline.runner import ProgressFn, RunOutcome, run_stages
from stagewise.pipeline.stage import Budget, collection_version
from stagewise.pipeline.templating import (
    RenderReport,
    check_request_templates,
    resolve_filter,
    scope,
)
from stagewise.services.context import Stores
from stagewise.services.follower import STRONG, Consistency
from stagewise.services.inputs import resolve_inputs
from stagewise.services.pagination import (
    RESULT_WINDOW,
    PageRequest,
    first_page,
    parse_page_request,
    stored_page,
)
from stagewise.services.retrievers import resolve_collections

log = logging.getLogger("stagewise.execute")
Listener = ProgressFn
PROGRESS_SAVE_INTERVAL_S = 0.25


# An answered execute: the record, the page of documents and its pagination block.
Answer = tuple[ExecutionRecord, list[dict[str, Any]], dict[str, Any]]


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


def _cache_key(r: RetrieverRecord, inputs_hash: str) -> str:
    return _hash([r.retriever_id, r.version, inputs_hash])


def _fresh(stores: Stores, record: ExecutionRecord) -> bool:
    """Whether a stored run still answers its query: every collection any of its stages read
    (join targets included) is the same collection at the same write `seq` as then."""
    versions = record.read_versions
    return bool(versions) and all(
        collection_version(stores, record.namespace_id, ident) == version
        for ident, version in versions.items()
    )


@dataclass
class Target:
    """What runs: a stored retriever, or an adhoc pipeline."""

    stages: list[dict[str, Any]]
    collection_ids: list[str]
    input_schema: dict[str, Any]
    budget_limits: dict[str, Any]
    retriever: RetrieverRecord | None = None

    @classmethod
    def of(cls, r: RetrieverRecord) -> Target:
        return cls(r.stages, r.collection_ids, r.input_schema, dict(r.budget_limits or {}), r)


@dataclass
class Plan:
    """Either a finished answer (continuation or cache hit) or a new run to start."""

    req: PageRequest
    done: Answer | None = None
    record: ExecutionRecord | None = None
    target: Target | None = None
    cache_key: str | None = None
    request_filter: FilterNode | None = None
    # Called once the answer is ready, however it ends (releases the key's execution slot).
    on_done: Callable[[], None] | None = None
    consistency: Consistency = STRONG


WRITE_TOKEN_KIND = "wtok"
WRITE_TOKEN_SCOPE = "write"
_WRITE_TOKEN: dict[str, Any] = {"c": str, "q": range(2**63)}


def write_token(stores: Stores, namespace_id: str, collection_id: str, seq: int) -> str:
    """A signed token naming a write: a read presenting it sees that write (and earlier)."""
    return stores.cursors.encode(
        WRITE_TOKEN_KIND, namespace_id, WRITE_TOKEN_SCOPE, {"c": collection_id, "q": seq}
    )


def read_consistency(stores: Stores, namespace_id: str, body: dict[str, Any]) -> Consistency:
    """The request's consistency: strong unless it asks for eventual; a write token always
    reads strong, up to its write."""
    wanted = body.get("consistency") or {}
    token = body.get("write_token")
    if token is not None:
        fields = stores.cursors.decode(
            token,
            kind=WRITE_TOKEN_KIND,
            namespace_id=namespace_id,
            scope=WRITE_TOKEN_SCOPE,
            spec=_WRITE_TOKEN,
            what="write_token",
        )
        return Consistency(tokens=((fields["c"], fields["q"]),))
    if wanted.get("mode") == "eventual":
        staleness = wanted.get("max_staleness_ms")
        return Consistency(
            mode="eventual",
            max_staleness_ms=float(staleness if staleness is not None else 5_000),
        )
    return STRONG


def _page_size(body: dict[str, Any], target: Target) -> tuple[int, list[str]]:
    limit, page_size = body.get("limit"), body.get("page_size")
    if limit is not None and page_size is not None and limit != page_size:
        raise ValidationFailed("limit and page_size disagree; send one of them", field="limit")
    size = limit if limit is not None else page_size
    warnings = []
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 500:
            raise ValidationFailed("limit must be an integer in 1..500", field="limit")
        if body.get("pagination"):
            warnings.append("both pagination and limit were sent; pagination wins")
    return size or default_limit(target.stages), warnings


def plan(
    stores: Stores,
    *,
    ns: NamespaceRecord,
    target: Target,
    body: dict[str, Any],
    skip_cache: bool = False,
) -> Plan:
    """Validates the request (4xx records nothing) and decides how it is answered."""
    size, warnings = _page_size(body, target)
    consistency = read_consistency(stores, ns.namespace_id, body)
    continuation_scope = target.retriever.retriever_id if target.retriever else "adhoc"
    req = parse_page_request(
        stores, ns.namespace_id, continuation_scope, body.get("pagination"), size
    )
    if req.execution_id is not None:
        record = lookup(stores, ns.namespace_id, req.execution_id)
        if record is None:
            raise NotFound("execution", req.execution_id)
        return Plan(req, done=(record, *stored_page(stores, record, req)))
    inputs, interpretation = resolve_inputs(target.input_schema, dict(body.get("inputs") or {}))
    check_request_templates([spec["config"] for spec in target.stages], inputs)
    filters = body.get("filters") or None
    # Resolved once, with the inputs; a malformed filter is the caller's error: 422, no record.
    report = RenderReport()
    request_filter = resolve_filter(filters, scope(inputs=inputs), inputs, report, where="filters")
    interpretation["relaxations"] = report.relaxations
    inputs_hash = _hash({"inputs": inputs, "filters": filters})
    r = target.retriever
    key = None
    if r is not None:
        key = _cache_key(r, inputs_hash)
        started = time.perf_counter()
        if (req.method == "offset" and req.offset > 0) or (req.method == "keyset" and req.after):
            # A later page binds to the latest run of the same query, fresh or not: it is the
            # ranked list page 1 came from, so the walk has no overlap and no gap.
            latest = _latest(stores, ns, r, inputs_hash)
            if latest is not None:
                return Plan(req, done=(latest, *stored_page(stores, latest, req)))
        source = None if skip_cache else _cached_run(stores, ns.namespace_id, key)
        if source is not None and _fresh(stores, source):
            stores.metrics.cache_lookup(hit=True)
            hit = _replay(stores, source, (time.perf_counter() - started) * 1000.0)
            return Plan(req, done=(hit, *stored_page(stores, hit, req)), consistency=consistency)
        if not skip_cache:
            stores.metrics.cache_lookup(hit=False)
    record = ExecutionRecord(
        execution_id=new_id("exec_", 16),
        namespace_id=ns.namespace_id,
        retriever_id=r.retriever_id if r else None,
        retriever_version=r.version if r else None,
        mode="named" if r else "adhoc",
        inputs=inputs,
        inputs_hash=inputs_hash,
        filters=filters,
        stages=[] if r else target.stages,
        collection_ids=target.collection_ids,
        total_stages=len(target.stages),
        budget_limits=target.budget_limits,
        interpretation=interpretation,
        warnings=warnings,
        request={"pagination": body.get("pagination")},
        trace_id=request_id.current(),
    )
    return Plan(
        req,
        record=record,
        target=target,
        cache_key=key,
        request_filter=request_filter,
        consistency=consistency,
    )


def finish(stores: Stores, p: Plan, listener: Listener | None = None) -> Answer:
    """Run a planned execution to its end (completed or failed) and slice the first page.
    Whatever happens, the plan's `on_done` (its execution slot) is released."""
    try:
        if p.done is not None:
            return p.done
        assert p.record is not None and p.target is not None
        record = p.record
        try:
            results = run_execution(
                stores,
                record,
                p.target.stages,
                p.target.collection_ids,
                p.request_filter,
                listener,
                p.consistency,
            )
        finally:
            stores.progress.end(record.execution_id)
    finally:
        if p.on_done is not None:
            p.on_done()
    if record.status == "completed" and not record.degraded and p.cache_key is not None:
        stores.results.put(p.cache_key, record.execution_id)
    return record, *first_page(results, record, p.req)


def start_in_background(stores: Stores, p: Plan) -> ExecutionRecord:
    """wait=false: store the run as pending and let a worker thread carry it out.

    The pending record is committed before this returns (a pending record is never written
    behind, storage/write_behind.py), so the execution_id the caller is answered with
    survives a crash; the run itself does not, and start-up fails what it finds unfinished
    (services/startup.py)."""
    assert p.record is not None and p.record.status == "pending"
    # Live first: a stored pending run that no live worker holds is failed by the reaper.
    stores.progress.publish(p.record)
    stores.metadata.save_execution(p.record)
    answer = p.record.model_copy(deep=True)  # the worker mutates the live record
    # In a copy of the request's context: the run's logs carry the id of the request.
    stores.background.submit(contextvars.copy_context().run, _run_logged, stores, p)
    return answer


def _run_logged(stores: Stores, p: Plan) -> None:
    try:
        record, _, _ = finish(stores, p)
        # Its request's access line was logged when the run was accepted: this is its end.
        log.info(
            "background execution %s %s",
            record.execution_id,
            record.status,
            extra={
                "execution_id": record.execution_id,
                "execution_status": record.status,
                "duration_ms": round(record.total_time_ms, 3),
            },
        )
    except Exception:  # a bug, not a run failure: keep the record honest
        log.exception("background execution %s crashed", p.record and p.record.execution_id)
        if p.record is not None:
            counted = p.record.status in ("completed", "failed")  # run_execution counted it
            p.record.status, p.record.error = "failed", "internal error while running"
            p.record.completed_at = utc_now()
            stores.metadata.save_execution(p.record)
            if not counted:
                stores.metrics.finished(p.record, ran=False)


def run_execution(
    stores: Stores,
    record: ExecutionRecord,
    stages: list[dict[str, Any]],
    collection_ids: list[str],
    request_filter: FilterNode | None,
    listener: Listener | None = None,
    consistency: Consistency = STRONG,
) -> list[dict[str, Any]]:
    """Run the pipeline; failures are recorded, not raised. While it runs the record is live
    in this process (status and GET read it directly) and persisted at most every
    PROGRESS_SAVE_INTERVAL_S, so fast runs cost one write and slow ones stay observable
    from other processes too."""
    with stores.metrics.running.track_inprogress():
        results = _run(
            stores, record, stages, collection_ids, request_filter, listener, consistency
        )
    stores.metrics.finished(record)
    return results


def _run(
    stores: Stores,
    record: ExecutionRecord,
    stages: list[dict[str, Any]],
    collection_ids: list[str],
    request_filter: FilterNode | None,
    listener: Listener | None,
    consistency: Consistency,
) -> list[dict[str, Any]]:
    ns = stores.metadata.get_namespace(record.namespace_id)
    record.status, record.started_at = "processing", utc_now()
    stores.progress.publish(record)
    # No write at the start: a run is stored when it ends, and also mid-run once it has lasted
    # PROGRESS_SAVE_INTERVAL_S (so fast runs cost one write, slow ones stay observable).
    last_save = time.monotonic()
    limits = record.budget_limits
    # No run goes on without end: the server's deadline caps the retriever's own limit.
    deadline = stores.settings.execution_deadline_ms
    wanted = limits.get("max_time_ms")
    max_time = min(float(wanted), deadline) if isinstance(wanted, int | float) else deadline
    budget = Budget(limits.get("max_credits"), max_time)

    def progress(event: str, index: int, name: str, payload: dict[str, Any]) -> None:
        nonlocal last_save
        record.current_stage = name
        record.heartbeat_at = utc_now()
        if event == "stage_complete":
            record.stages_completed = index + 1
            record.stage_statistics = {**record.stage_statistics, name: payload["statistics"]}
        stores.progress.mark(record)  # what a poll on any worker reads, soon
        if time.monotonic() - last_save >= PROGRESS_SAVE_INTERVAL_S:
            stores.metadata.save_execution(record)
            last_save = time.monotonic()
        if listener is not None:
            listener(event, index, name, payload)

    try:
        collections = resolve_collections(stores, ns, collection_ids) if ns else []
        # Versions before any data is read: a write during the run makes the copy stale.
        reads = record.read_versions
        for col in collections:
            reads[col.collection_id] = collection_version(
                stores, record.namespace_id, col.collection_id, consistency
            )
        outcome = run_stages(
            stores=stores,
            namespace_id=record.namespace_id,
            collections=collections,
            stages=stages,
            inputs=record.inputs,
            request_filter=request_filter,
            budget=budget,
            progress=progress,
            reads=reads,
            consistency=consistency,
        )
    except NotFound as exc:  # a collection deleted after the retriever was made
        outcome = RunOutcome(error=exc.message, error_type=exc.code)
    record.stage_statistics = outcome.stage_statistics
    record.stages_completed = outcome.stages_completed
    record.warnings.extend(outcome.warnings)
    record.degraded.extend(outcome.degraded)
    record.interpretation["relaxations"] = [
        *record.interpretation.get("relaxations", []),
        *outcome.relaxations,
    ]
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
    stores.metadata.save_execution(record, results)  # finish() then discards the live run
    return results


def lookup(stores: Stores, namespace_id: str, execution_id: str) -> ExecutionRecord | None:
    """An execution as it is now: the live record while it runs (on whichever worker),
    else the stored one."""
    live = stores.live.get(execution_id)
    if live is not None and live.namespace_id == namespace_id:
        if not stores.live.orphans([execution_id]):
            return live
        stores.live.discard(execution_id)  # its worker is gone: the store has the truth
    return stores.metadata.get_execution(namespace_id, execution_id)


def _cached_run(stores: Stores, namespace_id: str, key: str) -> ExecutionRecord | None:
    execution_id = stores.results.get(key)
    if execution_id is None:
        return None
    run = stores.metadata.get_execution(namespace_id, execution_id)
    return run if run is not None and run.status == "completed" else None


def _replay(stores: Stores, source: ExecutionRecord, lookup_ms: float) -> ExecutionRecord:
    """A cache hit: a new record of the stored run's answer. Its time is the lookup's; it
    runs no stage, so it charges no credits."""
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
            "total_time_ms": lookup_ms,
            "credits_used": 0.0,
            "warnings": list(source.warnings),
            "trace_id": request_id.current(),
        }
    )
    stores.metadata.save_execution(hit)
    stores.metrics.finished(hit, ran=False)
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
        "created_at": iso(record.created_at),
        "completed_at": iso(record.completed_at),
        "current_stage": record.current_stage,
        "stages_completed": record.stages_completed,
        "total_stages": record.total_stages,
        "documents_retained": record.status == "completed",
        "total_returned": len(page),
        "trace_id": record.trace_id,
    }
    if record.cached_at is not None:
        body["cached_at"] = record.cached_at
    if record.request.get("replay_of"):
        body["replay_of"] = record.request["replay_of"]
    if legacy:
        body["results"] = list(page)
    return body
