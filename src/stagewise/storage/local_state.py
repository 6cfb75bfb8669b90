"""In-process cross-request state (`storage/state.py`), for the one-process default.

Every run of this process lives here, so nothing is ever orphaned by a dead owner: a run is
an orphan only when it is not held at all. Request rate and concurrency stay in
`services/limits.py` (RateLimiter, ExecutionSlots), which already satisfy their protocols.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from stagewise.domain.pipeline_records import ExecutionRecord


class LocalLiveExecutions:
    """Running executions in a dict. Entries are deep copies, so a caller that keeps mutating
    its record is seen only when it puts again, as with a shared backend."""

    def __init__(self) -> None:
        self._runs: dict[str, tuple[ExecutionRecord, str]] = {}
        self._lock = threading.Lock()

    def put(self, record: ExecutionRecord, owner: str) -> None:
        snapshot = record.model_copy(deep=True)
        with self._lock:
            self._runs[record.execution_id] = (snapshot, owner)

    def get(self, execution_id: str) -> ExecutionRecord | None:
        with self._lock:
            entry = self._runs.get(execution_id)
        return None if entry is None else entry[0].model_copy(deep=True)

    def discard(self, execution_id: str) -> None:
        with self._lock:
            self._runs.pop(execution_id, None)

    def heartbeat(self, owner: str, ttl_s: float) -> None:
        """Nothing to do: the only owner is this process, alive while it answers."""

    def orphans(self, execution_ids: list[str]) -> list[str]:
        with self._lock:
            return [i for i in execution_ids if i not in self._runs]

    def close(self) -> None:
        """Nothing to release."""


class LocalResultCache:
    """key -> execution id, least recently used first out past `size`."""

    def __init__(self, size: int = 1024) -> None:
        self.size = max(1, size)
        self._runs: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            execution_id = self._runs.get(key)
            if execution_id is not None:
                self._runs.move_to_end(key)
            return execution_id

    def put(self, key: str, execution_id: str) -> None:
        with self._lock:
            self._runs[key] = execution_id
            self._runs.move_to_end(key)
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)


class LocalSecret:
    """Secrets kept in memory (tests; the server's file-backed secret is in cursors.py)."""

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}
        self._lock = threading.Lock()

    def get_or_create(self, name: str, make: Callable[[], str]) -> str:
        with self._lock:  # held across make(): a racing caller must not make a second one
            found = self._secrets.get(name)
            if found is None:
                found = self._secrets[name] = make()
            return found
