"""create_app(settings): the FastAPI application; the lifespan opens and closes the stores."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from stagewise import __version__
from stagewise.api.errors import error_response, install_error_handlers
from stagewise.api.responses import JsonResponse
from stagewise.api.routes import (
    adhoc,
    byo,
    collections,
    documents,
    health,
    namespaces,
    retrievers,
)
from stagewise.config import Settings
from stagewise.services.context import open_stores
from stagewise.services.index_builder import IndexBuilder
from stagewise.services.startup import recover

log = logging.getLogger("stagewise")


class BodySizeLimit:
    """Refuses a request whose declared Content-Length is over the limit (413). Pure ASGI:
    Starlette's BaseHTTPMiddleware would wrap every response in a task and memory streams,
    which cost ~0.7 ms of CPU per request in the profiles (bench/PERF_RESULTS.md)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if value.isdigit() and int(value) > self.max_bytes:
                        response = error_response(
                            413,
                            f"Request body is {value.decode()} bytes; "
                            f"the limit is {self.max_bytes}",
                            "PayloadTooLargeError",
                            "payload_too_large",
                        )
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stores = open_stores(settings)
        recovered = recover(stores)
        if recovered:
            log.info("replayed %d writes into the search index", recovered)
        builder = IndexBuilder(
            stores,
            min_points=settings.index_build_min_points,
            poll_s=settings.index_build_poll_s,
        )
        builder.start()
        gc.freeze()  # what start-up loaded lives forever: keep it out of every collection
        app.state.stores = stores
        app.state.index_builder = builder
        try:
            yield
        finally:
            builder.stop()
            stores.close()

    app = FastAPI(
        title="Stagewise",
        version=__version__,
        description="A self-hosted retrieval engine that speaks the Mixpeek API.",
        lifespan=lifespan,
        default_response_class=JsonResponse,
    )
    install_error_handlers(app)

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)

    # adhoc before retrievers: its literal paths must win over /{retriever_id}.
    for module in (health, namespaces, byo, collections, documents, adhoc, retrievers):
        app.include_router(module.router)
    return app
