from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from stagewise import __version__
from stagewise.api.deps import CurrentKey, StoresDep
from stagewise.api.responses import JsonResponse
from stagewise.api.schemas.responses import DeepHealthResponse, HealthResponse
from stagewise.api.strict_json import StrictJSONRoute
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


class _FollowerCollector:
    """Read at scrape time from this worker's follower (services/follower.py)."""

    def __init__(self, request: Request) -> None:
        self.status = request.app.state.stores.follower.status()

    def collect(self) -> Iterator[Metric]:
        applied = CounterMetricFamily(
            "stagewise_follower_writes_applied", "Writes this worker's index applied from the log"
        )
        applied.add_metric([], self.status["writes_applied"])
        yield applied
        lag = GaugeMetricFamily(
            "stagewise_follower_lag_ms",
            "Commit-to-apply lag of writes other workers made (recent samples)",
            labels=["quantile"],
        )
        for quantile, key in (("0.5", "lag_ms_p50"), ("0.99", "lag_ms_p99")):
            if self.status[key] is not None:
                lag.add_metric([quantile], self.status[key])
        yield lag


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format. Aggregates only: no tenant's ids or counts."""
    registry = CollectorRegistry()
    registry.register(_FollowerCollector(request))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
