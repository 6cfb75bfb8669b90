"""The OpenAPI document is true, and the bugs the schemathesis fuzz found stay fixed.

The document: every operation documents its 200 body (not a string), the error statuses it
answers in the one error shape, its security (bearer key, X-Namespace) and no dangling
reference; a 405 names the allowed methods. The bugs (tests/fuzz): a value of the wrong type
in a body was a 500, or was stored and made every later read of the resource a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]

URI = "mixpeek://text_extractor@v1/all_minilm_l6_v2"
STAGES = [
    {
        "stage_name": "search",
        "config": {
            "stage_id": "feature_search",
            "parameters": {
                "searches": [
                    {"feature_uri": URI, "query": {"input_mode": "text", "value": "{{INPUT.q}}"}}
                ]
            },
        },
    }
]


def error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"success", "status", "error"}
    assert body["success"] is False and body["status"] == status
    assert set(body["error"]) == {"message", "type", "code", "details"}
    return dict(body["error"])


@pytest.fixture(scope="module")
def doc(server: ServerHandle) -> dict[str, Any]:
    resp = server.client().get("/openapi.json")
    assert resp.status_code == 200
    return dict(resp.json())


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


@pytest.fixture(scope="module")
def world(server: ServerHandle) -> Iterator[tuple[httpx.Client, str, str, str]]:
    """A namespace with a collection, a document and a retriever: (client, collection id,
    document id, retriever id)."""
    ns = f"ns-{uuid.uuid4().hex[:10]}"
    server.client(ADMIN_KEY).post("/v1/namespaces", json={"namespace_name": ns}).raise_for_status()
    client = server.client(ADMIN_KEY, ns)
    col = client.post(
        "/v1/collections",
        json={
            "collection_name": "notes",
            "source": {"type": "direct_upsert"},
            "feature_extractor": {"feature_extractor_name": "text_extractor", "version": "v1"},
        },
    ).json()["collection_id"]
    document = client.post(f"/v1/collections/{col}/documents", json={"text": "a note"})
    body = {"retriever_name": "r", "collection_identifiers": [col], "stages": STAGES}
    body["input_schema"] = {"q": {"type": "text"}}
    rid = client.post("/v1/retrievers", json=body).json()["retriever_id"]
    yield client, col, document.json()["document_id"], rid
    client.close()


# ---- the document


def test_405_names_the_allowed_methods_in_the_error_shape(server: ServerHandle) -> None:
    client = server.client(ADMIN_KEY)
    # Two routes share /v1/namespaces (GET and POST): Allow names both, not the first only.
    for method, path, allowed in [
        ("PUT", "/v1/namespaces", "GET, POST"),
        ("DELETE", "/v1/health", "GET"),
        ("PUT", "/v1/retrievers/some-id", "DELETE, GET, PATCH"),
    ]:
        resp = client.request(method, path)
        assert error(resp, 405)["code"] == "method_not_allowed"
        assert resp.headers["allow"] == allowed


def test_every_operation_documents_its_200_body(doc: dict[str, Any]) -> None:
    no_content = {("DELETE", "/v1/buckets/{bucket_identifier}/objects/{object_identifier}")}
    accepted = {("POST", "/v1/collections/{collection_identifier}/trigger")}  # the contract's 202
    for method, path, op in operations(doc):
        if (method, path) in no_content:  # the contract's 204: the SDK reads no body
            assert "200" not in op["responses"] and "content" not in op["responses"]["204"]
            continue
        status = "202" if (method, path) in accepted else "200"
        assert set(op["responses"]) & {"200", "202"} == {status}, f"{method} {path}"
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        assert schema != {"type": "string"}, f"{method} {path}"
        assert "$ref" in schema or schema.get("type") == "array", f"{method} {path}: {schema}"


def test_errors_are_documented_in_the_one_shape(doc: dict[str, Any]) -> None:
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for method, path, op in operations(doc):
        responses = op["responses"]
        label = f"{method} {path}"
        for status, response in responses.items():
            if status.startswith("4"):
                assert response["content"]["application/json"]["schema"] == error_ref, label
        assert "429" in responses, label  # the rate limit counts any request with a key
        if op.get("security"):
            assert {"401", "429"} <= set(responses), label
        if "{" in path:
            assert "404" in responses, label
        if "requestBody" in op:
            assert {"400", "413", "422"} <= set(responses), label
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_security_schemes_name_the_key_and_the_namespace(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    namespace = schemes["namespaceHeader"]
    assert (namespace["type"], namespace["in"], namespace["name"]) == (
        "apiKey",
        "header",
        "X-Namespace",
    )
    secured = {f"{m} {p}": op.get("security") for m, p, op in operations(doc)}
    assert secured["GET /v1/health"] == []
    assert secured["GET /v1/keys"] == [{"bearerAuth": []}]
    assert {"bearerAuth": [], "namespaceHeader": []} in secured["POST /v1/retrievers"]
    for _, _, op in operations(doc):
        names = {p["name"].lower() for p in op.get("parameters", [])}
        assert not names & {"authorization", "x-namespace"}  # documented as security instead


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    """An inlined model kept `#/$defs/...` refs, which point at the document root."""

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_the_stateful_links_are_declared(doc: dict[str, Any]) -> None:
    def links(method: str, path: str) -> set[str]:
        return set(doc["paths"][path][method]["responses"]["200"].get("links", {}))

    assert "ExecuteRetriever" in links("post", "/v1/retrievers")
    assert "GetExecution" in links("post", "/v1/retrievers/{retriever_id}/execute")
    execution = "/v1/retrievers/{retriever_id}/executions/{execution_id}"
    assert "ListExecutions" in links("get", execution)


# ---- bugs the fuzz found: a 422, where the service tripped with a 500 or stored a bad value


@pytest.mark.parametrize(
    "bad",
    [
        {"description": 5},
        {"tags": [1]},
        {"tags": "abc"},  # was stored as ['a', 'b', 'c']
        {"metadata": [1, 2]},
        {"display_config": "x"},
        {"visibility": 3},
        {"budget_limits": "x"},
        {"budget_limits": {"max_credits": "x"}},  # was stored; every execute then a 500
        {"stages": {"a": 1}},
        {"collection_identifiers": [{}]},
    ],
)
def test_create_retriever_refuses_a_wrong_type(
    world: tuple[httpx.Client, str, str, str], bad: dict[str, Any]
) -> None:
    client, col, _, _ = world
    body = {"retriever_name": f"r-{uuid.uuid4().hex[:6]}", "collection_identifiers": [col]}
    error(client.post("/v1/retrievers", json={**body, "stages": STAGES, **bad}), 422)


@pytest.mark.parametrize("bad", [{"tags": None}, {"metadata": None}, {"description": 5}])
def test_patch_retriever_never_stores_what_cannot_be_read(
    world: tuple[httpx.Client, str, str, str], bad: dict[str, Any]
) -> None:
    client, _, _, rid = world
    error(client.patch(f"/v1/retrievers/{rid}", json=bad), 422)
    assert client.get(f"/v1/retrievers/{rid}").status_code == 200  # was a 500 from then on


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ("/v1/retrievers/execute", {"collection_identifiers": [{}]}),
        ("/v1/retrievers/execute", {"stages": "x"}),
        ("/v1/retrievers/execute", {"input_schema": []}),
        ("/v1/retrievers/execute", {"budget_limits": "x"}),
        ("{rid}/execute/explain", {"inputs": 5}),
        ("{rid}/execute/batch", {"queries": [{"inputs": 5}]}),
        ("{rid}/execute/batch", {"queries": [{}], "settings": "x"}),
        ("/v1/retrievers/list", {"sorts": 5}),
        ("/v1/retrievers/list", {"sorts": [5]}),
        ("/v1/retrievers/list", {"filters": 5}),
        ("/v1/retrievers/list", {"search": ["a"]}),
    ],
)
def test_retriever_bodies_refuse_a_wrong_type(
    world: tuple[httpx.Client, str, str, str], path: str, bad: dict[str, Any]
) -> None:
    client, col, _, rid = world
    url = path.replace("{rid}", f"/v1/retrievers/{rid}")
    body = {"stages": STAGES, "collection_identifiers": [col]} if url.endswith("/execute") else {}
    error(client.post(url, json={**body, **bad}), 422)


@pytest.mark.parametrize("bad", [{"description": 5}, {"collection_name": 5}])
def test_patch_collection_never_stores_what_cannot_be_read(
    world: tuple[httpx.Client, str, str, str], bad: dict[str, Any]
) -> None:
    client, col, _, _ = world
    error(client.patch(f"/v1/collections/{col}", json=bad), 422)
    assert client.get(f"/v1/collections/{col}").status_code == 200


@pytest.mark.parametrize("vectors", [5, [1]])
def test_document_vectors_must_be_an_object(
    world: tuple[httpx.Client, str, str, str], vectors: Any
) -> None:
    client, col, document, _ = world
    docs = f"/v1/collections/{col}/documents"
    error(client.post(docs, json={"text": "x", "vectors": vectors}), 422)
    error(client.patch(f"{docs}/{document}", json={"vectors": vectors}), 422)


def test_a_key_lifetime_past_any_date_is_refused(server: ServerHandle) -> None:
    # The expiry overflowed the datetime: a 500.
    client = server.client(ADMIN_KEY)
    error(client.post("/v1/keys", json={"ttl_seconds": 2400402519430832}), 422)
