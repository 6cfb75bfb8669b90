"""Key administration: list, create, show and revoke API keys. Admin keys only.

Not Mixpeek routes (the SDK's organization api-keys belong to a hosted organization), so the
paths are our own and collide with none of the SDK's. A namespace key cannot manage keys, not
even its namespace's: creating a key is how access is handed out, which an operator decides.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from stagewise.api.deps import AdminKey, StoresDep
from stagewise.api.responses import JsonResponse
from stagewise.api.schemas.openapi import errors
from stagewise.api.schemas.responses import CreatedKey, KeyList, KeyResponse
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.services import keys as svc
from stagewise.services.namespaces import get_namespace

router = APIRouter(prefix="/v1/keys", tags=["keys"], route_class=StrictJSONRoute)
# A century: past it an expiry is no expiry, and far enough past it is no date at all (the
# datetime overflows, which was a 500).
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600


class CreateKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=255)
    namespace: str | None = Field(None, description="Bind the key to this namespace (name or id)")
    read_only: bool = False
    expires_at: datetime | None = Field(None, description="ISO-8601; without an offset, UTC")
    ttl_seconds: int | None = Field(
        None, gt=0, le=MAX_TTL_SECONDS, description="Expire this many seconds from now"
    )


@router.get("", response_model=KeyList, responses=errors(404))
def list_keys(stores: StoresDep, _: AdminKey, namespace: str | None = None) -> JsonResponse:
    """Every key, revoked and expired ones included (see `status`); never a secret."""
    namespace_id = None
    if namespace is not None:
        namespace_id = get_namespace(stores, identifier=namespace).namespace_id
    found = svc.list_keys(stores.metadata, namespace_id=namespace_id)
    return JsonResponse({"results": [svc.describe(k) for k in found], "total_count": len(found)})


@router.post("", response_model=CreatedKey, responses=errors(404))
def create_key(body: CreateKeyBody, stores: StoresDep, _: AdminKey) -> JsonResponse:
    """A new key; the response carries its secret (`key`) this once."""
    expires_at = svc.resolve_expiry(body.expires_at, body.ttl_seconds)
    namespace_id = None
    if body.namespace is not None:
        namespace_id = get_namespace(stores, identifier=body.namespace).namespace_id
    secret, record = svc.create_key(
        stores.metadata,
        name=body.name,
        namespace_id=namespace_id,
        read_only=body.read_only,
        expires_at=expires_at,
    )
    return JsonResponse({**svc.describe(record), "key": secret})


@router.get("/{key_id}", response_model=KeyResponse)
def get_key(key_id: str, stores: StoresDep, _: AdminKey) -> JsonResponse:
    return JsonResponse(svc.describe(svc.get_key(stores.metadata, key_id)))


@router.delete("/{key_id}", response_model=KeyResponse)
def revoke_key(key_id: str, stores: StoresDep, _: AdminKey) -> JsonResponse:
    """Revoke a key: refused with 401 `revoked_api_key` from the next request on, by every
    process. Revoking a revoked key is a no-op that answers the same; an unknown id is 404."""
    return JsonResponse(svc.describe(svc.revoke_key(stores.metadata, key_id)))
