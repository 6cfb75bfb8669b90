"""Buckets through the official SDK: create, get by id and name, list (POST and GET, with
total_count), patch/put, delete, schema checks, and tenant isolation."""

from __future__ import annotations

from typing import Any

import mixpeek
import pytest
from mixpeek.exceptions import (
    ConflictException,
    NotFoundException,
    UnprocessableEntityException,
)
from mixpeek.models import (
    BucketCreateRequest,
    BucketPatchRequest,
    BucketUpdateRequest,
    CreateNamespaceRequest,
    CreateObjectRequest,
    ListBucketsRequest,
)

from tests.sdk.conftest import ClientFactory
from tests.support.server import ServerHandle

# Buckets and objects never touch the vector index (docs/ingestion.md).
pytestmark = [pytest.mark.sdk, pytest.mark.store_only]

SCHEMA = {
    "properties": {
        "title": {"type": "string", "required": True},
        "year": {"type": "integer"},
        "body": {"type": "text"},
        "cover": {"type": "image"},
    }
}


def namespace(sdk: ClientFactory, name: str) -> mixpeek.ApiClient:
    mixpeek.NamespacesApi(sdk()).create_namespace(
        CreateNamespaceRequest.from_dict({"namespace_name": name})
    )
    return sdk(namespace=name)


def create(client: mixpeek.ApiClient, body: dict[str, Any]) -> Any:
    return mixpeek.BucketsApi(client).create_bucket(BucketCreateRequest.from_dict(body))


def test_bucket_lifecycle(sdk: ClientFactory, ns_name: str) -> None:
    client = namespace(sdk, ns_name)
    api = mixpeek.BucketsApi(client)
    made = create(
        client,
        {
            "bucket_name": "library",
            "description": "books",
            "bucket_schema": SCHEMA,
            "unique_key": {"fields": ["title"], "default_policy": "upsert"},
            "metadata": {"team": "a"},
        },
    )
    assert made.bucket_id.startswith("bkt_")
    assert (made.object_count, made.total_size_bytes, made.status) == (0, 0, "ACTIVE")
    assert made.bucket_schema.properties["title"].type.value == "string"
    assert made.bucket_schema.properties["title"].required is True
    assert made.unique_key.fields == ["title"]
    assert made.unique_key.default_policy == "upsert"

    assert api.get_bucket(made.bucket_id).bucket_name == "library"
    assert api.get_bucket("library").bucket_id == made.bucket_id

    patched = api.patch_bucket(
        made.bucket_id, BucketPatchRequest.from_dict({"description": "all the books"})
    )
    assert patched.description == "all the books"
    assert patched.metadata == {"team": "a"}
    put = api.update_bucket("library", BucketUpdateRequest.from_dict({"bucket_name": "shelf"}))
    assert put.bucket_name == "shelf" and put.description == "all the books"
    with pytest.raises(UnprocessableEntityException):  # the key's fields are fixed
        api.patch_bucket(
            "shelf", BucketPatchRequest.from_dict({"unique_key": {"fields": ["year"]}})
        )

    deleted = api.delete_bucket("shelf")
    assert deleted["bucket_id"] == made.bucket_id and deleted["task_id"]
    with pytest.raises(NotFoundException):
        api.get_bucket(made.bucket_id)


def test_list_buckets_post_and_get_with_total_count(sdk: ClientFactory, ns_name: str) -> None:
    client = namespace(sdk, ns_name)
    for name in ("photos-1", "photos-2", "photos-3", "docs"):
        create(client, {"bucket_name": name, "bucket_schema": SCHEMA})
    api = mixpeek.BucketsApi(client)
    everything = api.list_buckets()
    assert everything.total_count == 4
    assert [b.bucket_name for b in everything.results] == [
        "photos-1",
        "photos-2",
        "photos-3",
        "docs",
    ]
    page = api.list_buckets(
        list_buckets_request=ListBucketsRequest.from_dict({"search": "photos", "limit": 2})
    )
    assert page.total_count == 3 and len(page.results) == 2
    second = api.list_buckets(
        limit=2, page=2, list_buckets_request=ListBucketsRequest(search="photos")
    )
    assert [b.bucket_name for b in second.results] == ["photos-3"]
    got = api.list_buckets_get(search="doc")
    assert got.total_count == 1 and got.results[0].bucket_name == "docs"


