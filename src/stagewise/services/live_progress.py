"""Publishing this worker's runs to the live-execution registry (storage/state.py).

A run is published at once when it is accepted and when it starts; its progress (a stage
started or ended) is published by a flusher at most every `interval_s`, so the typical run,
over in a few milliseconds, costs the shared registry one write and one delete instead of
one per stage event, while a poll of a slow run still sees it move within `interval_s`.
"""

from __future__ import annotations

import logging
import threading

from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.storage.state import LiveExecutions

log = logging.getLogger("stagewise.execute")


class LiveProgress:
    def __init__(self, live: LiveExecutions, owner: str, interval_s: float = 0.05) -> None:
        self.live = live
        self.owner = owner
        self.interval_s = interval_s
        self._dirty: dict[str, ExecutionRecord] = {}
        # Held across every write to `live`: nothing is published after a run's end().
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, record: ExecutionRecord) -> None:
        """Now: the run was accepted, or started."""
        with self._lock:
            self._dirty.pop(record.execution_id, None)
            self.live.put(record, self.owner)

    def mark(self, record: ExecutionRecord) -> None:
        """The run moved on; the flusher publishes it soon."""
        with self._lock:
            self._dirty[record.execution_id] = record
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._flush_loop, name="stagewise-live", daemon=True
                )
                self._thread.start()

    def end(self, execution_id: str) -> None:
        """The run's final record is stored: it is live no more."""
        with self._lock:
            self._dirty.pop(execution_id, None)
            self.live.discard(execution_id)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                for execution_id, record in list(self._dirty.items()):
                    try:
                        self.live.put(record, self.owner)
                    except Exception:  # e.g. read mid-update by its runner: next round
                        log.debug("live progress of %s not published", execution_id)
                        continue
                    del self._dirty[execution_id]
