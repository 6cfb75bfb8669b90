"""Batches and tasks are read by id alone (the routes carry no namespace), so a key bound to
another namespace must get a 404 for each, and lists must show only its own."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from stagewise.services import keys
from tests.support.server import ServerHandle

SCHEMA = {"properties": {"content": {"type": "text"}}}


@dataclass
class Tenant:
    name: str
    namespace_id: str
    client: httpx.Client  # a key bound to this namespace
    bucket_id: str
    batch_id: str
    task_id: str


def _tenant(server: ServerHandle, admin: httpx.Client) -> Tenant:
    name = f"ns-{uuid.uuid4().hex[:10]}"
    ns = admin.post("/v1/namespaces", json={"namespace_name": name}).raise_for_status().json()
    stores = server.server.config.app.state.stores  # type: ignore[attr-defined]
    secret, _ = keys.create_key(stores.metadata, namespace_id=ns["namespace_id"])
    client = server.client(secret, namespace=name)
    bucket = client.post("/v1/buckets", json={"bucket_name": "notes", "bucket_schema": SCHEMA})
    bucket_id = bucket.raise_for_status().json()["bucket_id"]
    client.post(
        "/v1/collections",
        json={
            "collection_name": "notes",
            "source": {"type": "bucket", "bucket_ids": [bucket_id]},
            "feature_extractor": {
                "feature_extractor_name": "text_extractor",
                "input_mappings": {"text": "content"},
            },
        },
    ).raise_for_status()
    obj = client.post(
        f"/v1/buckets/{bucket_id}/objects",
        json={"blobs": [{"property": "content", "type": "text", "data": f"text of {name}"}]},
    ).raise_for_status()
    batch = (
        client.post(
            f"/v1/buckets/{bucket_id}/batches",
            params={"auto_submit": "true"},
            json={"object_ids": [obj.json()["object_id"]]},
        )
        .raise_for_status()
        .json()
    )
    return Tenant(name, ns["namespace_id"], client, bucket_id, batch["batch_id"], batch["task_id"])


@pytest.fixture(scope="module")
def tenants(server: ServerHandle) -> Iterator[tuple[Tenant, Tenant]]:
    admin = server.client(server.admin_key)
    a, b = _tenant(server, admin), _tenant(server, admin)
    yield a, b
    for t in (a, b):
        t.client.close()
    admin.close()


def _not_found(resp: httpx.Response) -> None:
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["code"] in {"task_not_found", "batch_not_found", "bucket_not_found"}


def test_a_bound_key_cannot_reach_another_namespaces_tasks_or_batches(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    for me, other in ((a, b), (b, a)):
        c = me.client
        assert c.get(f"/v1/tasks/{me.task_id}").status_code == 200
        _not_found(c.get(f"/v1/tasks/{other.task_id}"))
        _not_found(c.delete(f"/v1/tasks/{other.task_id}"))
        _not_found(c.get(f"/v1/batches/{other.batch_id}"))
        _not_found(c.post(f"/v1/batches/{other.batch_id}/cancel"))
        # Its own bucket path with the other's batch id: not in this bucket.
        _not_found(c.get(f"/v1/buckets/{me.bucket_id}/batches/{other.batch_id}"))
        _not_found(c.get(f"/v1/buckets/{other.bucket_id}/batches/{other.batch_id}"))
        tasks = c.post("/v1/tasks/list", json={}).raise_for_status().json()["results"]
        assert {t["task_id"] for t in tasks} == {me.task_id}
        listed = c.post("/v1/batches/list", json={}).raise_for_status().json()
        assert [x["batch_id"] for x in listed["results"]] == [me.batch_id]
        assert listed["total_count"] == 1
    # The other tenant's task and batch are untouched by the refused kill and cancel.
    for t in (a, b):
        task = t.client.get(f"/v1/tasks/{t.task_id}").json()
        assert task["status"] in {"PENDING", "IN_PROGRESS", "COMPLETED"}


def test_forged_ids_are_plain_404s(tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    for forged in ("task_x", "..%2F..%2Fv1%2Fkeys", "btch_" + "a" * 40, "%00"):
        assert a.client.get(f"/v1/tasks/{forged}").status_code == 404
        assert a.client.get(f"/v1/batches/{forged}").status_code == 404


def test_cancel_and_kill_are_idempotent_and_final(tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    c = a.client
    obj = c.post(
        f"/v1/buckets/{a.bucket_id}/objects",
        json={"blobs": [{"property": "content", "type": "text", "data": "to be canceled"}]},
    ).raise_for_status()
    draft = (
        c.post(f"/v1/buckets/{a.bucket_id}/batches", json={"object_ids": [obj.json()["object_id"]]})
        .raise_for_status()
        .json()
    )
    canceled = c.post(f"/v1/batches/{draft['batch_id']}/cancel", params={"reason": "changed mind"})
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["cancellation"]["ray_jobs_requested"] == 0  # it had no task yet
    batch = c.get(f"/v1/batches/{draft['batch_id']}").json()
    assert (batch["status"], batch["lifecycle"]) == ("CANCELED", "canceled")
    assert batch["lifecycle_reason"] == "changed mind"
    # A canceled batch can be neither submitted nor canceled again.
    again = c.post(f"/v1/buckets/{a.bucket_id}/batches/{draft['batch_id']}/submit")
    assert again.status_code == 409 and again.json()["error"]["code"] == "batch_not_draft"
    assert c.post(f"/v1/batches/{draft['batch_id']}/cancel").status_code == 409
    # Killing a task that ended changes nothing, however often.
    for _ in range(100):
        if c.get(f"/v1/tasks/{a.task_id}").json()["status"] == "COMPLETED":
            break
        time.sleep(0.1)
    for _ in range(2):
        killed = c.delete(f"/v1/tasks/{a.task_id}")
        assert killed.status_code == 200 and killed.json()["message"] == "Task is COMPLETED"


def test_batch_lists_validate_and_count_what_they_filter(tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    c = a.client
    for bad in ({"limit": "abc"}, {"limit": 0}, {"offset": -1}, {"status": 5}):
        resp = c.post("/v1/batches/list", json=bad)
        assert resp.status_code == 422, (bad, resp.text)
    cols = c.get("/v1/collections").raise_for_status().json()["results"]
    mine = cols[0]["collection_id"]
    listed = c.post("/v1/batches/list", json={"collection_id": mine, "limit": 1}).json()
    assert listed["total_count"] >= 1 and len(listed["results"]) == 1
    assert all(mine in b["collection_ids"] for b in listed["results"])
    none = c.post("/v1/batches/list", json={"collection_id": "col_none", "limit": 1}).json()
    assert (none["total_count"], none["results"]) == (0, [])


def test_a_batch_whose_every_object_fails_is_failed_by_the_pipeline(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, _ = tenants
    c = a.client
    ids = [
        c.post(f"/v1/buckets/{a.bucket_id}/objects", json={"note": f"no text {i}"})
        .raise_for_status()
        .json()["object_id"]
        for i in range(2)
    ]
    batch = (
        c.post(
            f"/v1/buckets/{a.bucket_id}/batches",
            params={"auto_submit": "true"},
            json={"object_ids": ids},
        )
        .raise_for_status()
        .json()
    )
    for _ in range(100):
        task = c.get(f"/v1/tasks/{batch['task_id']}").json()
        if task["status"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.1)
    assert task["status"] == "FAILED" and task["error"] == "all 2 objects failed"
    done = c.get(f"/v1/batches/{batch['batch_id']}").json()
    assert (done["status"], done["failure_category"]) == ("FAILED", "pipeline")
    assert done["failed_object_count"] == 2 and done["lifecycle"] == "failed"
