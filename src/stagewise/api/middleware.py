"""Our ASGI middleware: pure ASGI, because Starlette's BaseHTTPMiddleware wraps every response
in a task and memory streams, which cost ~0.7 ms of CPU per request (bench/PERF_RESULTS.md)."""

from __future__ import annotations

import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stagewise.api.errors import error_response
from stagewise.errors import RateLimited
from stagewise.services.limits import retry_after_header


class BodySizeLimit:
    """Refuses a request body over the limit with a 413, whether it declares its length or
    arrives chunked. The body is read here (FastAPI reads it whole anyway) and replayed to
    the app, so a too-large one is refused before any of it is parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, size: str) -> None:
        response = error_response(
            413,
            f"Request body is {size} bytes; the limit is {self.max_bytes}",
            "PayloadTooLargeError",
            "payload_too_large",
            {"limit_bytes": self.max_bytes},
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.max_bytes:
                    await self._too_large(scope, receive, send, value.decode())
                    return
                break
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._too_large(scope, receive, send, f"more than {self.max_bytes}")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out `messages` first, then what the client sends next (a
    disconnect, which streaming responses listen for)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


class RateLimit:
    """Requests that carry an API key are counted per key (its hash: a key need not be valid
    to be counted, so guessing keys is limited too); past the limit a 429 with Retry-After.
    Requests without a key (health) are not counted: they are refused or cheap."""

    def __init__(self, app: ASGIApp, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The limiter is the stores' (in-process or shared by every worker), opened by the
        # lifespan; until then (and in tests that mount no lifespan) nothing is counted.
        stores = getattr(scope["app"].state, "stores", None) if "app" in scope else None
        if scope["type"] == "http" and self.enabled and stores is not None:
            for name, value in scope["headers"]:
                if name == b"authorization":
                    try:
                        stores.rate.check(hashlib.sha256(value).hexdigest()[:32])
                    except RateLimited as exc:
                        retry = float(exc.details["retry_after_seconds"])
                        response = error_response(
                            429, exc.message, exc.type, exc.code, dict(exc.details)
                        )
                        response.headers["Retry-After"] = retry_after_header(retry)
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)
