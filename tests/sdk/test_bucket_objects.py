"""Bucket objects through the official SDK, written as users write them: root fields, blobs
(inline text, base64, data: URIs, file:// imports); and hostile input (path traversal,
symlink escapes, remote URLs, schema violations, NaN and huge numbers, forged ids, another
tenant's bucket)."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from mixpeek.exceptions import (
    NotFoundException,
    UnprocessableEntityException,
)
from mixpeek.models import (
    CreateObjectRequest,
    PatchObjectRequest,
)

from tests.sdk.conftest import ClientFactory
from tests.support.buckets import PNG, World, error_text
from tests.support.server import ServerHandle

# Buckets and objects never touch the vector index (docs/ingestion.md).
pytestmark = [pytest.mark.sdk, pytest.mark.store_only]


@pytest.fixture
def world(sdk: ClientFactory, ns_name: str) -> World:
    return World(sdk, ns_name)


@pytest.fixture
def import_dir(server: ServerHandle) -> Path:
    return server.data_dir / "imports"  # the server's STAGEWISE_BLOB_IMPORT_DIR (conftest.py)


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
        assert "blobs[0].data" in error_text(caught.value), url
        assert "secret" not in error_text(caught.value) and "root:" not in error_text(caught.value)
    assert world.counts() == (0, 0)  # nothing half-written


@pytest.mark.parametrize(
    "url", ["https://example.com/a.png", "http://127.0.0.1:1/x", "s3://bucket/key.png", "ftp://h/f"]
)
def test_remote_urls_are_never_fetched(world: World, url: str) -> None:
    with pytest.raises(UnprocessableEntityException) as caught:
        world.create({"title": "x", "blobs": [{"property": "cover", "type": "image", "data": url}]})
    assert "never fetched" in error_text(caught.value)


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
    assert field in error_text(caught.value)
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
