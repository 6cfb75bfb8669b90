from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from stagewise import __version__
from stagewise.api.deps import CurrentKey, StoresDep
from stagewise.api.responses import JsonResponse
from stagewise.services.collections import all_collections

router = APIRouter(tags=["health"])


@router.get("/v1/health")
def health() -> JsonResponse:
    return JsonResponse({"status": "ok", "service": "stagewise", "version": __version__})


@router.get("/v1/health/deep")
def deep_health(request: Request, stores: StoresDep, _: CurrentKey) -> JsonResponse:
    """Also reports, per collection, the points outside the HNSW index (searched by exact
    scan) and any index generation being built in the background."""
    checks: dict[str, Any] = {"metadata_store": "ok", "search_index": "ok"}
    builder = request.app.state.index_builder
    building = builder.status()
    index: dict[str, Any] = {}
    for col in all_collections(stores):
        cid = col.collection_id
        index[cid] = {
            "points": stores.index.count(cid),
            "unindexed_points": stores.index.unindexed_points(cid),
            "build": building.get(cid),
            "last_build": builder.last_build(cid),
        }
    return JsonResponse({"status": "ok", "checks": checks, "index": index})
