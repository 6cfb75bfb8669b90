"""Domain errors. Each has a stable `type` and `code`; api/errors.py maps them to HTTP."""

from __future__ import annotations

from typing import Any


class StagewiseError(Exception):
    status = 500
    type = "InternalError"
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details


class InvalidRequest(StagewiseError):
    status = 400
    type = "BadRequestError"
    code = "invalid_request"


class InvalidCursor(StagewiseError):
    """A cursor, scroll id or keyset marker that is tampered, expired, or from another query."""

    status = 400
    type = "BadRequestError"
    code = "invalid_cursor"


class Unauthorized(StagewiseError):
    status = 401
    type = "UnauthorizedError"
    code = "unauthorized"


class Forbidden(StagewiseError):
    status = 403
    type = "ForbiddenError"
    code = "forbidden"


class NotFound(StagewiseError):
    status = 404
    type = "NotFoundError"
    code = "not_found"

    def __init__(self, resource: str, identifier: str, **details: Any) -> None:
        super().__init__(
            f"{resource.capitalize()} '{identifier}' not found",
            code=f"{resource}_not_found",
            resource=resource,
            identifier=identifier,
            **details,
        )


class Conflict(StagewiseError):
    status = 409
    type = "ConflictError"
    code = "conflict"


class PayloadTooLarge(StagewiseError):
    status = 413
    type = "PayloadTooLargeError"
    code = "payload_too_large"


class ValidationFailed(StagewiseError):
    status = 422
    type = "ValidationError"
    code = "validation_error"


class FilterScanTooLarge(ValidationFailed):
    """A filter part the engine cannot evaluate would have Python read too many payloads."""

    code = "filter_scan_too_large"


class BudgetExceeded(StagewiseError):
    status = 422
    type = "BudgetExceededError"
    code = "budget_exceeded"


class StageFailed(StagewiseError):
    status = 500
    type = "StageFailedError"
    code = "stage_failed"


class Unavailable(StagewiseError):
    status = 503
    type = "ServiceUnavailableError"
    code = "unavailable"


class RateLimited(StagewiseError):
    """Past a per-key rate or concurrency limit; details.retry_after_seconds says when."""

    status = 429
    type = "RateLimitError"
    code = "rate_limited"
