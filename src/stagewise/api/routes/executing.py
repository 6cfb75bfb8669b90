"""Answering an execute: synchronously, in the background (wait=false) or as SSE (stream)."""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import StreamingResponse

from stagewise.api.responses import JsonResponse
from stagewise.services import execute as exe
from stagewise.services.context import Stores
from stagewise.services.keys import Principal

_END = object()


def guarded(
    request: Request,
    principal: Principal,
    make_plan: Callable[[], exe.Plan],
    **answer: Any,
) -> JsonResponse | StreamingResponse:
    """An execute that holds one of its key's execution slots until its run has ended, in
    the background or streamed too; past the key's limit a 429 (docs/limits.md)."""
    release = request.app.state.execution_slots.acquire(principal.key_id)
    try:
        plan = make_plan()
        plan.on_done = release
        return respond(request.app.state.stores, plan, **answer)
    except BaseException:
        release()  # idempotent: a plan that finished released it already
        raise


def respond(
    stores: Stores,
    plan: exe.Plan,
    *,
    wait: bool,
    stream: bool,
    legacy: bool,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JsonResponse | StreamingResponse:
    if stream:
        return StreamingResponse(
            _stream(stores, plan), media_type="text/event-stream", headers=headers
        )
    if not wait and plan.done is None:
        record = exe.start_in_background(stores, plan)
        body = exe.execution_public(record, [], None, legacy=legacy)
    else:
        record, page, pagination = exe.finish(stores, plan)
        body = exe.execution_public(record, page, pagination, legacy=legacy)
    body["consistency_mode"] = plan.consistency.mode
    return JsonResponse({**body, **(extra or {})}, headers=headers)


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS) + b"\n\n"


async def _events(stores: Stores, plan: exe.Plan) -> AsyncIterator[bytes]:
    """One event per stage start/complete/error, then execution_complete or execution_error."""
    events: queue.Queue[Any] = queue.Queue()
    execution_id = plan.record.execution_id if plan.record else None
    total = plan.record.total_stages if plan.record else 0

    def listener(event: str, index: int, name: str, payload: dict[str, Any]) -> None:
        events.put(
            {
                "event_type": event,
                "execution_id": execution_id,
                "stage_name": name,
                "stage_index": index,
                "total_stages": total,
                "statistics": payload.get("statistics"),
                "documents_count": payload.get("count"),
                "error": payload.get("error"),
            }
        )

    def worker() -> None:
        try:
            record, page, pagination = exe.finish(stores, plan, listener)
            body = exe.execution_public(record, page, pagination)
            kind = "execution_complete" if record.status == "completed" else "execution_error"
            events.put(
                {
                    "event_type": kind,
                    "execution_id": record.execution_id,
                    "total_stages": record.total_stages,
                    "documents": page,
                    "statistics": body["stage_statistics"],
                    "budget_used": body["budget"],
                    "pagination": pagination,
                    "error": record.error,
                }
            )
        except Exception as exc:  # reported to the client, not swallowed
            events.put(
                {
                    "event_type": "execution_error",
                    "execution_id": execution_id,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
        finally:
            events.put(_END)

    # In a copy of the request's context: the run's logs carry the id of the request.
    threading.Thread(target=contextvars.copy_context().run, args=(worker,), daemon=True).start()
    loop = asyncio.get_running_loop()
    while True:
        item = await loop.run_in_executor(None, events.get)
        if item is _END:
            return
        yield _sse(item)


async def _stream(stores: Stores, plan: exe.Plan) -> AsyncIterator[bytes]:
    """The events; a stream closed before it began still releases the plan's slot."""
    began = False
    try:
        async for chunk in _events(stores, plan):
            began = True
            yield chunk
    finally:
        if not began and plan.on_done is not None:
            plan.on_done()
