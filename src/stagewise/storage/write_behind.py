"""Execution records written behind the request, and recent ones served from memory.

A finished execution is handed to one writer thread, which commits what has queued up in
one transaction, so a search request no longer waits on its own SQL write (~0.8 ms of CPU per
execution in the profiles). Until it is written, and for a while after, the record and its
ranked results are answered from memory, so GET execution detail of a fresh run costs no SQL
read. Reads that scan many executions (lists and counts) wait for the queue to drain first,
so every read sees every acknowledged run.

A pending record is never written behind: it is the acknowledgement of a background run
(`wait=false`), a promise whose only trace would otherwise be in this process, so it is
committed before `save_execution` returns. What a crash can lose is the last few
milliseconds of the other records: a finished blocking run (its answer was already served)
or a run's progress and outcome; start-up then fails every run it finds pending or
processing (services/startup.py). Documents and retrievers are never delayed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.storage.protocols import MetadataStore

log = logging.getLogger("stagewise.storage")

Results = Sequence[dict[str, Any]] | None
_TERMINAL = ("completed", "failed")
_PENDING = "pending"
_BATCH = 64
_MAX_RECENT = 5_000  # executions remembered, whatever their result rows


class WriteBehindExecutions:
    """A MetadataStore wrapper; everything but execution reads and writes goes straight
    through. `recent_rows` bounds the result rows kept in memory after they are written."""

    def __init__(self, inner: MetadataStore, *, recent_rows: int = 10_000) -> None:
        self.inner = inner
        self._recent_rows = recent_rows
        self._rows = 0
        # execution_id -> (record, results or None when only the record is known)
        self._recent: OrderedDict[str, tuple[ExecutionRecord, Results]] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[ExecutionRecord, Results] | None] = queue.Queue(1024)
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name="stagewise-exec-writer")
        self._thread.daemon = True
        self._thread.start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    # writes
    def save_execution(self, x: ExecutionRecord, results: Results = None) -> None:
        # A run still in progress keeps changing its record, so it is queued as a snapshot;
        # a finished record is never changed again and is queued as it is.
        record = x if x.status in _TERMINAL else x.model_copy(deep=True)
        snapshot = None if results is None else list(results)
        if record.status == _PENDING:
            # Committed before returning (see the module docstring). Pending is a run's first
            # state, so nothing of it is normally queued; if it may be, that goes first, so
            # the store never steps back to an older record.
            with self._lock:
                known = record.execution_id in self._recent
            if known:
                self.flush()
            self.inner.save_execution(record, snapshot)
            self._replace(record, snapshot)
            return
        self._replace(record, snapshot)
        if self._closed:
            # Shutting down: nothing drains the queue any more, and a put would block the
            # run's thread for good once it is full. Start-up fails the unfinished run.
            log.warning("server stopping: execution %s not written", record.execution_id)
            return
        self._queue.put((record, snapshot))

    def close_unfinished(self, records: Sequence[ExecutionRecord]) -> int:
        self.flush()  # decided against what is stored, so what is queued goes first
        stored = self.inner.close_unfinished(records)
        self._forget(x.execution_id for x in records)  # reads go to the store's record
        return stored

    def _forget(self, execution_ids: Iterable[str]) -> None:
        with self._lock:
            for execution_id in execution_ids:
                known = self._recent.pop(execution_id, None)
                if known is not None:
                    self._rows -= len(known[1] or ())

    def _replace(self, record: ExecutionRecord, snapshot: Results) -> None:
        with self._lock:
            known = self._recent.pop(record.execution_id, None)
            if known is not None:
                self._rows -= len(known[1] or ())
            # a record-only update keeps the snapshot already known
            kept = snapshot if snapshot is not None or known is None else known[1]
            self._remember(record, kept)

    def save_executions(self, items: Sequence[tuple[ExecutionRecord, Results]]) -> None:
        for record, results in items:
            self.save_execution(record, results)

    def _remember(self, record: ExecutionRecord, results: Results) -> None:
        self._recent[record.execution_id] = (record, results)
        self._rows += len(results or ())
        while (self._rows > self._recent_rows or len(self._recent) > _MAX_RECENT) and len(
            self._recent
        ) > 1:
            _, (_, dropped) = self._recent.popitem(last=False)
            self._rows -= len(dropped or ())

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            items = [i for i in batch if i is not None]
            try:
                if items:
                    self.inner.save_executions(items)
            except Exception:  # keep the writer alive; the records stay readable from memory
                log.exception("writing %d execution records failed", len(items))
            finally:
                for _ in batch:
                    self._queue.task_done()
            if len(items) < len(batch):
                return

    def flush(self) -> None:
        """Block until every queued record is written."""
        self._queue.join()

    # reads
    def get_execution(self, namespace_id: str, execution_id: str) -> ExecutionRecord | None:
        with self._lock:
            known = self._recent.get(execution_id)
        if known is not None:
            return known[0] if known[0].namespace_id == namespace_id else None
        record = self.inner.get_execution(namespace_id, execution_id)
        if record is not None and record.status in _TERMINAL:
            with self._lock:  # a finished run never changes: later reads come from memory
                if execution_id not in self._recent:
                    self._remember(record, None)
        return record

    def get_execution_results(
        self, execution_id: str, offset: int, limit: int
    ) -> list[dict[str, Any]]:
        with self._lock:
            known = self._recent.get(execution_id)
        if known is not None and known[1] is not None:
            return list(known[1][offset : offset + limit])
        self.flush()  # a record-only entry: its snapshot may still be on the way
        return self.inner.get_execution_results(execution_id, offset, limit)

    def list_executions(
        self, namespace_id: str, **kwargs: Any
    ) -> tuple[list[ExecutionRecord], int]:
        self.flush()
        return self.inner.list_executions(namespace_id, **kwargs)

    def prune_executions(self, **bounds: Any) -> list[str]:
        self.flush()  # judged against what is stored, so what is queued goes first
        pruned = self.inner.prune_executions(**bounds)
        self._forget(pruned)
        return pruned

    # deletes cascade to executions in SQL: write what is queued first, then forget it
    def _forget_all(self) -> None:
        self.flush()
        with self._lock:
            self._recent.clear()
            self._rows = 0

    def delete_retriever(self, retriever_id: str) -> None:
        self._forget_all()
        self.inner.delete_retriever(retriever_id)

    def delete_namespace(self, namespace_id: str) -> None:
        self._forget_all()
        self.inner.delete_namespace(namespace_id)

    def close(self) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self.inner.close()
