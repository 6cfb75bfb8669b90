"""API keys: stored as SHA-256 hashes (keys are 256-bit random, so a slow hash adds nothing)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from stagewise.domain.records import ApiKeyRecord
from stagewise.errors import Forbidden, Unauthorized
from stagewise.ids import new_api_key, new_id
from stagewise.services.context import Stores
from stagewise.storage.protocols import MetadataStore


@dataclass(frozen=True)
class Principal:
    key_id: str
    namespace_id: str | None  # None: every namespace
    read_only: bool
    admin: bool

    def require_write(self) -> None:
        if self.read_only:
            raise Forbidden("This API key is read-only", code="read_only_key")

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden(
                "This action needs an admin key (one not bound to a namespace)",
                code="admin_key_required",
            )

    def require_namespace(self, namespace_id: str) -> None:
        if self.namespace_id is not None and self.namespace_id != namespace_id:
            raise Forbidden(
                "This API key is not allowed to use this namespace", code="namespace_forbidden"
            )


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    metadata: MetadataStore,
    *,
    name: str = "",
    namespace_id: str | None = None,
    read_only: bool = False,
) -> tuple[str, ApiKeyRecord]:
    secret = new_api_key()
    record = ApiKeyRecord(
        key_id=new_id("key_"),
        key_hash=hash_key(secret),
        name=name,
        namespace_id=namespace_id,
        read_only=read_only,
    )
    metadata.create_key(record)
    return secret, record


def authenticate(stores: Stores, authorization: str | None) -> Principal:
    if not authorization:
        raise Unauthorized(
            "Missing API key: send 'Authorization: Bearer sk_...'", code="missing_api_key"
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Authorization must be 'Bearer <api key>'", code="invalid_authorization")
    admin_key = stores.settings.admin_key
    if admin_key and hmac.compare_digest(token.encode(), admin_key.encode()):
        return Principal(key_id="admin", namespace_id=None, read_only=False, admin=True)
    record = stores.metadata.get_key_by_hash(hash_key(token))
    if record is None:
        raise Unauthorized("Invalid API key", code="invalid_api_key")
    return Principal(
        key_id=record.key_id,
        namespace_id=record.namespace_id,
        read_only=record.read_only,
        admin=record.namespace_id is None and not record.read_only,
    )
