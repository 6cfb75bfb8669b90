"""A namespace's declared payload_indexes are created on every collection's shard (at
collection create, and on the existing ones when the namespace is updated), so execute-time
filters on those fields are served by an index; a bad declaration stores nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]

DIM = 4


def _ns(server: ServerHandle, **body: Any) -> tuple[str, httpx.Response]:
    name = f"ns-{uuid.uuid4().hex[:10]}"
    resp = server.client(server.admin_key).post(
        "/v1/namespaces",
        json={
            "namespace_name": name,
            "vector_configs": [{"name": "emb", "dimension": DIM}],
            **body,
        },
    )
    return name, resp


def _indexes(client: httpx.Client, collection: str) -> dict[str, str]:
    body = client.get(f"/v1/collections/{collection}").raise_for_status().json()
    return {p["field_name"]: p["type"] for p in body["payload_indexes"]}


def _collection(server: ServerHandle, ns: str, name: str) -> httpx.Client:
    client = server.client(server.admin_key, namespace=ns)
    client.post(
        "/v1/collections", json={"collection_name": name, "source": {"type": "direct_upsert"}}
    ).raise_for_status()
    docs = [
        {
            "document_id": f"{name}-{i}",
            "vectors": {"emb": [1.0, i / 10, 0.5, (i % 3) / 3]},
            "metadata": {"brand": f"b{i % 3}", "year": 2000 + i % 4, "color": f"c{i % 2}"},
        }
        for i in range(12)
    ]
    server.client(server.admin_key).post(
        f"/v1/namespaces/{ns}/documents/upsert", json={"collection_id": name, "documents": docs}
    ).raise_for_status()
    return client


def test_declared_indexes_reach_every_shard(server: ServerHandle) -> None:
    ns, resp = _ns(
        server,
        payload_indexes=[
            {"field_name": "metadata.brand", "type": "keyword"},
            {"field_name": "metadata.year", "type": "integer"},
        ],
    )
    assert resp.status_code == 200, resp.text
    client = _collection(server, ns, "first")
    # Numbers are indexed as float: exact numeric comparisons (5 equals 5.0).
    assert _indexes(client, "first") == {"metadata.brand": "keyword", "metadata.year": "float"}

    # Declaring one more on the namespace indexes the existing collection too (a write).
    admin = server.client(server.admin_key)
    patched = admin.patch(
        f"/v1/namespaces/{ns}",
        json={
            "payload_indexes": [
                {"field_name": "metadata.brand", "type": "keyword"},
                {"field_name": "metadata.year", "type": "integer"},
                {"field_name": "metadata.color", "type": "keyword"},
            ]
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["payload_index_count"] == 3
    assert _indexes(client, "first")["metadata.color"] == "keyword"
    second = _collection(server, ns, "second")
    assert set(_indexes(second, "second")) == {"metadata.brand", "metadata.year", "metadata.color"}


def test_an_execute_time_filter_on_a_declared_field_uses_its_index(server: ServerHandle) -> None:
    ns, resp = _ns(server, payload_indexes=[{"field_name": "metadata.brand", "type": "keyword"}])
    assert resp.status_code == 200, resp.text
    client = _collection(server, ns, "items")
    created = client.post(
        "/v1/retrievers",
        json={
            "retriever_name": "plain",
            "collection_identifiers": ["items"],
            "input_schema": {"v": {"type": "array"}},
            "stages": [
                {
                    "stage_name": "search",
                    "config": {
                        "stage_id": "feature_search",
                        "parameters": {
                            "searches": [
                                {
                                    "feature_uri": "emb",
                                    "query": {"input_mode": "vector", "value": "{{INPUT.v}}"},
                                }
                            ],
                            "final_top_k": 20,
                        },
                    },
                }
            ],
        },
    )
    assert created.status_code == 200, created.text
    rid = created.json()["retriever_id"]

    def run(field: str, value: str) -> dict[str, Any]:
        body = {
            "inputs": {"v": [1.0, 0.2, 0.5, 0.1]},
            "filters": {"AND": [{"field": field, "operator": "eq", "value": value}]},
        }
        out = client.post(f"/v1/retrievers/{rid}/execute", json=body)
        assert out.status_code == 200, out.text
        return dict(out.json())

    declared = run("metadata.brand", "b1")
    assert {d["metadata"]["brand"] for d in declared["documents"]} == {"b1"}
    assert len(declared["documents"]) == 4
    report = declared["stage_statistics"]["stages"]["search"]["metadata"]["filter"]
    assert report["unindexed_fields"] == []
    assert not any("payload index" in w for w in declared["warnings"])

    # An undeclared field is still filtered exactly, and the run says it had no index.
    undeclared = run("metadata.color", "c0")
    assert {d["metadata"]["color"] for d in undeclared["documents"]} == {"c0"}
    assert len(undeclared["documents"]) == 6
    report = undeclared["stage_statistics"]["stages"]["search"]["metadata"]["filter"]
    assert report["unindexed_fields"] == ["metadata.color"]
    assert report["paths"] and all(p == ["exact"] for p in report["paths"].values())
    assert any("metadata.color" in w for w in undeclared["warnings"])


@pytest.mark.parametrize(
    "bad",
    [
        [{"field_name": "metadata.x", "type": "vector"}],
        [{"field_name": "", "type": "keyword"}],
        [{"field_name": "_seq", "type": "integer"}],
        [{"type": "keyword"}],
        "metadata.x",
    ],
)
def test_a_bad_declaration_is_refused_and_nothing_is_stored(server: ServerHandle, bad: Any) -> None:
    ns, resp = _ns(server, payload_indexes=bad)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] in ("validation_error", "invalid_request")
    assert server.client(server.admin_key).get(f"/v1/namespaces/{ns}").status_code == 404
