"""Request bodies parsed once, strictly, before FastAPI validates them (domain/json_values.py).

Every router uses StrictJSONRoute. Its handler reads the body and parses it with
`parse_request_json`, and hands the value to FastAPI through the Request's own JSON cache,
so the body is parsed once. A value the stores cannot hold is refused here with the 422 of
the error handler, before any service runs, so nothing is half-written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from stagewise.domain.json_values import JsonLimits, parse_request_json

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or media.endswith("+json")


def json_limits(request: Request) -> JsonLimits:
    settings = request.app.state.stores.settings
    return JsonLimits(max_depth=settings.max_json_depth, max_string_bytes=settings.max_text_bytes)


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH") and _is_json(request):
                body = await request.body()
                # Malformed JSON (a ValueError) is left to FastAPI's own parse: a 400.
                with contextlib.suppress(ValueError):
                    if body:
                        # Starlette's Request keeps its parsed JSON in `_json`; FastAPI reads
                        # it from there, so the body is parsed (and checked) only here.
                        request._json = parse_request_json(body, json_limits(request))
            return await handler(request)

        return strict
