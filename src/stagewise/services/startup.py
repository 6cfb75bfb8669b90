"""Start-up recovery and the upkeep of runs whose worker is gone.

A run lives in the process that carries it out (its worker pool). If that process dies, the
run will never end, so it is failed rather than left pending for good (and listed as
`running`). One process that owns its store (the embedded default) fails, at start-up,
every run it finds unfinished. Workers sharing a store ask the shared live-execution
registry which runs no live worker holds, and fail only those, at start-up and then every
`REAP_EVERY_S`, while each worker's heartbeat marks its own runs as alive.
"""

from __future__ import annotations

import logging

from stagewise.ids import utc_now
from stagewise.services.context import Stores
from stagewise.services.periodic import Periodic

log = logging.getLogger("stagewise.startup")

INTERRUPTED = "interrupted by server restart"
WORKER_LOST = "interrupted: the worker running it stopped"
_UNFINISHED = ["pending", "processing"]
_MODES = ("named", "adhoc")  # every ExecutionRecord.mode
_PAGE = 500
HEARTBEAT_EVERY_S = 2.0
HEARTBEAT_TTL_S = 10.0
REAP_EVERY_S = 10.0


def recover(stores: Stores) -> int:
    """Fails interrupted executions, then brings the index up to the log; HNSW building is
    left to the IndexBuilder, in the background, so start-up takes seconds at any size.
    Returns the number of writes applied."""
    stores.live.heartbeat(stores.worker_id, HEARTBEAT_TTL_S)
    failed = fail_interrupted_executions(stores)
    if failed:
        log.warning("%d executions were unfinished at start-up: marked failed", failed)
    return stores.follower.sweep()


def fail_interrupted_executions(stores: Stores) -> int:
    """Fails every stored run that is unfinished and held by no live worker."""
    error = WORKER_LOST if stores.settings.redis_url else INTERRUPTED
    failed = 0
    for ns in stores.metadata.list_namespaces():
        for mode in _MODES:
            seen: set[str] = set()
            offset = 0
            while True:
                rows, _ = stores.metadata.list_executions(
                    ns.namespace_id,
                    retriever_id=None,
                    mode=mode,
                    statuses=_UNFINISHED,
                    descending=False,
                    limit=_PAGE,
                    offset=offset,
                )
                todo = [x for x in rows if x.execution_id not in seen]
                if not todo:
                    break
                seen.update(x.execution_id for x in todo)
                orphans = set(stores.live.orphans([x.execution_id for x in todo]))
                now = utc_now()
                closing = []
                for x in todo:
                    if x.execution_id in orphans:
                        x.status, x.error = "failed", error
                        x.completed_at, x.current_stage = now, None
                        closing.append(x)
                closed = stores.metadata.close_unfinished(closing)
                for x in closing:
                    stores.live.discard(x.execution_id)
                failed += closed
                # Runs still held stay listed: page past them (the failed ones drop out).
                offset += len(todo) - closed
    return failed


class Reaper(Periodic):
    """Keeps this worker's heartbeat and fails the runs of workers that are gone."""

    def __init__(self, stores: Stores) -> None:
        super().__init__("stagewise-reaper", HEARTBEAT_EVERY_S)
        self.stores = stores
        self._since_reap = 0.0

    def tick(self) -> None:
        self.stores.live.heartbeat(self.stores.worker_id, HEARTBEAT_TTL_S)
        self._since_reap += HEARTBEAT_EVERY_S
        if self._since_reap >= REAP_EVERY_S:
            self._since_reap = 0.0
            failed = fail_interrupted_executions(self.stores)
            if failed:
                log.warning("%d executions of a stopped worker marked failed", failed)
