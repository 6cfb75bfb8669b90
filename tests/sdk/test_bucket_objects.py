"""Bucket objects through the official SDK, written as users write them: root fields, blobs
(inline text, base64, data: URIs, file:// imports), unique-key policies, idempotency keys,
batch creates, keyset lists, patch/put/delete; and hostile input (path traversal, symlink
escapes, remote URLs, schema violations, NaN and huge numbers, forged ids, another tenant's
bucket)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import mixpeek
import pytest
from mixpeek.exceptions import (
    BadRequestException,
    ConflictException,
    NotFoundException,
    UnprocessableEntityException,
)
from mixpeek.models import (
    BucketCreateRequest,
    CreateNamespaceRequest,
    CreateObjectRequest,
    CreateObjectsBatchRequest,
    ListObjectsRequest,
    PatchObjectRequest,
    UpdateObjectRequest,
)

from tests.sdk.conftest import ClientFactory
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.sdk]

SCHEMA = {
    "properties": {
        "title": {"type": "string", "required": True},
        "year": {"type": "integer"},
        "score": {"type": "number"},
        "published": {"type": "date"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "body": {"type": "text"},
        "cover": {"type": "image"},
    }
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


class World:
    def __init__(self, sdk: ClientFactory, ns: str, **bucket: Any) -> None:
        mixpeek.NamespacesApi(sdk()).create_namespace(
            CreateNamespaceRequest.from_dict({"namespace_name": ns})
        )
        self.client = sdk(namespace=ns)
        self.buckets = mixpeek.BucketsApi(self.client)
        self.objects = mixpeek.BucketObjectsApi(self.client)
        body = {"bucket_name": "items", "bucket_schema": SCHEMA, **bucket}
        self.bucket = self.buckets.create_bucket(BucketCreateRequest.from_dict(body))
        self.bid: str = self.bucket.bucket_id

    def create(self, body: dict[str, Any], **query: Any) -> Any:
        return self.objects.create_object_buckets(
            self.bid, CreateObjectRequest.from_dict(body), **query
        )

    def counts(self) -> tuple[int, int]:
        b = self.buckets.get_bucket(self.bid)
        return b.object_count, b.total_size_bytes


@pytest.fixture
def world(sdk: ClientFactory, ns_name: str) -> World:
    return World(sdk, ns_name)


@pytest.fixture
def import_dir(server: ServerHandle) -> Path:
    return server.data_dir / "imports"  # the server's STAGEWISE_BLOB_IMPORT_DIR (conftest.py)


def error_code(exc: Exception) -> str:
    return str(getattr(exc, "body", "") or "")


def test_create_and_read_back_root_fields_and_blobs(world: World) -> None:
    made = world.create(
        {
            "title": "Dune",
            "year": 1965,
            "tags": ["sf"],
            "metadata": {"shelf": 3},  # not in the schema: passes through at the root
            "key_prefix": "books/",
            "blobs": [
                {"property": "body", "type": "text", "data": "A desert planet."},
                {"property": "cover", "type": "image", "data": base64.b64encode(PNG).decode()},
            ],
        }
    )
    assert made.object_id.startswith("obj_") and made.bucket_id == world.bid
    assert made.status.value == "PENDING"
    assert made.consistency.retriever_visible == "after_processing"
    assert made.additional_properties == {
        "title": "Dune",
        "year": 1965,
        "tags": ["sf"],
        "metadata": {"shelf": 3},
    }
    body, cover = made.blobs
    assert (body.var_property, body.type.value) == ("body", "text")
    assert body.details.size_bytes == len(b"A desert planet.")
    assert body.details.hash == "sha256:" + hashlib.sha256(b"A desert planet.").hexdigest()
    assert (cover.details.mime_type, cover.details.size_bytes) == ("image/png", len(PNG))
    got = world.objects.get_object_buckets(world.bid, made.object_id)
    assert got.additional_properties == made.additional_properties
    assert got.key_prefix == "books/"
    assert [b.details.hash for b in got.blobs] == [b.details.hash for b in made.blobs]


def test_data_uris_and_blob_metadata(world: World) -> None:
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    made = world.create(
        {
            "title": "root wins",
            "blobs": [
                {
                    "property": "cover",
                    "type": "image",
                    "data": uri,
                    "metadata": {"title": "x", "dpi": 72},
                },
                {"property": "body", "type": "text", "data": "data:text/plain,hello%20there"},
            ],
        }
    )
    assert made.additional_properties == {"title": "root wins", "dpi": 72}
    assert made.blobs[0].details.mime_type == "image/png"
    assert made.blobs[1].details.size_bytes == len(b"hello there")


def test_file_imports_inside_the_import_dir(world: World, import_dir: Path) -> None:
    name = f"{uuid.uuid4().hex}.txt"
    (import_dir / name).write_text("imported text")
    made = world.create(
        {
            "title": "f",
            "blobs": [{"property": "body", "type": "text", "data": f"file://{import_dir / name}"}],
        }
    )
    blob = made.blobs[0]
    assert blob.details.filename == name
    assert blob.details.hash == "sha256:" + hashlib.sha256(b"imported text").hexdigest()


def hostile_paths(import_dir: Path) -> list[str]:
    outside = import_dir.parent / f"outside-{uuid.uuid4().hex}.txt"
    outside.write_text("secret")
    link = import_dir / f"link-{uuid.uuid4().hex}"
    os.symlink(outside, link)
    dir_link = import_dir / f"dirlink-{uuid.uuid4().hex}"
    os.symlink("/etc", dir_link)
    return [
        "file:///etc/passwd",
        f"file://{import_dir}/../../../../etc/passwd",
        f"file://{import_dir}/%2e%2e/{outside.name}",
        f"file://{link}",  # a symlink inside, pointing out
        f"file://{dir_link}/passwd",  # a directory symlink inside, pointing out
        f"file://{import_dir}",  # the directory itself
        f"file://{import_dir}/missing.txt",
        f"file://evil.example{import_dir}/x.txt",  # a remote host
    ]


def test_path_traversal_and_symlink_escapes_are_refused(world: World, import_dir: Path) -> None:
    for url in hostile_paths(import_dir):
        with pytest.raises(UnprocessableEntityException) as caught:
            world.create(
                {"title": "x", "blobs": [{"property": "body", "type": "text", "data": url}]}
            )
        assert "blobs[0].data" in error_code(caught.value), url
        assert "secret" not in error_code(caught.value) and "root:" not in error_code(caught.value)
    assert world.counts() == (0, 0)  # nothing half-written


@pytest.mark.parametrize(
    "url", ["https://example.com/a.png", "http://127.0.0.1:1/x", "s3://bucket/key.png", "ftp://h/f"]
)
def test_remote_urls_are_never_fetched(world: World, url: str) -> None:
    with pytest.raises(UnprocessableEntityException) as caught:
        world.create({"title": "x", "blobs": [{"property": "cover", "type": "image", "data": url}]})
    assert "never fetched" in error_code(caught.value)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"year": 2000}, "title"),  # required
        ({"title": 5}, "title"),
        ({"title": "x", "year": 1.5}, "year"),
        ({"title": "x", "year": True}, "year"),
        ({"title": "x", "score": "high"}, "score"),
        ({"title": "x", "score": float("nan")}, "score"),
        ({"title": "x", "score": float("inf")}, "score"),
        ({"title": "x", "year": 10**30}, "year"),
        ({"title": "x", "published": "yesterday"}, "published"),
        ({"title": "x", "tags": ["a", 2]}, "tags[1]"),
        ({"title": "x", "cover": "not a blob"}, "cover"),
        ({"title": "x", "object_id": "obj_mine"}, "object_id"),
        ({"title": "x", "blobs": [{"property": "nope", "type": "text", "data": "t"}]}, "blobs[0]"),
        (
            {"title": "x", "blobs": [{"property": "body", "type": "image", "data": "AA=="}]},
            "blobs[0]",
        ),
        (
            {"title": "x", "blobs": [{"property": "cover", "type": "image", "data": "%%%"}]},
            "blobs[0]",
        ),
        ({"title": "x", "blobs": [{"property": "cover", "type": "image"}]}, "blobs[0].data"),
    ],
)
def test_schema_and_blob_violations_name_the_field(
    world: World, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(UnprocessableEntityException) as caught:
        world.create(body)
    assert field in error_code(caught.value)
    assert world.counts() == (0, 0)


def test_unknown_bucket_and_forged_ids(world: World) -> None:
    made = world.create({"title": "real"})
    for bucket in ("bkt_doesnotexist", "../items", "items%00"):
        with pytest.raises(NotFoundException):
            world.objects.create_object_buckets(
                bucket, CreateObjectRequest.from_dict({"title": "x"})
            )
    for oid in ("obj_forged", made.object_id + "x", "' OR 1=1 --"):
        with pytest.raises(NotFoundException):
            world.objects.get_object_buckets(world.bid, oid)
        with pytest.raises(NotFoundException):
            world.objects.delete_object_buckets(world.bid, oid)
    assert world.counts()[0] == 1


def test_another_namespaces_bucket_and_objects_are_not_found(
    sdk: ClientFactory, ns_name: str
) -> None:
    victim = World(sdk, ns_name + "-victim")
    secret = victim.create({"title": "secret"})
    attacker = World(sdk, ns_name)  # has its own bucket named "items" too
    for bucket in (victim.bid,):
        with pytest.raises(NotFoundException):
            attacker.objects.get_object_buckets(bucket, secret.object_id)
        with pytest.raises(NotFoundException):
            attacker.objects.list_objects_buckets(bucket)
        with pytest.raises(NotFoundException):
            attacker.objects.create_object_buckets(
                bucket, CreateObjectRequest.from_dict({"title": "x"})
            )
        with pytest.raises(NotFoundException):
            attacker.objects.delete_object_buckets(bucket, secret.object_id)
    # Its own bucket by the same name does not hold the victim's object either.
    with pytest.raises(NotFoundException):
        attacker.objects.get_object_buckets("items", secret.object_id)
    with pytest.raises(NotFoundException):
        attacker.objects.patch_object_buckets(
            attacker.bid, secret.object_id, PatchObjectRequest.from_dict({"title": "owned"})
        )
    assert victim.objects.get_object_buckets(
        victim.bid, secret.object_id
    ).additional_properties == {"title": "secret"}
    assert victim.counts()[0] == 1


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
