"""Replay: run a past execution's inputs again, against today's index and retriever version,
and say how the ranking moved. The new run is an ordinary execution (stored, listed, paged);
it never answers from the result cache, since reusing the old answer would diff nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stagewise.domain.pipeline_records import ExecutionRecord, RetrieverRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import Conflict
from stagewise.services import execute as exe
from stagewise.services.context import Stores
from stagewise.services.pagination import RESULT_WINDOW, results_of
from stagewise.services.ranking_diff import ranking_diff

FINISHED = ("completed", "failed")


def replay(
    stores: Stores,
    *,
    ns: NamespaceRecord,
    retriever: RetrieverRecord,
    source: ExecutionRecord,
    depth: int,
    release: Callable[[], None],
) -> dict[str, Any]:
    """Run `source`'s inputs and filters through `retriever` as it is now; `release` (the
    caller's execution slot) is called once the run has ended, however it ends."""
    if source.status not in FINISHED:
        release()
        raise Conflict(
            f"Execution '{source.execution_id}' is still {source.status}; replay it once it "
            "has finished",
            code="execution_not_finished",
            execution_id=source.execution_id,
            status=source.status,
        )
    try:
        plan = exe.plan(
            stores,
            ns=ns,
            target=exe.Target.of(retriever),
            body={"inputs": source.inputs, "filters": source.filters},
            skip_cache=True,
        )
    except BaseException:
        release()
        raise
    plan.on_done = release
    assert plan.record is not None  # no pagination continuation and no cache: always a run
    plan.record.request["replay_of"] = source.execution_id
    record, _, _ = exe.finish(stores, plan)
    original = results_of(stores, source, 0, RESULT_WINDOW) if source.status == "completed" else []
    replayed = results_of(stores, record, 0, RESULT_WINDOW) if record.status == "completed" else []
    return {
        "execution_id": record.execution_id,
        "replay_of": source.execution_id,
        "status": record.status,
        "error": record.error,
        "inputs": source.inputs,
        "retriever_version": {
            "original": source.retriever_version,
            "replayed": record.retriever_version,
        },
        "total_results": {"original": len(original), "replayed": len(replayed)},
        # A failed replay has no ranking to compare: a diff would call every hit gone.
        "diff": ranking_diff(original, replayed, depth) if record.status == "completed" else None,
    }
