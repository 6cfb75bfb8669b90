"""GET /v1/health/deep reports what its probes saw: a store that does not answer makes it
"degraded" with HTTP 503 and names the failure; all answering keeps it "ok" with 200."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import ADMIN_KEY
from tests.support.pg import admin_engine, drop_database, fresh_database
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]


def _setup(handle: ServerHandle, namespace: str = "health") -> tuple[httpx.Client, dict[str, str]]:
    """A standalone namespace with two collections, one holding two documents."""
    admin = handle.client(ADMIN_KEY)
    admin.post(
        "/v1/namespaces",
        json={"namespace_name": namespace, "vector_configs": [{"name": "v", "dimension": 2}]},
    ).raise_for_status()
    scoped = handle.client(ADMIN_KEY, namespace)
    ids = {}
    for name in ("full", "other"):
        body = {"collection_name": name, "source": {"type": "direct_upsert"}}
        ids[name] = (
            scoped.post("/v1/collections", json=body).raise_for_status().json()["collection_id"]
        )
    docs = [{"document_id": f"d{i}", "vectors": {"v": [1.0, float(i)]}} for i in range(2)]
    admin.post(
        f"/v1/namespaces/{namespace}/documents/upsert",
        json={"collection_id": "full", "documents": docs},
    ).raise_for_status()
    return admin, ids


def _one_line(message: Any) -> None:
    assert isinstance(message, str) and message
    assert "\n" not in message and "Traceback" not in message


def test_deep_health_is_ok_when_every_probe_answers(
    fresh_server: Callable[..., ServerHandle],
) -> None:
    handle = fresh_server(embedder="hash", index_build_min_points=0)
    admin, ids = _setup(handle)
    resp = admin.get("/v1/health/deep")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    meta, index = body["checks"]["metadata_store"], body["checks"]["search_index"]
    assert meta["status"] == "ok" and meta["latency_ms"] >= 0
    assert index["status"] == "ok" and index["latency_ms"] >= 0
    assert index["collections"] == 2
    assert body["index"][ids["full"]]["points"] == 2
    assert body["index"][ids["other"]]["points"] == 0
    assert body["index"][ids["full"]]["build"] is None


def test_a_shard_that_does_not_answer_degrades_deep_health(
    fresh_server: Callable[..., ServerHandle],
) -> None:
    handle = fresh_server(embedder="hash", index_build_min_points=0)
    admin, ids = _setup(handle)
    # The fault is injected at the storage boundary: the real Qdrant Edge shard of one
    # collection is closed under the server, as a crashed or unmounted shard would be.
    stores = handle.server.config.app.state.stores  # type: ignore[attr-defined]
    stores.index.shard(ids["full"]).close()

    resp = admin.get("/v1/health/deep")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "degraded"
    assert body["checks"]["metadata_store"]["status"] == "ok"
    check = body["checks"]["search_index"]
    assert check["status"] == "error"
    assert set(check["failed"]) == {ids["full"]}
    _one_line(check["failed"][ids["full"]])
    _one_line(check["error"])
    broken = body["index"][ids["full"]]
    _one_line(broken["error"])
    assert "points" not in broken  # not read: not reported
    assert body["index"][ids["other"]]["points"] == 0  # the other shard still answers
    # the plain liveness probe does not depend on the stores
    assert admin.get("/v1/health").status_code == 200


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one server; dropped afterwards if still there."""
    admin = admin_engine()
    try:
        with fresh_database(admin, "stagewise_health") as url:
            yield url
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_a_metadata_store_outage_degrades_deep_health(
    fresh_server: Callable[..., ServerHandle], pg_database_url: str
) -> None:
    handle = fresh_server(embedder="hash", index_build_min_points=0, database_url=pg_database_url)
    admin, _ = _setup(handle)
    assert admin.get("/v1/health/deep").status_code == 200

    # A real outage: the server's database is dropped under it (its sessions terminated).
    name = str(make_url(pg_database_url).database)
    engine = admin_engine()
    drop_database(engine, name)
    engine.dispose()

    # The first probe may meet a pooled connection the drop terminated (there is no
    # pre-ping: storage/sql/engine.py); the pool is discarded then, so the next one connects
    # afresh and the driver's message names the missing database.
    for _ in range(2):
        resp = admin.get("/v1/health/deep")
        assert resp.status_code == 503
        body = resp.json()
        assert body["status"] == "degraded"
        meta = body["checks"]["metadata_store"]
        assert meta["status"] == "error"
        _one_line(meta["error"])
    assert name in meta["error"]
    # without the collections, no shard can be checked: said so, not reported "ok"
    assert body["checks"]["search_index"]["status"] == "unknown"
    assert body["index"] == {}
