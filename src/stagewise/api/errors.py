"""The only place errors become HTTP responses, all in one body shape."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from stagewise.api.responses import JsonResponse
from stagewise.errors import StagewiseError

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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StagewiseError)
    async def _domain(_: Request, exc: StagewiseError) -> JsonResponse:
        return error_response(exc.status, exc.message, exc.type, exc.code, _jsonable(exc.details))

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
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, message, type_, code)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JsonResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            500, f"Internal error: {type(exc).__name__}", "InternalError", "internal_error"
        )
