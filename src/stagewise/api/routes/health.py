from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from stagewise import __version__
from stagewise.api.deps import CurrentKey, StoresDep
from stagewise.api.responses import JsonResponse

router = APIRouter(tags=["health"])


@router.get("/v1/health")
def health() -> JsonResponse:
    return JsonResponse({"status": "ok", "service": "stagewise", "version": __version__})


@router.get("/v1/health/deep")
def deep_health(stores: StoresDep, _: CurrentKey) -> JsonResponse:
    checks: dict[str, Any] = {"metadata_store": "ok", "search_index": "ok"}
    stores.metadata.list_namespaces()
    return JsonResponse({"status": "ok", "checks": checks})
