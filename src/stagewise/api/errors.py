"""The only place errors become HTTP responses, all in one body shape."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stagewise.api.responses import JsonResponse
from stagewise.errors import StagewiseError
from stagewise.services.limits import retry_after_header

log = logging.getLogger("stagewise.api")

_HTTP_TYPES = {
    400: ("BadRequestError", "bad_request"),
    401: ("UnauthorizedError", "unauthorized"),
    403: ("ForbiddenError", "forbidden"),
    404: ("NotFoundError", "not_found"),
    405: ("MethodNotAllowedError", "method_not_allowed"),
    409: ("ConflictError", "conflict"),
    413: ("PayloadTooLargeError", "payload_too_large"),
    415: ("UnsupportedMediaTypeError", "unsupported_media_type"),
    422: ("ValidationError", "validation_error"),
    429: ("RateLimitError", "rate_limited"),
}


def error_body(
    status: int, message: str, type_: str, code: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "success": False,
        "status": status,
        "error": {"message": message, "type": type_, "code": code, "details": details or {}},
    }


def error_response(
    status: int, message: str, type_: str, code: str, details: dict[str, Any] | None = None
) -> JsonResponse:
    return JsonResponse(error_body(status, message, type_, code, details), status_code=status)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves on this path. Starlette's own Allow names only the
    first route that matched the path, while a path may have one route per method."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        match, _ = route.matches({**request.scope, "method": ""})
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StagewiseError)
    async def _domain(_: Request, exc: StagewiseError) -> JsonResponse:
        response = error_response(
            exc.status, exc.message, exc.type, exc.code, _jsonable(exc.details)
        )
        retry = exc.details.get("retry_after_seconds")
        if isinstance(retry, int | float):
            response.headers["Retry-After"] = retry_after_header(retry)
        return response

    @app.exception_handler(sqlalchemy.exc.DBAPIError)
    async def _store_down(_: Request, exc: sqlalchemy.exc.DBAPIError) -> JsonResponse:
        if not exc.connection_invalidated:  # not a lost connection: a bug, a real 500
            raise exc
        log.warning("the metadata store dropped a connection: %s", exc.orig)
        response = error_response(
            503,
            "The metadata store is unavailable (a connection was lost); retry shortly",
            "ServiceUnavailableError",
            "store_unavailable",
            {"retry_after_seconds": 1},
        )
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JsonResponse:
        errors = [
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return error_response(
                400,
                "The request body is not valid JSON",
                "BadRequestError",
                "invalid_json",
                {"errors": errors},
            )
        summary = "; ".join(
            f"{'.'.join(e['loc'][1:] if len(e['loc']) > 1 else e['loc'])}: {e['msg']}"
            for e in errors[:5]
        )
        return error_response(
            422,
            f"Invalid request: {summary}",
            "ValidationError",
            "validation_error",
            {"errors": errors},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JsonResponse:
        type_, code = _HTTP_TYPES.get(exc.status_code, ("HttpError", "http_error"))
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route for {request.method} {request.url.path}"
            code = "route_not_found"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
            # RFC 9110: a 405 names the methods the resource supports.
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        response = error_response(exc.status_code, message, type_, code)
        response.headers.update(headers)
        return response


class UnhandledErrors:
    """A bug (an exception no handler knows) becomes a 500 in the error shape, and the
    connection stays usable. Starlette's own last-resort handler re-raises after answering,
    which makes the server drop the kept-alive connection, so the client's next request
    failed too. Once a response has started nothing can be sent in its place: re-raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(
                500, f"Internal error: {type(exc).__name__}", "InternalError", "internal_error"
            )
            await response(scope, receive, send)