@pytest.mark.parametrize(
    "schema, why",
    [
        ({"properties": {"title": {"type": "keyword"}}}, "keyword"),
        ({"properties": {"title": {"type": "varchar"}}}, "varchar"),
        ({"properties": {"bad name": {"type": "string"}}}, "bad name"),
        ({"properties": {"object_id": {"type": "string"}}}, "reserved"),
        ({"properties": {"tags": {"type": "string", "items": {"type": "string"}}}}, "items"),
    ],
)
def test_bad_schemas_are_refused(
    sdk: ClientFactory, ns_name: str, schema: dict[str, Any], why: str
) -> None:
    client = namespace(sdk, ns_name)
    body = {"bucket_name": "bad", "bucket_schema": schema}
    # Raw HTTP: the SDK itself refuses some of these schemas before sending them.
    resp = client.call_api(
        "POST",
        f"{client.configuration.host}/v1/buckets",
        header_params={
            "Authorization": f"Bearer {client.configuration.access_token}",
            "X-Namespace": ns_name,
            "Content-Type": "application/json",
        },
        body=body,
    )
    resp.read()
    assert resp.status == 422, resp.data
    assert why in resp.data.decode()


@pytest.mark.parametrize(
    "unique_key",
    [{"fields": ["cover"]}, {"fields": ["nope"]}, {"fields": ["title"], "default_policy": "merge"}],
)
def test_unique_keys_need_scalar_schema_fields(
    sdk: ClientFactory, ns_name: str, unique_key: dict[str, Any]
) -> None:
    client = namespace(sdk, ns_name)
    body = {"bucket_name": "uk", "bucket_schema": SCHEMA, "unique_key": unique_key}
    with pytest.raises((UnprocessableEntityException, ValueError)):
        create(client, body)  # ValueError: the SDK refuses an unknown policy itself


def test_names_are_unique_per_namespace(sdk: ClientFactory, ns_name: str) -> None:
    client = namespace(sdk, ns_name)
    create(client, {"bucket_name": "same", "bucket_schema": SCHEMA})
    with pytest.raises(ConflictException):
        create(client, {"bucket_name": "same", "bucket_schema": SCHEMA})
    other = namespace(sdk, ns_name + "-b")
    assert create(other, {"bucket_name": "same", "bucket_schema": SCHEMA}).bucket_name == "same"


def test_another_namespaces_bucket_is_not_found(sdk: ClientFactory, ns_name: str) -> None:
    mine = namespace(sdk, ns_name)
    theirs = namespace(sdk, ns_name + "-victim")
    victim = create(theirs, {"bucket_name": "secret", "bucket_schema": SCHEMA})
    api = mixpeek.BucketsApi(mine)
    for ident in (victim.bucket_id, "secret"):
        with pytest.raises(NotFoundException):
            api.get_bucket(ident)
        with pytest.raises(NotFoundException):
            api.patch_bucket(ident, BucketPatchRequest.from_dict({"description": "mine now"}))
        with pytest.raises(NotFoundException):
            api.delete_bucket(ident)
    assert api.list_buckets().total_count == 0
    still = mixpeek.BucketsApi(theirs).get_bucket(victim.bucket_id)
    assert still.description is None


@pytest.mark.inprocess  # reads the server's stores directly
def test_deleting_the_namespace_deletes_its_buckets(
    sdk: ClientFactory, ns_name: str, server: ServerHandle
) -> None:
    client = namespace(sdk, ns_name)
    ns_id = mixpeek.NamespacesApi(sdk()).get_namespace(ns_name).namespace_id
    buckets = [
        create(client, {"bucket_name": f"gone-{i}", "bucket_schema": SCHEMA}) for i in range(3)
    ]
    objects = mixpeek.BucketObjectsApi(client)
    made = [
        objects.create_object_buckets(b.bucket_id, CreateObjectRequest.from_dict({"title": "t"}))
        for b in buckets
    ]
    stores = server.server.config.app.state.stores
    assert stores.ingest.list_buckets(ns_id)[1] == 3
    mixpeek.NamespacesApi(sdk()).delete_namespace(ns_name)
    assert stores.ingest.list_buckets(ns_id) == ([], 0)
    for bucket, obj in zip(buckets, made, strict=True):
        assert stores.ingest.get_bucket_by_id(bucket.bucket_id) is None
        assert stores.ingest.get_object(bucket.bucket_id, obj.object_id) is None
        assert stores.ingest.all_object_ids(bucket.bucket_id) == []
