"""Submitting tasks to Celery from a serving process."""

from __future__ import annotations

from stagewise.config import Settings
from stagewise.worker.celery_app import TASK_NAME, make_celery


class CeleryTaskQueue:
    def __init__(self, settings: Settings) -> None:
        self._app = make_celery(settings)
        self._queue = settings.broker_queue

    def submit(self, task_id: str) -> None:
        # The task row is committed before this call, so a worker always finds it.
        self._app.send_task(TASK_NAME, args=[task_id], queue=self._queue)

    def close(self) -> None:
        self._app.close()
