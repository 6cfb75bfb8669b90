"""API keys: stored as SHA-256 hashes (keys are 256-bit random, so a slow hash adds nothing).

Three kinds, from two stored fields: an admin key (no namespace, read-write), a namespace key
(bound to one namespace, read-write there) and a read-only key (bound or not). Every request
reads its key from the store, never from a cache, so a revocation or an expiry holds on the
next request whichever process made it (measured: ~40 us on SQLite, one round trip on
PostgreSQL).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from stagewise.domain.records import ApiKeyRecord
from stagewise.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from stagewise.ids import iso, new_api_key, new_id, utc_now
from stagewise.services.context import Stores
from stagewise.storage.protocols import MetadataStore

Role = Literal["admin", "namespace", "read_only"]
PREFIX_CHARS = 10  # "sk_" and 7 random characters, as Mixpeek's key_prefix


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


def role(record: ApiKeyRecord) -> Role:
    if record.read_only:
        return "read_only"
    return "namespace" if record.namespace_id is not None else "admin"


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def resolve_expiry(
    expires_at: datetime | None, ttl_seconds: int | None, *, now: datetime | None = None
) -> datetime | None:
    """The expiry of a new key: an instant (naive means UTC) or a lifetime from now."""
    now = now or utc_now()
    if expires_at is not None and ttl_seconds is not None:
        raise ValidationFailed(
            "Give expires_at or ttl_seconds, not both", code="invalid_expiry", field="expires_at"
        )
    if ttl_seconds is not None:
        if ttl_seconds <= 0:
            raise ValidationFailed(
                "ttl_seconds must be positive", code="invalid_expiry", field="ttl_seconds"
            )
        return now + timedelta(seconds=ttl_seconds)
    if expires_at is None:
        return None
    expires_at = _utc(expires_at)
    if expires_at <= now:
        raise ValidationFailed(
            "expires_at must be in the future",
            code="invalid_expiry",
            field="expires_at",
            expires_at=iso(expires_at),
        )
    return expires_at


def create_key(
    metadata: MetadataStore,
    *,
    name: str = "",
    namespace_id: str | None = None,
    read_only: bool = False,
    expires_at: datetime | None = None,
) -> tuple[str, ApiKeyRecord]:
    """A new key and its secret; the secret is returned once and never stored."""
    secret = new_api_key()
    record = ApiKeyRecord(
        key_id=new_id("key_"),
        key_hash=hash_key(secret),
        name=name,
        namespace_id=namespace_id,
        read_only=read_only,
        key_prefix=secret[:PREFIX_CHARS],
        expires_at=expires_at,
    )
    metadata.create_key(record)
    return secret, record


def list_keys(metadata: MetadataStore, *, namespace_id: str | None = None) -> list[ApiKeyRecord]:
    """Every stored key, revoked and expired ones included; one namespace's when given."""
    found = metadata.list_keys()
    if namespace_id is None:
        return found
    return [k for k in found if k.namespace_id == namespace_id]


def get_key(metadata: MetadataStore, key_id: str) -> ApiKeyRecord:
    record = metadata.get_key(key_id)
    if record is None:
        raise NotFound("key", key_id)
    return record


def revoke_key(metadata: MetadataStore, key_id: str) -> ApiKeyRecord:
    """Revoke a key (idempotent: a revoked key keeps its first revocation time)."""
    record = metadata.revoke_key(key_id, utc_now())
    if record is None:
        raise NotFound("key", key_id)
    return record


def describe(record: ApiKeyRecord, *, now: datetime | None = None) -> dict[str, Any]:
    """What lists and the admin routes show of a key: never the secret or its hash."""
    return {
        "key_id": record.key_id,
        "name": record.name,
        "key_prefix": record.key_prefix or None,  # keys made before 0004 have none
        "role": role(record),
        "namespace_id": record.namespace_id,
        "read_only": record.read_only,
        "status": record.state(now or utc_now()),
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
        "revoked_at": iso(record.revoked_at),
    }


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
    # Read from the store on every request (see the module docstring).
    record = stores.metadata.get_key_by_hash(hash_key(token))
    if record is None:
        raise Unauthorized("Invalid API key", code="invalid_api_key")
    state = record.state(utc_now())
    if state == "revoked":
        raise Unauthorized("This API key was revoked", code="revoked_api_key", key_id=record.key_id)
    if state == "expired":
        raise Unauthorized(
            "This API key has expired",
            code="expired_api_key",
            key_id=record.key_id,
            expired_at=iso(record.expires_at),
        )
    return Principal(
        key_id=record.key_id,
        namespace_id=record.namespace_id,
        read_only=record.read_only,
        admin=role(record) == "admin",
    )
