"""Execution retention: stored runs are bounded by age and by count per namespace.

Every run is stored with its ranked results (about 12 KB for a 100-result run), so a server
under steady load grows its store by tens of MB a minute; the 10-minute drift run measured it
(BENCHMARKS.md, "No drift"). A thread deletes finished runs past the bounds in small
transactions, so serving never waits on a long delete.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from stagewise.ids import utc_now
from stagewise.services.context import Stores
from stagewise.services.periodic import Periodic

log = logging.getLogger("stagewise.retention")

PRUNE_BATCH = 2_000  # runs deleted per transaction
MAX_BATCHES = 50  # per round: a backlog is worked off over several rounds


def prune_once(stores: Stores) -> int:
    """Delete what lies past the retention bounds now; returns how many runs went."""
    settings = stores.settings
    days = settings.execution_retention_days
    keep = settings.execution_retention_per_namespace
    if not days and not keep:
        return 0
    before = utc_now() - timedelta(days=days) if days else None
    pruned = 0
    for _ in range(MAX_BATCHES):
        gone = stores.metadata.prune_executions(
            before=before, keep_per_namespace=keep or None, limit=PRUNE_BATCH
        )
        pruned += len(gone)
        stores.metrics.pruned.inc(len(gone))
        if len(gone) < PRUNE_BATCH:
            break
    return pruned


class Pruner(Periodic):
    """Runs prune_once at start, then every `execution_prune_every_s` seconds."""

    def __init__(self, stores: Stores) -> None:
        super().__init__("stagewise-pruner", stores.settings.execution_prune_every_s, at_start=True)
        self.stores = stores

    def tick(self) -> None:
        pruned = prune_once(self.stores)
        if pruned:
            log.info("%d executions past the retention bounds deleted", pruned)
