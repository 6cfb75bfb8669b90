"""Key lifecycle over loopback HTTP: the admin routes, expiry, and revocation that holds on the
very next request whichever process revoked it (another server on the same database, or a
second store object, as `stagewise keys revoke` is), on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from stagewise.services import keys
from stagewise.storage.sql.store import SqlMetadataStore
from tests.conftest import ADMIN_KEY
from tests.support.pg import admin_engine, fresh_database
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]


def _code(resp: object) -> str:
    return str(resp.json()["error"]["code"])  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One database that several servers (and a second store object) open."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    engine = admin_engine()
    try:
        with fresh_database(engine, "stagewise_keys") as url:
            yield url
    finally:
        engine.dispose()


def test_a_key_deleted_from_the_database_stops_working_at_once(
    fresh_server: Callable[..., ServerHandle], database_url: str, tmp_path: Path
) -> None:
    """The issue's case: a key deleted from the database kept working until a restart."""
    server = fresh_server(tmp_path / "a", embedder="hash", database_url=database_url)
    other = SqlMetadataStore(database_url)  # what another process holds
    try:
        secret, record = keys.create_key(other, name="doomed")
        client = server.client(secret)
        assert client.get("/v1/namespaces").status_code == 200  # looked up (and was cached)
        with other.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM api_keys WHERE key_id = :k"), {"k": record.key_id})
        resp = client.get("/v1/namespaces")
        assert resp.status_code == 401 and _code(resp) == "invalid_api_key"
    finally:
        other.close()


def test_a_revocation_holds_on_the_next_request_of_every_process(
    fresh_server: Callable[..., ServerHandle], database_url: str, tmp_path: Path
) -> None:
    a = fresh_server(tmp_path / "a", embedder="hash", database_url=database_url)
    b = fresh_server(tmp_path / "b", embedder="hash", database_url=database_url)
    made = a.client(ADMIN_KEY).post("/v1/keys", json={"name": "worker"}).raise_for_status()
    secret, key_id = made.json()["key"], made.json()["key_id"]
    for server in (a, b):
        assert server.client(secret).get("/v1/namespaces").status_code == 200

    # Revoked through server a: server b refuses the key on its very next request.
    revoked = a.client(ADMIN_KEY).delete(f"/v1/keys/{key_id}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    for server in (b, a):
        resp = server.client(secret).get("/v1/namespaces")
        assert resp.status_code == 401, resp.text
        assert _code(resp) == "revoked_api_key"
        assert resp.json()["error"]["details"]["key_id"] == key_id

    # Revoked by a second store object on the database (the CLI's way).
    other = SqlMetadataStore(database_url)
    try:
        secret, record = keys.create_key(other, name="cli")
        assert b.client(secret).get("/v1/namespaces").status_code == 200
        keys.revoke_key(other, record.key_id)
        assert _code(b.client(secret).get("/v1/namespaces")) == "revoked_api_key"
    finally:
        other.close()


def test_the_key_routes_create_list_show_and_revoke(server: ServerHandle) -> None:
    admin = server.client(server.admin_key)
    ns = f"ns-{uuid.uuid4().hex[:8]}"
    ns_id = admin.post("/v1/namespaces", json={"namespace_name": ns}).json()["namespace_id"]
    made = admin.post("/v1/keys", json={"name": "reader", "namespace": ns, "read_only": True})
    assert made.status_code == 200, made.text
    body = made.json()
    secret = body.pop("key")
    assert secret.startswith("sk_") and body["key_prefix"] == secret[:10]
    assert body["role"] == "read_only" and body["namespace_id"] == ns_id
    assert body["status"] == "active" and body["revoked_at"] is body["expires_at"] is None

    listed = admin.get("/v1/keys", params={"namespace": ns})
    assert listed.status_code == 200
    assert listed.json() == {"results": [body], "total_count": 1}
    everything = admin.get("/v1/keys").text
    # Neither the secret nor its hash is ever shown again.
    assert secret not in everything and keys.hash_key(secret) not in everything
    assert "key_hash" not in everything and '"key":' not in everything
    assert admin.get(f"/v1/keys/{body['key_id']}").json() == body

    reader = server.client(secret, namespace=ns)
    assert reader.get("/v1/collections").status_code == 200
    gone = admin.delete(f"/v1/keys/{body['key_id']}").json()
    assert gone["status"] == "revoked" and gone["revoked_at"] is not None
    assert _code(reader.get("/v1/collections")) == "revoked_api_key"
    # Idempotent: revoking again answers the same, first revocation time kept.
    assert admin.delete(f"/v1/keys/{body['key_id']}").json() == gone
    assert admin.get("/v1/keys", params={"namespace": ns}).json()["results"] == [gone]

    missing = admin.delete("/v1/keys/key_unknown")
    assert missing.status_code == 404 and _code(missing) == "key_not_found"
    assert _code(admin.get("/v1/keys/key_unknown")) == "key_not_found"
    assert _code(admin.post("/v1/keys", json={"namespace": "no-such-ns"})) == (
        "namespace_not_found"
    )
    assert admin.post("/v1/keys", json={"nam": "typo"}).status_code in (400, 422)


def test_an_expired_key_is_refused(server: ServerHandle) -> None:
    admin = server.client(server.admin_key)
    made = admin.post("/v1/keys", json={"name": "brief", "ttl_seconds": 1}).json()
    expires_at = datetime.fromisoformat(made["expires_at"])
    assert timedelta(0) < expires_at - datetime.now(UTC) <= timedelta(seconds=1)
    client = server.client(made["key"])
    assert client.get("/v1/namespaces").status_code == 200
    time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.05)
    resp = client.get("/v1/namespaces")
    assert resp.status_code == 401 and _code(resp) == "expired_api_key"
    assert resp.json()["error"]["details"]["expired_at"] == made["expires_at"]
    shown = admin.get(f"/v1/keys/{made['key_id']}").json()
    assert shown["status"] == "expired"

    # An instant with an offset is kept as that instant, in UTC.
    later = admin.post("/v1/keys", json={"expires_at": "2099-01-01T02:00:00+02:00"}).json()
    assert later["expires_at"] == "2099-01-01T00:00:00Z" and later["status"] == "active"
    for bad in (
        {"expires_at": "2001-01-01T00:00:00Z"},  # already past
        {"expires_at": "2099-01-01T00:00:00Z", "ttl_seconds": 5},  # both
        {"ttl_seconds": 0},
    ):
        resp = admin.post("/v1/keys", json=bad)
        assert resp.status_code == 422, (bad, resp.text)
