"""What a failed qdrant-client call means to Stagewise: an unknown collection (KeyError, as
the embedded transport raises), or an unreachable server (503 Unavailable, Retry-After)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, NoReturn
from urllib.parse import urlsplit, urlunsplit

import httpx
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from stagewise.errors import Unavailable

RETRY_AFTER_S: Final = 1  # a restart or a failover takes seconds; clients retry soon
# gRPC status names that mean "not now" rather than "wrong request" (REST is the default
# transport; these cover a client built with prefer_grpc=True)
_GRPC_TRANSIENT: Final = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL"}
)


def redact_url(url: str) -> str:
    """A URL safe to show: no user info, query or fragment (a key may hide there)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _grpc_code(exc: BaseException) -> str | None:
    # grpcio ships no type stubs: recognised by duck typing, not imported
    if not type(exc).__module__.startswith("grpc"):
        return None
    code = getattr(exc, "code", None)
    if not callable(code):
        return None
    value: Any = code()
    return str(getattr(value, "name", value))


class ErrorMapper:
    """Turns qdrant-client exceptions into Stagewise's, naming the server."""

    def __init__(self, url: str) -> None:
        self.url = redact_url(url)

    def unavailable(self, reason: str, retry_after_s: float = RETRY_AFTER_S) -> Unavailable:
        return Unavailable(
            f"The Qdrant server at {self.url} is unavailable: {reason}",
            code="vector_index_unavailable",
            qdrant_url=self.url,
            retry_after_seconds=retry_after_s,
        )

    @contextmanager
    def calls(self, collection_id: str | None = None) -> Iterator[None]:
        """Around qdrant-client calls on one collection (None: not about a collection)."""
        try:
            yield
        except ResourceExhaustedResponse as exc:
            raise self.unavailable(f"rate-limited ({exc})", max(1, exc.retry_after_s)) from exc
        except UnexpectedResponse as exc:
            self._unexpected(exc, collection_id)
        except ResponseHandlingException as exc:  # connect errors, timeouts, bad answers
            raise self.unavailable(f"{type(exc.source).__name__}: {exc.source}") from exc
        except httpx.TransportError as exc:
            raise self.unavailable(f"{type(exc).__name__}: {exc}") from exc
        except ValueError as exc:
            # local mode (an in-process engine) names an unknown collection in a ValueError
            if collection_id is not None and str(exc).endswith("not found"):
                raise KeyError(collection_id) from exc
            raise
        except Exception as exc:
            code = _grpc_code(exc)
            if code == "NOT_FOUND" and collection_id is not None:
                raise KeyError(collection_id) from exc
            if code in _GRPC_TRANSIENT:
                raise self.unavailable(f"gRPC {code}") from exc
            raise

    def _unexpected(self, exc: UnexpectedResponse, collection_id: str | None) -> NoReturn:
        status = exc.status_code
        if status == 404 and collection_id is not None:
            raise KeyError(collection_id) from exc
        if status is None or status >= 500 or status in (408, 429):
            raise self.unavailable(f"HTTP {status} {exc.reason_phrase}".strip()) from exc
        raise exc
