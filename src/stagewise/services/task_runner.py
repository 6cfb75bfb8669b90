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
# Called when a task fails outside its handler's control (it raised, or its attempts ran
# out), so the resource it works on can end as FAILED too.
FailureHook = Callable[[IngestContext, TaskRecord, str], None]
HANDLERS: dict[str, tuple[TaskHandler, FailureHook | None]] = {}


def task_handler(
    task_type: str, on_failure: FailureHook | None = None
) -> Callable[[TaskHandler], TaskHandler]:
    def register(fn: TaskHandler) -> TaskHandler:
        HANDLERS[task_type] = (fn, on_failure)
        return fn

    return register


def _failed(ctx: IngestContext, task: TaskRecord, error: str) -> None:
    hook = HANDLERS.get(task.task_type, (None, None))[1]
    if hook is not None:
        try:
            hook(ctx, task, error)
        except Exception:  # the task's own FAILED status is still recorded
            log.exception("failure hook of task %s", task.task_id)


def run_task(ctx: IngestContext, task_id: str) -> TaskRecord | None:
    """Runs the task unless it already ended; returns it as stored afterwards."""
    task = ctx.ingest.get_task(task_id)
    if task is None or task.status in TERMINAL_STATUSES:
        return task  # deleted meanwhile, or a repeated delivery of a finished task
    handler = HANDLERS.get(task.task_type, (None, None))[0]
    now = utc_now()
    if task.attempts >= ctx.settings.max_task_attempts:
        gave_up = task.model_copy(
            update={
                "status": "FAILED",
                "error": f"gave up after {task.attempts} attempts (each ended with its worker)",
                "completed_at": now,
                "updated_at": now,
            }
        )
        ctx.ingest.update_task(gave_up)
        _failed(ctx, gave_up, gave_up.error or "")
        return gave_up
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
            _failed(ctx, task, outcome.error or "")
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
