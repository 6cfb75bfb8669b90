"""Carries out one task row: PENDING -> IN_PROGRESS -> COMPLETED | FAILED.

Handlers are registered per task_type and must be idempotent: a task may be delivered twice
(Celery with acks_late redelivers a task whose worker died), and a rerun must write each
document once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stagewise.domain.ingest_records import TERMINAL_STATUSES, TaskRecord
from stagewise.ids import utc_now
from stagewise.services.ingest_context import IngestContext

log = logging.getLogger("stagewise.tasks")


@dataclass
class TaskOutcome:
    status: str = "COMPLETED"  # COMPLETED | COMPLETED_WITH_ERRORS | FAILED | CANCELED
    error: str | None = None
    outputs: list[Any] = field(default_factory=list)
    additional_data: dict[str, Any] = field(default_factory=dict)


TaskHandler = Callable[[IngestContext, TaskRecord], TaskOutcome]
HANDLERS: dict[str, TaskHandler] = {}


def task_handler(task_type: str) -> Callable[[TaskHandler], TaskHandler]:
    def register(fn: TaskHandler) -> TaskHandler:
        HANDLERS[task_type] = fn
        return fn

    return register


def run_task(ctx: IngestContext, task_id: str) -> TaskRecord | None:
    """Runs the task unless it already ended; returns it as stored afterwards."""
    task = ctx.ingest.get_task(task_id)
    if task is None or task.status in TERMINAL_STATUSES:
        return task  # deleted meanwhile, or a repeated delivery of a finished task
    handler = HANDLERS.get(task.task_type)
    now = utc_now()
    task = task.model_copy(
        update={
            "status": "IN_PROGRESS",
            "attempts": task.attempts + 1,
            "worker_id": ctx.worker_id,
            "started_at": task.started_at or now,
            "updated_at": now,
        }
    )
    ctx.ingest.update_task(task)
    if handler is None:
        outcome = TaskOutcome("FAILED", f"no handler for task type '{task.task_type}'")
    else:
        try:
            outcome = handler(ctx, task)
        except Exception as exc:  # the task fails; the worker goes on with the next one
            log.exception("task %s failed", task_id)
            outcome = TaskOutcome("FAILED", f"{type(exc).__name__}: {exc}")
    current = ctx.ingest.get_task(task_id) or task
    done = current.model_copy(
        update={
            "status": outcome.status,
            "error": outcome.error,
            "outputs": outcome.outputs or current.outputs,
            "additional_data": {**current.additional_data, **outcome.additional_data},
            "completed_at": utc_now(),
            "updated_at": utc_now(),
        }
    )
    ctx.ingest.update_task(done)
    return done
