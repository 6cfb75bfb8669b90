"""Start-up recovery: bring every collection's index up to its source-of-truth watermark."""

from __future__ import annotations

import logging
import time

from stagewise.services.context import Stores
from stagewise.services.documents import replay_into_index

log = logging.getLogger("stagewise")


def recover(stores: Stores) -> int:
    replayed = 0
    threshold = stores.settings.optimize_on_start_min_points
    for ns in stores.metadata.list_namespaces():
        for col in stores.metadata.list_collections(ns.namespace_id):
            replayed += replay_into_index(stores, col)
            pending = stores.index.unindexed_points(col.collection_id)
            if threshold and pending >= threshold:
                started = time.perf_counter()
                stores.index.optimize(col.collection_id)
                log.info(
                    "indexed %d new points of %s in %.1f s",
                    pending,
                    col.collection_id,
                    time.perf_counter() - started,
                )
    return replayed
