from __future__ import annotations

from fastapi import APIRouter, Request

from stagewise import __version__
from stagewise.api.deps import CurrentKey, StoresDep
from stagewise.api.responses import JsonResponse
from stagewise.services.stats import deep_health

router = APIRouter(tags=["health"])


@router.get("/v1/health")
def health() -> JsonResponse:
    return JsonResponse({"status": "ok", "service": "stagewise", "version": __version__})


@router.get("/v1/health/deep")
def deep_health_route(request: Request, stores: StoresDep, _: CurrentKey) -> JsonResponse:
    """Each check is a real read (the metadata store lists the collections, every shard serves
    a count); a failed one is reported with its error and the answer is 503 "degraded". Also
    reports, per collection, the points outside the HNSW index (searched by exact scan) and any
    index generation being built in the background."""
    healthy, body = deep_health(stores, request.app.state.index_builder)
    return JsonResponse(body, status_code=200 if healthy else 503)
