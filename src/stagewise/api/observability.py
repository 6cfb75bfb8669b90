"""The outermost middleware: the request id, the latency histogram and the access log
(docs/observability.md). Pure ASGI, as the others (api/middleware.py)."""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stagewise import request_id
from stagewise.services.metrics import BUCKETS

access_log = logging.getLogger("stagewise.access")

UNMATCHED = "unmatched"  # every path no route serves: one label value, whatever the path
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Request latency by method, route template and status class. A label from the raw
    path would make a series per id: unbounded cardinality."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram(
            "stagewise_http_request_duration_seconds",
            "Time from a request's arrival to its response's last byte, by route template",
            ["method", "route", "status_class"],
            buckets=BUCKETS,
            registry=registry,
        )
        # labels() validates and locks on every call: the children are kept here instead.
        self._children: dict[tuple[str, str, int], Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        # Keyed by the label, not the raw method: made-up methods must not grow the dict.
        key = (method if method in _METHODS else "other", route, status // 100)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.latency.labels(key[0], route, f"{key[2]}xx")
        child.observe(seconds)


class Observe:
    """Every response carries `X-Request-ID`: the client's, when it is a valid one
    (request_id.accept), else a new one. The id is current while the request is served, so
    logs and execution records carry it. Once the response is sent its latency is observed
    under the route the router matched, and one access line is logged."""

    def __init__(self, app: ASGIApp, http: HttpMetrics) -> None:
        self.app = app
        self.http = http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value
                break
        rid = request_id.accept(incoming)
        header = (b"x-request-id", rid.encode())
        status = 500  # what the client gets if the app raises before it answers
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = request_id.bind(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            # The router leaves the route it matched in the scope (a 405 too): its template.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.http.observe(scope["method"], route, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                _access_line(scope, route, status, seconds)
            request_id.unbind(token)


def _access_line(scope: Scope, route: str, status: int, seconds: float) -> None:
    """One access line. The record is made and handled directly: `Logger.info` would also
    walk the stack to find its caller (~10 us a request), which says nothing here."""
    duration_ms = round(seconds * 1000.0, 3)
    method, path = scope["method"], scope["path"]
    # The path is decoded: %0A is a newline, which must not start a forged text log line.
    shown = path if path.isprintable() else path.encode("unicode_escape").decode("ascii")
    record = access_log.makeRecord(
        access_log.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %d %.1fms",
        (method, shown, status, duration_ms),
        None,
        extra={
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
        },
    )
    access_log.handle(record)
