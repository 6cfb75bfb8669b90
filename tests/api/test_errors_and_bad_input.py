"""Every error uses the single body shape, and bad input changes nothing stored."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]


def assert_error_shape(resp: httpx.Response, status: int) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False
    assert body["status"] == status
    error = body["error"]
    assert set(error) == {"message", "type", "code", "details"}
    assert isinstance(error["message"], str) and error["message"]
    return body


@pytest.fixture
def setup(server: ServerHandle) -> tuple[httpx.Client, str]:
    ns = f"ns-{uuid.uuid4().hex[:10]}"
    admin = server.client(server.admin_key)
    admin.post("/v1/namespaces", json={"namespace_name": ns}).raise_for_status()
    client = server.client(server.admin_key, namespace=ns)
    resp = client.post(
        "/v1/collections",
        json={
            "collection_name": "docs",
            "source": {"type": "direct_upsert"},
            "feature_extractor": {"feature_extractor_name": "text_extractor", "version": "v1"},
        },
    )
    resp.raise_for_status()
    client.post(
        "/v1/collections/docs/documents", json={"text": "the only document"}
    ).raise_for_status()
    return client, ns


def count(client: httpx.Client) -> int:
    return int(client.get("/v1/collections/docs/documents/count").json()["count"])


def test_unknown_route_uses_error_shape(server: ServerHandle) -> None:
    body = assert_error_shape(server.client(server.admin_key).get("/v1/nope"), 404)
    assert body["error"]["code"] == "route_not_found"  # type: ignore[index]


def test_method_not_allowed_uses_error_shape(server: ServerHandle) -> None:
    assert_error_shape(server.client(server.admin_key).delete("/v1/health"), 405)


def test_missing_key_is_401(server: ServerHandle) -> None:
    assert_error_shape(server.client().get("/v1/namespaces"), 401)


def test_health_and_catalogues_are_anonymous(server: ServerHandle) -> None:
    anon = server.client()
    assert anon.get("/v1/health").json()["status"] == "ok"
    extractors = anon.get("/v1/collections/features/extractors").json()
    assert extractors[0]["required_vector_indexes"][0]["index"]["dimensions"] == 384
    assert anon.get("/v1/collections/features").status_code == 200


def test_malformed_json_is_400_and_changes_nothing(setup: tuple[httpx.Client, str]) -> None:
    client, _ = setup
    resp = client.post(
        "/v1/collections/docs/documents",
        content=b'{"text": "broken',
        headers={"Content-Type": "application/json"},
    )
    assert_error_shape(resp, 400)
    assert count(client) == 1


def test_wrong_vector_dimension_is_422_and_changes_nothing(
    setup: tuple[httpx.Client, str], server: ServerHandle
) -> None:
    client, ns = setup
    resp = client.post(
        "/v1/collections/docs/documents",
        json={"text": "x", "vectors": {"all_minilm_l6_v2": [0.1, 0.2, 0.3]}},
    )
    body = assert_error_shape(resp, 422)
    assert body["error"]["code"] == "vector_dimension_mismatch"  # type: ignore[index]
    assert "384" in body["error"]["message"]  # type: ignore[index]
    # A BYO batch with one bad document is rejected whole.
    good = {"document_id": "good", "vectors": {"all_minilm_l6_v2": [0.0] * 383 + [1.0]}}
    bad = {"document_id": "bad", "vectors": {"all_minilm_l6_v2": [1.0] * 10}}
    resp = server.client(server.admin_key).post(
        f"/v1/namespaces/{ns}/documents/upsert",
        json={"collection_id": "docs", "documents": [good, bad]},
    )
    assert_error_shape(resp, 422)
    assert count(client) == 1


def test_two_megabyte_text_is_rejected_and_changes_nothing(setup: tuple[httpx.Client, str]) -> None:
    client, _ = setup
    resp = client.post("/v1/collections/docs/documents", json={"text": "a" * 2_000_000})
    body = assert_error_shape(resp, 422)
    assert body["error"]["code"] == "field_too_large"  # type: ignore[index]
    assert count(client) == 1


def test_body_over_the_request_limit_is_413_and_changes_nothing(
    setup: tuple[httpx.Client, str],
) -> None:
    client, _ = setup
    # Refused on the declared length before the body is read (default limit 32 MB).
    big = b'{"text": "' + b"a" * 33_000_000 + b'"}'
    resp = client.post(
        "/v1/collections/docs/documents",
        content=big,
        headers={"content-type": "application/json"},
    )
    body = assert_error_shape(resp, 413)
    assert body["error"]["code"] == "payload_too_large"  # type: ignore[index]
    assert count(client) == 1


def test_too_short_names_are_422_and_create_nothing(
    setup: tuple[httpx.Client, str], server: ServerHandle
) -> None:
    client, _ = setup
    admin = server.client(server.admin_key)
    before = admin.get("/v1/namespaces").json()["total_count"]
    assert_error_shape(admin.post("/v1/namespaces", json={"namespace_name": "ab"}), 422)
    assert admin.get("/v1/namespaces").json()["total_count"] == before
    resp = client.post(
        "/v1/collections", json={"collection_name": "ab", "source": {"type": "none"}}
    )
    assert_error_shape(resp, 422)
    assert client.get("/v1/collections").json()["total_count"] == 1


def test_bucket_source_is_a_clear_422(setup: tuple[httpx.Client, str]) -> None:
    client, _ = setup
    resp = client.post(
        "/v1/collections",
        json={"collection_name": "from-bucket", "source": {"type": "bucket", "bucket_ids": ["b1"]}},
    )
    body = assert_error_shape(resp, 422)
    assert "bucket" in body["error"]["message"]  # type: ignore[index]


def test_duplicate_namespace_is_409(setup: tuple[httpx.Client, str], server: ServerHandle) -> None:
    _, ns = setup
    resp = server.client(server.admin_key).post("/v1/namespaces", json={"namespace_name": ns})
    body = assert_error_shape(resp, 409)
    assert body["error"]["code"] == "namespace_name_taken"  # type: ignore[index]


def test_missing_namespace_header_and_unknown_namespace(server: ServerHandle) -> None:
    assert_error_shape(server.client(server.admin_key).get("/v1/collections"), 400)
    resp = server.client(server.admin_key, namespace="ns_does_not_exist").get("/v1/collections")
    body = assert_error_shape(resp, 404)
    assert body["error"]["code"] == "namespace_not_found"  # type: ignore[index]


def test_validation_error_names_the_field(server: ServerHandle) -> None:
    resp = server.client(server.admin_key).post("/v1/namespaces", json={"description": "no name"})
    body = assert_error_shape(resp, 422)
    assert "namespace_name" in body["error"]["message"]  # type: ignore[index]


def test_byo_upsert_bad_bodies(setup: tuple[httpx.Client, str], server: ServerHandle) -> None:
    client, ns = setup
    admin = server.client(server.admin_key)
    url = f"/v1/namespaces/{ns}/documents/upsert"
    resp = admin.post(url, content=b'{"documents": [', headers={"Content-Type": "application/json"})
    assert_error_shape(resp, 400)
    body = assert_error_shape(admin.post(url, json={"collection_id": "docs"}), 422)
    assert "documents" in body["error"]["message"]  # type: ignore[index]
    too_many = [{"document_id": f"d{i}", "vectors": {}} for i in range(1001)]
    assert_error_shape(admin.post(url, json={"documents": too_many}), 422)
    bools = {"document_id": "b", "vectors": {"all_minilm_l6_v2": [True] * 384}}
    body = assert_error_shape(
        admin.post(url, json={"collection_id": "docs", "documents": [bools]}), 422
    )
    assert body["error"]["code"] == "invalid_vector"  # type: ignore[index]
    assert count(client) == 1


def test_byo_without_vectors_embeds_the_text_or_refuses_the_batch(
    setup: tuple[httpx.Client, str], server: ServerHandle
) -> None:
    client, ns = setup
    admin = server.client(server.admin_key)
    url = f"/v1/namespaces/{ns}/documents/upsert"
    # One document without text poisons the batch: 422, and nothing of it is written.
    mixed = [
        {"document_id": "with-text", "vectors": {}, "payload": {"text": "a batch of text"}},
        {"document_id": "no-text", "vectors": {}, "metadata": {"k": 1}},
    ]
    body = assert_error_shape(
        admin.post(url, json={"collection_id": "docs", "documents": mixed}), 422
    )
    assert body["error"]["code"] == "vectors_required"  # type: ignore[index]
    assert body["error"]["details"]["document_id"] == "no-text"  # type: ignore[index]
    assert count(client) == 1
    # Text only: the collection's extractor embeds it, as for a single-document POST.
    texts = [
        {"document_id": f"t{i}", "vectors": {}, "payload": {"text": f"text number {i}"}}
        for i in range(3)
    ]
    resp = admin.post(url, json={"collection_id": "docs", "documents": texts})
    assert resp.status_code == 200, resp.text
    assert count(client) == 4
    doc = admin.get(f"/v1/namespaces/{ns}/documents/t1", params={"return_vectors": True}).json()
    vectors = doc.get("vectors") or doc.get("_internal", {}).get("vectors") or {}
    assert len(next(iter(vectors.values()))) == 384
