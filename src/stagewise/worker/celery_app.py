"""The Celery application: one task, `stagewise.run_task(task_id)`, which carries out a task
row of the SQL store (services/task_runner.py).

Delivery settings (measured, docs/ingestion.md): the message is acknowledged only after the
task returns (acks_late), a worker killed mid-task gets its message redelivered
(reject_on_worker_lost), and each worker process holds one message at a time (prefetch 1),
so a kill loses at most the task in hand, which runs again. Handlers are idempotent."""

from __future__ import annotations

from celery import Celery

from stagewise.config import Settings

TASK_NAME = "stagewise.run_task"


def make_celery(settings: Settings) -> Celery:
    app = Celery("stagewise", broker=settings.broker_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.broker_queue,
        broker_connection_retry_on_startup=True,
        # Celery 5 would warn that acks_late plus a lost worker could run a task twice;
        # that is what we want, since handlers are idempotent.
        worker_hijack_root_logger=False,
        # No remote control: its per-node queue (`<node>.celery.pidbox`) is exclusive, so a
        # second worker with the same node name on one host could not start consuming
        # (RESOURCE_LOCKED, measured), and its broadcasts would reach every deployment that
        # shares the broker. Workers are watched through the store (tasks), not `inspect`.
        worker_enable_remote_control=False,
    )
    return app
