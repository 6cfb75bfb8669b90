"""create_app(settings): the FastAPI application; the lifespan opens and closes the stores."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from stagewise import __version__
from stagewise.api.errors import UnhandledErrors, install_error_handlers
from stagewise.api.memory import Trimmer
from stagewise.api.middleware import BodySizeLimit, RateLimit
from stagewise.api.observability import HttpMetrics, Observe
from stagewise.api.responses import JsonResponse
from stagewise.api.routes import (
    adhoc,
    batches,
    bucket_objects,
    buckets,
    byo,
    collections,
    documents,
    evaluation_datasets,
    evaluations,
    health,
    interactions,
    keys,
    namespaces,
    processing,
    retrievers,
    tasks,
    taxonomies,
)
from stagewise.api.routes.ui import install_ui
from stagewise.api.schemas.openapi import build_openapi
from stagewise.config import Settings
from stagewise.domain.filters import LIMITS as filter_limits
from stagewise.pipeline.template_limits import LIMITS as template_limits
from stagewise.services.context import open_stores
from stagewise.services.index_builder import IndexBuilder
from stagewise.services.ingest_runtime import make_task_queues, resubmit_unfinished
from stagewise.services.metrics import Metrics
from stagewise.services.retention import Pruner
from stagewise.services.startup import Reaper, recover

log = logging.getLogger("stagewise")


def _bound_requests(settings: Settings) -> None:
    """The process-wide bounds of filters and templates, from the settings."""
    filter_limits.max_depth = settings.max_filter_depth
    filter_limits.max_conditions = settings.max_filter_conditions
    filter_limits.max_in_values = settings.max_in_values
    template_limits.max_output_chars = settings.max_template_output_chars
    template_limits.max_render_ms = settings.max_template_render_ms


def create_app(settings: Settings) -> FastAPI:
    _bound_requests(settings)
    # This app's own registry (services/metrics.py): never the process-global one.
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stores = open_stores(settings, metrics)
        recovered = recover(stores)
        if recovered:
            log.info("replayed %d writes into the search index", recovered)
        stores.tasks, stores.local_tasks = make_task_queues(stores)
        resumed = resubmit_unfinished(stores)
        if resumed:
            log.info("resubmitted %d unfinished ingestion tasks", resumed)
        builder = None
        if stores.maintenance is not None:  # a Qdrant server builds its own indexes
            builder = IndexBuilder(
                stores,
                stores.maintenance,
                min_points=settings.index_build_min_points,
                poll_s=settings.index_build_poll_s,
            )
            builder.start()
        stores.follower.start()
        reaper = None
        if settings.redis_url:  # workers share the store: runs of a stopped one are failed
            reaper = Reaper(stores)
            reaper.start()
        trimmer = Trimmer()
        trimmer.start()
        pruner = Pruner(stores)
        pruner.start()
        gc.freeze()  # what start-up loaded lives forever: keep it out of every collection
        app.state.stores = stores
        app.state.index_builder = builder
        app.state.execution_slots = stores.slots
        try:
            yield
        finally:
            if builder is not None:
                builder.stop()
            if reaper is not None:
                reaper.stop()
            trimmer.stop()
            pruner.stop()
            stores.close()

    app = FastAPI(
        title="Stagewise",
        version=__version__,
        description="A self-hosted retrieval engine that speaks the Mixpeek API.",
        lifespan=lifespan,
        default_response_class=JsonResponse,
        # Served from packaged files by routes/ui.py: FastAPI's own pages load a CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RateLimit, enabled=settings.rate_limit_per_s > 0)
    app.add_middleware(UnhandledErrors)
    # Added last: the outermost of ours, so every answer above (413, 429, 500) has the id.
    app.add_middleware(Observe, http=HttpMetrics(metrics.registry))

    # adhoc, interactions and evaluation_datasets before retrievers: their literal paths
    # must win over /{retriever_id}.
    for module in (
        health,
        namespaces,
        byo,
        processing,
        collections,
        documents,
        adhoc,
        interactions,
        evaluation_datasets,
        retrievers,
        keys,
        buckets,
        bucket_objects,
        batches,
        tasks,
        taxonomies,
        evaluations,
    ):
        app.include_router(module.router)
    install_ui(app)

    def openapi() -> dict[str, Any]:
        # Built once, on first request: FastAPI's schema made true (api/schemas/openapi.py).
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_environment() -> FastAPI:
    """The app of one `serve --workers N` process; its settings come from the environment."""
    import gc

    gc.set_threshold(50_000, 50, 1000)  # as `serve` sets it for one process (cli.py)
    return create_app(Settings())
