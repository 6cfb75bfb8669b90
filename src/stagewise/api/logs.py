"""Log lines of `stagewise serve`: one JSON object per line (the default) or plain text
(docs/observability.md). The stdlib logging with two small formatters; uvicorn's access log
is switched off, the access lines are ours (api/observability.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from stagewise import request_id

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from `extra=` and is kept.
# uvicorn adds `color_message` (its message with ANSI colours) to some: dropped.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
    "request_id",
}


def _request_id(record: logging.LogRecord) -> str | None:
    # Formatted in the thread that logged: a request's thread, or one that runs in a copy
    # of its context (background executions), so the contextvar holds its id.
    rid = getattr(record, "request_id", None)
    return rid if isinstance(rid, str) else request_id.current()


class JsonFormatter(logging.Formatter):
    """{"timestamp", "level", "logger", "message", "request_id"?, extra fields...,
    "exception"?} on one line; timestamps in UTC with milliseconds."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = _request_id(record)
        if rid is not None:
            body["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD:
                body.setdefault(key, value)
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            body["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(body, default=str).decode()


class TextFormatter(logging.Formatter):
    """`2025-01-02 03:04:05,678 INFO stagewise.access [request id] message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # A copy: the record may go to other handlers, which must not see our "-".
        shown = logging.makeLogRecord({**vars(record), "request_id": _request_id(record) or "-"})
        return super().format(shown)


def log_config(log_format: LogFormat, level: str) -> dict[str, Any]:
    """A logging.config.dictConfig for uvicorn's `log_config`, which applies it in every
    worker process: everything on stderr in one format; uvicorn's access log off."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"stagewise": {"()": f"{formatter.__module__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "stagewise",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": level},
    }
