"""create_app(settings): the FastAPI application; the lifespan opens and closes the stores."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.responses import Response

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
from stagewise.services.startup import recover

log = logging.getLogger("stagewise")


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stores = open_stores(settings)
        recovered = recover(stores)
        if recovered:
            log.info("replayed %d writes into the search index", recovered)
        app.state.stores = stores
        try:
            yield
        finally:
            stores.close()

    app = FastAPI(
        title="Stagewise",
        version=__version__,
        description="A self-hosted retrieval engine that speaks the Mixpeek API.",
        lifespan=lifespan,
        default_response_class=JsonResponse,
    )
    install_error_handlers(app)

    @app.middleware("http")
    async def limit_body_size(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_request_bytes:
            return error_response(
                413,
                f"Request body is {length} bytes; the limit is {settings.max_request_bytes}",
                "PayloadTooLargeError",
                "payload_too_large",
            )
        return await call_next(request)

    # adhoc before retrievers: its literal paths must win over /{retriever_id}.
    for module in (health, namespaces, byo, collections, documents, adhoc, retrievers):
        app.include_router(module.router)
    return app
