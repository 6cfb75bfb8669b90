"""Bucket objects through the official SDK: unique-key policies, idempotency keys, batch
creates (partial success), keyset lists, patch/put/delete, and bucket counts that match."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mixpeek.exceptions import (
    BadRequestException,
    ConflictException,
    NotFoundException,
    UnprocessableEntityException,
)
from mixpeek.models import (
    CreateObjectsBatchRequest,
    ListObjectsRequest,
    PatchObjectRequest,
    UpdateObjectRequest,
)

from tests.sdk.conftest import ClientFactory
from tests.support.buckets import World
from tests.support.server import ServerHandle

# Buckets and objects never touch the vector index (docs/ingestion.md).
pytestmark = [pytest.mark.sdk, pytest.mark.store_only]


@pytest.fixture
def world(sdk: ClientFactory, ns_name: str) -> World:
    return World(sdk, ns_name)


def test_unique_key_policies(sdk: ClientFactory, ns_name: str) -> None:
    w = World(sdk, ns_name, unique_key={"fields": ["title"]})
    with pytest.raises(BadRequestException):  # no default_policy and no ?policy
        w.create({"title": "a"})
    first = w.create({"title": "a", "year": 1}, policy="insert")
    with pytest.raises(ConflictException):
        w.create({"title": "a", "year": 2}, policy="insert")
    with pytest.raises(NotFoundException):
        w.create({"title": "b"}, policy="update")
    updated = w.create({"title": "a", "year": 3}, policy="update")
    assert updated.object_id == first.object_id
    assert updated.additional_properties["year"] == 3
    upserted = w.create({"title": "c"}, policy="upsert")
    again = w.create({"title": "c", "year": 9}, policy="upsert")
    assert again.object_id == upserted.object_id
    assert w.counts()[0] == 2
    with pytest.raises(UnprocessableEntityException):  # the key's field must be set
        w.create({"year": 1}, policy="upsert")


def test_policy_query_wins_over_the_default(sdk: ClientFactory, ns_name: str) -> None:
    w = World(sdk, ns_name, unique_key={"fields": ["title"], "default_policy": "upsert"})
    w.create({"title": "a"})
    w.create({"title": "a", "year": 2})  # the default: upsert
    with pytest.raises(ConflictException):
        w.create({"title": "a"}, policy="insert")
    assert w.counts()[0] == 1


def test_idempotency_key_reuse_returns_the_existing_object(world: World) -> None:
    first = world.create({"title": "once", "idempotency_key": "k-1"})
    again = world.create({"title": "different", "idempotency_key": "k-1"})
    assert again.object_id == first.object_id
    assert again.additional_properties["title"] == "once"
    assert world.counts()[0] == 1


def test_batch_partial_success_and_all_failed(
    world: World, server: ServerHandle, ns_name: str
) -> None:
    def batch(objects: list[dict[str, Any]]) -> Any:
        return world.objects.create_objects_batch_buckets(
            world.bid, CreateObjectsBatchRequest.from_dict({"objects": objects})
        )

    out = batch(
        [
            {"title": "a"},
            {"title": 7},
            {"title": "b", "idempotency_key": "same"},
            {"title": "c", "idempotency_key": "same"},
            {
                "title": "d",
                "blobs": [{"property": "cover", "type": "image", "data": "https://x/y"}],
            },
        ]
    )
    assert (out.total_requested, out.succeeded_count, out.failed_count) == (5, 3, 2)
    assert [r.object_index for r in out.succeeded] == [0, 2, 3]
    assert out.succeeded[2].replayed is True and out.succeeded[2].replayed_by == "idempotency_key"
    assert out.succeeded[2].object_id == out.succeeded[1].object_id
    assert [f.object_index for f in out.failed] == [1, 4]
    assert out.failed[0].error_type == "ValidationError" and "title" in out.failed[0].error
    assert world.counts()[0] == 2
    with pytest.raises(UnprocessableEntityException):
        batch([{"title": 1}, {"year": 2}])
    # Over 100: the SDK refuses it itself, so send it raw.
    with server.client(server.admin_key, ns_name) as raw:
        resp = raw.post(
            f"/v1/buckets/{world.bid}/objects/batch",
            json={"objects": [{"title": str(i)} for i in range(101)]},
        )
    assert resp.status_code == 422 and resp.json()["error"]["details"]["field"] == "objects"
    assert world.counts()[0] == 2


def test_batch_refuses_unique_key_buckets(sdk: ClientFactory, ns_name: str) -> None:
    w = World(sdk, ns_name, unique_key={"fields": ["title"], "default_policy": "upsert"})
    with pytest.raises(UnprocessableEntityException):
        w.objects.create_objects_batch_buckets(
            w.bid, CreateObjectsBatchRequest.from_dict({"objects": [{"title": "a"}]})
        )


def test_list_pages_by_cursor_oldest_first(world: World) -> None:
    made = [world.create({"title": f"t{i}"}).object_id for i in range(7)]
    seen: list[str] = []
    cursors: list[str] = []
    cursor = None
    for _ in range(10):
        page = world.objects.list_objects_buckets(world.bid, limit=3, cursor=cursor)
        seen += [o.object_id for o in page.results]
        cursor = page.pagination.next_cursor
        if cursor is None:
            break
        cursors.append(cursor)
    assert seen == made and len(cursors) == 2
    got = world.objects.list_objects_get_buckets(world.bid, limit=100, include_total=True)
    assert [o.object_id for o in got.results] == made and got.pagination.total == 7
    tampered = cursors[0][:-3] + ("AAA" if not cursors[0].endswith("AAA") else "BBB")
    for forged in ("garbage", tampered):
        with pytest.raises(BadRequestException):
            world.objects.list_objects_buckets(world.bid, cursor=forged)
    with pytest.raises(UnprocessableEntityException):
        world.objects.list_objects_buckets(
            world.bid, list_objects_request=ListObjectsRequest.from_dict({"search": "t1"})
        )


def test_patch_put_delete_and_counts(world: World) -> None:
    a = world.create(
        {"title": "a", "blobs": [{"property": "body", "type": "text", "data": "x" * 100}]}
    )
    b = world.create({"title": "b", "metadata": {"shelf": 1}})
    count, size = world.counts()
    assert count == 2 and size >= 100
    patched = world.objects.patch_object_buckets(
        world.bid, a.object_id, PatchObjectRequest.from_dict({"year": 2001, "title": "A"})
    )
    assert patched.additional_properties == {"title": "A", "year": 2001}
    assert patched.blobs[0].details.size_bytes == 100
    with pytest.raises(UnprocessableEntityException):
        world.objects.patch_object_buckets(
            world.bid, a.object_id, PatchObjectRequest.from_dict({"year": "two"})
        )
    with pytest.raises(UnprocessableEntityException):
        world.objects.patch_object_buckets(
            world.bid, a.object_id, PatchObjectRequest.from_dict({"status": "COMPLETED"})
        )
    put = world.objects.update_object_buckets(
        world.bid, b.object_id, UpdateObjectRequest.from_dict({"metadata": {"shelf": 2, "year": 5}})
    )
    assert put.additional_properties == {"title": "b", "metadata": {"shelf": 2}, "year": 5}
    assert world.counts()[0] == 2
    assert world.objects.delete_object_buckets(world.bid, a.object_id) is None
    with pytest.raises(NotFoundException):
        world.objects.get_object_buckets(world.bid, a.object_id)
    with pytest.raises(NotFoundException):
        world.objects.delete_object_buckets(world.bid, a.object_id)
    listed = world.objects.list_objects_buckets(world.bid, limit=100).results
    assert world.counts() == (1, sum(size_of(o) for o in listed))


def size_of(obj: Any) -> int:
    """What the server counts for an object: its blobs' bytes plus its fields' JSON."""
    fields = json.dumps(obj.additional_properties, sort_keys=True, separators=(",", ":"))
    return len(fields.encode()) + sum(b.details.size_bytes for b in obj.blobs or [])
