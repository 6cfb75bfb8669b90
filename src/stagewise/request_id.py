"""The id of the request being served, for logs and execution records (docs/observability.md).

Set by the API's outermost middleware (api/observability.py) in a contextvar, so every layer
reads it without passing it along; work handed to another thread carries it by running in a
copy of the request's context (`contextvars.copy_context`)."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar, Token

HEADER = "X-Request-ID"
MAX_LENGTH = 64  # the executions.trace_id column's width
# What an incoming id may hold: printable, no spaces or quotes, so it is safe in a log line,
# a header and a label. Anything else is replaced, not repaired.
_VALID = re.compile(rb"[A-Za-z0-9._:-]{1,%d}" % MAX_LENGTH)

_current: ContextVar[str | None] = ContextVar("stagewise_request_id", default=None)


def current() -> str | None:
    """The id of the request this code serves (None outside any request)."""
    return _current.get()


def accept(incoming: bytes | None) -> str:
    """The incoming id when it is valid, else a new one (32 hex characters)."""
    if incoming is not None and _VALID.fullmatch(incoming):
        return incoming.decode("ascii")
    return secrets.token_hex(16)


def bind(request_id: str | None) -> Token[str | None]:
    """Makes `request_id` current; returns the token `unbind` takes."""
    return _current.set(request_id)


def unbind(token: Token[str | None]) -> None:
    _current.reset(token)
