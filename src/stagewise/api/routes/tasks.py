"""Tasks (Bearer only: a task names its namespace)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from stagewise.api.deps import CurrentKey, StoresDep
from stagewise.api.responses import JsonResponse
from stagewise.api.routes.paging import PageQuery, page_query
from stagewise.api.schemas.batch_responses import TaskKilled, TaskList, TaskResponse
from stagewise.api.schemas.public import counted_page
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.services import tasks as svc
from stagewise.services.batch_views import task_public

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], route_class=StrictJSONRoute)


@router.post("/list", response_model=TaskList)
def list_tasks(
    stores: StoresDep,
    principal: CurrentKey,
    pq: Annotated[PageQuery, Depends(page_query)],
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> JsonResponse:
    raw = body or {}
    limit, offset, _, _ = pq.resolve(None, default_limit=100)
    status, task_type = raw.get("status"), raw.get("task_type")
    items, total = svc.list_tasks(
        stores,
        principal,
        status=status if isinstance(status, str) else None,
        task_type=task_type if isinstance(task_type, str) else None,
        offset=offset,
        limit=limit,
    )
    return JsonResponse(
        counted_page([task_public(t) for t in items], total=total, limit=limit, offset=offset)
    )


@router.get("/{task_id}", response_model=TaskResponse)
def get_task(task_id: str, stores: StoresDep, principal: CurrentKey) -> JsonResponse:
    return JsonResponse(task_public(svc.get_task(stores, principal, task_id)))


@router.delete("/{task_id}", response_model=TaskKilled)
def kill_task(task_id: str, stores: StoresDep, principal: CurrentKey) -> JsonResponse:
    principal.require_write()
    task = svc.kill_task(stores, principal, task_id)
    return JsonResponse(
        {"success": True, "message": f"Task is {task.status}", "task_id": task.task_id}
    )
