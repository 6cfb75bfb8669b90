"""Where tasks run: a bounded in-process pool (the embedded default) or Celery workers
(`broker_url`). Either way a task is a row in the SQL store, and a worker only needs its id;
services/task_runner.py carries out the row. Delivery may repeat, so handlers are idempotent."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol


class TaskQueue(Protocol):
    def submit(self, task_id: str) -> None: ...
    def close(self) -> None: ...


class InProcessTaskQueue:
    """A fixed number of threads beside the request path. Few threads, so a large batch
    queues here instead of taking the CPU from searches."""

    def __init__(self, run: Callable[[str], None], threads: int) -> None:
        self._run = run
        self._pool = ThreadPoolExecutor(threads, "stagewise-ingest")

    def submit(self, task_id: str) -> None:
        self._pool.submit(self._run, task_id)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
