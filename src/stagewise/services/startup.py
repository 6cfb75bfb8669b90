"""Start-up recovery: close the runs a previous process left unfinished, and bring every
collection's index up to its source-of-truth watermark."""

from __future__ import annotations

import logging

from stagewise.ids import utc_now
from stagewise.services.collections import all_collections
from stagewise.services.context import Stores
from stagewise.services.documents import replay_into_index

log = logging.getLogger("stagewise.startup")

INTERRUPTED = "interrupted by server restart"
_UNFINISHED = ["pending", "processing"]
_MODES = ("named", "adhoc")  # every ExecutionRecord.mode
_PAGE = 500


def recover(stores: Stores) -> int:
    """Fails interrupted executions, then replays writes the index missed; HNSW building is
    left to the IndexBuilder, in the background, so start-up takes seconds at any size.
    Returns the number of writes replayed."""
    failed = fail_interrupted_executions(stores)
    if failed:
        log.warning("%d executions were unfinished at start-up: marked failed", failed)
    return sum(replay_into_index(stores, col) for col in all_collections(stores))


def fail_interrupted_executions(stores: Stores) -> int:
    """Every run still pending or processing in the store belonged to a process that is
    gone: runs live in this process's worker pool (services/execute.py) and nothing resumes
    them, so each is marked failed rather than left pending for good (and listed as
    `running` by the list filter). This holds while one server owns its store, as the
    embedded default does (its index shards are locked by one process); servers sharing a
    PostgreSQL store would need an owner per run here."""
    failed = 0
    for ns in stores.metadata.list_namespaces():
        for mode in _MODES:
            done: set[str] = set()
            while True:
                # The list reads committed records (the write-behind queue is drained
                # first), so the runs marked in the previous round are no longer listed.
                rows, _ = stores.metadata.list_executions(
                    ns.namespace_id,
                    retriever_id=None,
                    mode=mode,
                    statuses=_UNFINISHED,
                    descending=False,
                    limit=_PAGE,
                )
                # A record listed again was not written: stop rather than loop on it.
                todo = [x for x in rows if x.execution_id not in done]
                if not todo:
                    if rows:
                        log.error("%d unfinished executions could not be failed", len(rows))
                    break
                now = utc_now()
                for x in todo:
                    x.status, x.error = "failed", INTERRUPTED
                    x.completed_at, x.current_stage = now, None
                stores.metadata.save_executions([(x, None) for x in todo])
                done.update(x.execution_id for x in todo)
                failed += len(todo)
    return failed
