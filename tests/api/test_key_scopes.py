"""What each kind of key may do, over loopback HTTP.

A read-only key (bound to a namespace or not) may call every GET, list, execute and explain
of every family, and is refused with 403 `read_only_key` on every write: the write check walks
the application's own route table, so a route added later is covered too. A namespace key
sees only its namespace in /v1/health/deep. Only admin keys manage keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from stagewise.api.deps import get_principal
from stagewise.services import keys
from tests.support.corpus import COLLECTION, search, seed_corpus
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]

# The POST routes that only read (the issue: "every GET, list, execute and explain").
READ_POSTS = {
    "/v1/namespaces/list",
    "/v1/collections/list",
    "/v1/collections/{collection_identifier}/documents/list",
    "/v1/retrievers/list",
    "/v1/retrievers/execute",
    "/v1/retrievers/executions/list",
    "/v1/retrievers/{retriever_id}/execute",
    "/v1/retrievers/{retriever_id}/execute/batch",
    "/v1/retrievers/{retriever_id}/execute/explain",
    "/v1/retrievers/{retriever_id}/executions/list",
    "/v1/retrievers/interactions/list",
    "/v1/buckets/list",
    "/v1/buckets/{bucket_identifier}/objects/list",
    "/v1/buckets/{bucket_identifier}/batches/list",
    "/v1/batches/list",
    "/v1/tasks/list",
    "/v1/taxonomies/list",
    # Taxonomy executes validate on samples and store nothing.
    "/v1/taxonomies/{taxonomy_identifier}/execute",
    "/v1/taxonomies/execute/{taxonomy_identifier}",
    # A pure computation on the body.
    "/v1/evaluations/score",
}


@dataclass
class Space:
    ns_name: str
    ns_id: str
    document_id: str
    retriever_id: str
    execution_id: str
    adhoc_execution_id: str
    admin: httpx.Client


def _key(server: ServerHandle, **kw: Any) -> str:
    stores = server.server.config.app.state.stores  # type: ignore[attr-defined]
    secret, _ = keys.create_key(stores.metadata, **kw)
    return secret


@pytest.fixture(scope="module")
def space(server: ServerHandle) -> Iterator[Space]:
    name = f"ns-{uuid.uuid4().hex[:10]}"
    admin = seed_corpus(server, name)
    ns_id = admin.get(f"/v1/namespaces/{name}").raise_for_status().json()["namespace_id"]
    docs = admin.get(f"/v1/collections/{COLLECTION}/documents").raise_for_status().json()
    retriever = {"retriever_name": "scoped", **_adhoc()}
    rid = admin.post("/v1/retrievers", json=retriever).raise_for_status().json()["retriever_id"]
    run = admin.post(f"/v1/retrievers/{rid}/execute", json={"inputs": {"query": "cat"}})
    adhoc = admin.post("/v1/retrievers/execute", json={**_adhoc(), "inputs": {"query": "kitten"}})
    yield Space(
        ns_name=name,
        ns_id=ns_id,
        document_id=docs["results"][0]["document_id"],
        retriever_id=rid,
        execution_id=run.raise_for_status().json()["execution_id"],
        adhoc_execution_id=adhoc.raise_for_status().json()["execution_id"],
        admin=admin,
    )
    admin.close()


@pytest.fixture(scope="module", params=["bound", "global"])
def reader(request: pytest.FixtureRequest, server: ServerHandle, space: Space) -> httpx.Client:
    """A read-only key bound to the namespace, and one valid for every namespace."""
    bound = request.param == "bound"
    secret = _key(server, namespace_id=space.ns_id if bound else None, read_only=True)
    return server.client(secret, namespace=space.ns_name)


def test_a_read_only_key_reads_every_family(reader: httpx.Client, space: Space) -> None:
    ns, col, doc = space.ns_name, COLLECTION, space.document_id
    rid, eid, aid = space.retriever_id, space.execution_id, space.adhoc_execution_id
    query = {"inputs": {"query": "cat"}}
    reads: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/v1/namespaces", None),
        ("POST", "/v1/namespaces/list", {}),
        ("GET", f"/v1/namespaces/{ns}", None),
        # The BYO document read: 403 for a read-only key before the fix.
        ("GET", f"/v1/namespaces/{ns}/documents/{doc}", None),
        ("GET", "/v1/collections", None),
        ("POST", "/v1/collections/list", {}),
        ("GET", f"/v1/collections/{col}", None),
        ("GET", f"/v1/collections/{col}/documents", None),
        ("POST", f"/v1/collections/{col}/documents/list", {}),
        ("GET", f"/v1/collections/{col}/documents/count", None),
        ("GET", f"/v1/collections/{col}/documents/{doc}", None),
        ("GET", "/v1/retrievers", None),
        ("POST", "/v1/retrievers/list", {}),
        ("GET", f"/v1/retrievers/{rid}", None),
        ("GET", "/v1/retrievers/typeahead?q=cat", None),
        ("POST", f"/v1/retrievers/{rid}/execute", query),
        ("POST", f"/v1/retrievers/{rid}/execute/batch", {"queries": [query, query]}),
        ("POST", f"/v1/retrievers/{rid}/execute/explain", query),
        ("POST", f"/v1/retrievers/{rid}/executions/list", {}),
        ("GET", f"/v1/retrievers/{rid}/executions/{eid}", None),
        ("GET", f"/v1/retrievers/{rid}/executions/{eid}/status", None),
        ("GET", f"/v1/retrievers/{rid}/executions/{eid}/profile", None),
        ("POST", "/v1/retrievers/execute", {**_adhoc(), **query}),
        ("POST", "/v1/retrievers/executions/list", {}),
        ("GET", f"/v1/retrievers/executions/{aid}", None),
        ("GET", "/v1/health/deep", None),
    ]
    for method, path, body in reads:
        resp = reader.request(method, path, json=body)
        assert resp.status_code == 200, (method, path, resp.text)
    assert reader.get(f"/v1/namespaces/{ns}/documents/{doc}").json()["document_id"] == doc


def _adhoc() -> dict[str, Any]:
    """An adhoc retriever: the one of the fixture, unnamed."""
    stage = {
        "stage_name": "search",
        "config": {
            "stage_id": "feature_search",
            "parameters": {"searches": [search()], "final_top_k": 3},
        },
    }
    return {
        "collection_identifiers": [COLLECTION],
        "input_schema": {"query": {"type": "text"}},
        "stages": [stage],
    }


def _routes(app: FastAPI) -> list[tuple[str, str, bool]]:
    """(method, path template, authenticated) of every route the application serves."""

    def authenticated(dependant: Any) -> bool:
        return any(d.call is get_principal or authenticated(d) for d in dependant.dependencies)

    found = []
    stack = list(app.routes)
    while stack:
        route = stack.pop()
        if hasattr(route, "effective_route_contexts"):  # FastAPI's included routers
            stack.extend(route.effective_route_contexts())
        elif hasattr(route, "dependant"):
            for method in route.methods or ():
                found.append((method, route.path, authenticated(route.dependant)))
    return sorted(found)


def _fill(path: str) -> str:
    """Ids that name nothing: a write that slipped through must not change the fixtures (the
    X-Namespace header still names the key's namespace)."""
    out = path
    while "{" in out:
        start = out.index("{")
        out = out[:start] + "missing-" + uuid.uuid4().hex[:6] + out[out.index("}") + 1 :]
    return out


def test_a_read_only_key_is_refused_on_every_write(
    server: ServerHandle, reader: httpx.Client, request: pytest.FixtureRequest
) -> None:
    bound = request.node.callspec.params["reader"] == "bound"
    app = server.server.config.app  # type: ignore[attr-defined]
    routes = _routes(app)
    reads = {("POST", p) for p in READ_POSTS}
    writes = sorted({(m, p) for m, p, auth in routes if auth and m != "GET"} - reads)
    # The families the issue names are all there (the route table was read, not guessed).
    assert ("POST", "/v1/namespaces/{namespace_id}/documents/upsert") in writes
    assert ("DELETE", "/v1/collections/{collection_identifier}/documents/{document_id}") in writes
    assert ("POST", "/v1/retrievers/{retriever_id}/clone") in writes
    assert ("POST", "/v1/keys") in writes and len(writes) >= 16
    for method, path in writes:
        resp = reader.request(method, _fill(path), json={})
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["error"]["code"] == "read_only_key", (method, path)
    # ...and every read of the table is let through (ids that name nothing: 404s), but for
    # key administration, which is an admin key's alone.
    for method, path, auth in routes:
        if auth and (method == "GET" or (method, path) in reads):
            resp = reader.request(method, _fill(path), json=None)
            if path.startswith("/v1/keys"):
                assert resp.json()["error"]["code"] == "admin_key_required", path
            elif bound and path.startswith("/v1/namespaces/{"):
                # a made-up namespace in the path: a bound key gets the refusal it gets for
                # any namespace but its own, so it cannot tell which ones exist
                assert resp.json()["error"]["code"] == "namespace_forbidden", path
            else:
                assert resp.status_code not in (401, 403), (method, path, resp.text)


def test_deep_health_shows_a_namespace_key_its_namespace_only(
    server: ServerHandle, space: Space
) -> None:
    other = f"ns-{uuid.uuid4().hex[:10]}"
    admin = server.client(server.admin_key)
    admin.post("/v1/namespaces", json={"namespace_name": other}).raise_for_status()
    body = {"collection_name": "theirs", "source": {"type": "none"}}
    server.client(server.admin_key, other).post("/v1/collections", json=body).raise_for_status()
    mine = {c["collection_id"] for c in space.admin.get("/v1/collections").json()["results"]}
    everything = admin.get("/v1/health/deep").json()
    assert mine < set(everything["index"])  # the admin sees the other namespace's too

    for read_only in (False, True):
        key = _key(server, namespace_id=space.ns_id, read_only=read_only)
        seen = server.client(key).get("/v1/health/deep")
        assert seen.status_code == 200, seen.text
        got = seen.json()
        assert set(got["index"]) == mine, "another namespace's collections were shown"
        assert got["checks"]["search_index"]["collections"] == len(mine)
        assert got["scope"] == {"namespace_id": space.ns_id}
    assert everything["scope"] == {"namespace_id": None}
    # A read-only key valid for every namespace reads every namespace's health.
    reader = server.client(_key(server, read_only=True)).get("/v1/health/deep").json()
    assert set(reader["index"]) >= set(everything["index"])


def test_only_admin_keys_manage_keys(server: ServerHandle, space: Space) -> None:
    for kw in ({"namespace_id": space.ns_id}, {"read_only": True}):
        client = server.client(_key(server, **kw))
        for method, path in (("GET", "/v1/keys"), ("POST", "/v1/keys"), ("GET", "/v1/keys/x")):
            resp = client.request(method, path, json={} if method == "POST" else None)
            assert resp.status_code == 403, (kw, method, path)
            # a read-only key is refused a write as a read-only key first
            code = "read_only_key" if method == "POST" and "read_only" in kw else None
            assert resp.json()["error"]["code"] == (code or "admin_key_required")
        assert client.delete("/v1/keys/key_x").status_code == 403
