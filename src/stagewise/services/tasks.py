"""Tasks as a caller sees them. The task routes carry no namespace, so a key bound to one
namespace sees that namespace's tasks only, and anything else is a 404 (never a 403 that
would confirm the id exists)."""

from __future__ import annotations

from stagewise.domain.ingest_records import TERMINAL_STATUSES, TaskRecord
from stagewise.errors import NotFound
from stagewise.services import batches
from stagewise.services.context import Stores
from stagewise.services.keys import Principal


def visible_namespaces(principal: Principal) -> set[str] | None:
    return None if principal.namespace_id is None else {principal.namespace_id}


def get_task(stores: Stores, principal: Principal, task_id: str) -> TaskRecord:
    task = stores.ingest.get_task(task_id)
    scope = visible_namespaces(principal)
    if task is None or (scope is not None and task.namespace_id not in scope):
        raise NotFound("task", task_id)
    return task


def list_tasks(
    stores: Stores,
    principal: Principal,
    *,
    status: str | None,
    task_type: str | None,
    offset: int,
    limit: int,
) -> tuple[list[TaskRecord], int]:
    scope = visible_namespaces(principal)
    return stores.ingest.list_tasks(
        sorted(scope) if scope is not None else None,
        status=status,
        task_type=task_type,
        offset=offset,
        limit=limit,
    )


def kill_task(stores: Stores, principal: Principal, task_id: str) -> TaskRecord:
    """Cancels a task that has not ended; a batch task stops after its current slice.
    Idempotent: killing an ended task changes nothing."""
    task = get_task(stores, principal, task_id)
    if task.status in TERMINAL_STATUSES:
        return task
    batch_id = task.additional_data.get("batch_id")
    batch = stores.ingest.get_batch(str(batch_id)) if batch_id else None
    if batch is not None and batch.status not in TERMINAL_STATUSES:
        return batches.cancel(stores, batch, "its task was canceled") or task
    return batches.cancel_task(stores, task, "canceled by request")
