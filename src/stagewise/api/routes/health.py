from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from stagewise import __version__
from stagewise.api.deps import CurrentKey, StoresDep
from stagewise.api.responses import JsonResponse
from stagewise.api.schemas.responses import DeepHealthResponse, HealthResponse
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.services.keys import authenticate
from stagewise.services.metrics import exposition
from stagewise.services.stats import deep_health

router = APIRouter(tags=["health"], route_class=StrictJSONRoute)


@router.get("/v1/health", response_model=HealthResponse)
def health() -> JsonResponse:
    return JsonResponse({"status": "ok", "service": "stagewise", "version": __version__})


@router.get(
    "/v1/health/deep",
    response_model=DeepHealthResponse,
    responses={503: {"model": DeepHealthResponse, "description": "A check failed"}},
)
def deep_health_route(request: Request, stores: StoresDep, principal: CurrentKey) -> JsonResponse:
    """Each check is a real read (the metadata store lists the collections, every shard serves
    a count); a failed one is reported with its error and the answer is 503 "degraded". Also
    reports, per collection, the points outside the HNSW index (searched by exact scan) and any
    index generation being built in the background. A key bound to a namespace sees that
    namespace's collections only; an unbound key (admin, or global read-only) sees all."""
    builder = request.app.state.index_builder
    healthy, body = deep_health(stores, builder, namespace_id=principal.namespace_id)
    return JsonResponse(body, status_code=200 if healthy else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(stores: StoresDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Prometheus text format (docs/observability.md). Anonymous: aggregates only. A key not
    bound to a namespace (admin, or global read-only) also gets the series labelled with
    namespace and collection ids; a bound key, like no key, the aggregates."""
    per_collection = False
    if authorization is not None:  # a key sent is checked: a wrong one is a 401
        per_collection = authenticate(stores, authorization).namespace_id is None
    body = exposition(stores.metrics, stores, per_collection=per_collection)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
