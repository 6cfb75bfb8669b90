"""feature_search on BYO vectors: exact filtered top_k, query modes, facets, group_by."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]

N, DIM = 3000, 16
rng = np.random.default_rng(7)
CENTRES = rng.normal(size=(12, DIM))
VECTORS = (CENTRES[rng.integers(0, 12, N)] + 0.4 * rng.normal(size=(N, DIM))).astype(np.float32)
# 20 common categories plus one rare one holding 0.5% of the documents.
CATEGORY = [f"c{i % 20}" if i % 200 else "rare" for i in range(N)]


@pytest.fixture(scope="module")
def http(server: ServerHandle) -> Iterator[httpx.Client]:
    ns = f"ns-{uuid.uuid4().hex[:10]}"
    admin = server.client(server.admin_key)
    admin.post(
        "/v1/namespaces",
        json={
            "namespace_name": ns,
            "vector_configs": [{"name": "emb", "dimension": DIM}],
        },
    ).raise_for_status()
    client = server.client(server.admin_key, namespace=ns)
    client.post(
        "/v1/collections", json={"collection_name": "points", "source": {"type": "direct_upsert"}}
    ).raise_for_status()
    for start in range(0, N, 1000):
        docs = [
            {
                "document_id": f"p{i}",
                "vectors": {"emb": VECTORS[i].tolist()},
                "metadata": {"category": CATEGORY[i], "rank": i},
            }
            for i in range(start, start + 1000)
        ]
        resp = admin.post(
            f"/v1/namespaces/{ns}/documents/upsert",
            json={"collection_id": "points", "documents": docs},
        )
        assert resp.status_code == 200, resp.text
    yield client
    client.close()


def exact_top(query: np.ndarray, allowed: list[int], k: int) -> list[str]:
    vecs = VECTORS[allowed]
    sims = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)) @ (query / np.linalg.norm(query))
    order = np.argsort(-sims, kind="stable")[:k]
    return [f"p{allowed[i]}" for i in order]


def adhoc(http: httpx.Client, params: dict[str, Any], **body: Any) -> dict[str, Any]:
    resp = http.post(
        "/v1/retrievers/execute",
        json={
            "collection_identifiers": ["points"],
            "stages": [{"stage_name": "s", "config": {"stage_id": "feature_search", **params}}],
            "pagination": {"method": "offset", "page_size": 500},
            **body,
        },
    )
    assert resp.status_code == 200, resp.text
    out = dict(resp.json())
    assert out["status"] == "completed", out["error"]
    return out


def vector_search(query: np.ndarray, top_k: int) -> dict[str, Any]:
    return {
        "feature_uri": "emb",
        "query": {"input_mode": "vector", "value": query.tolist()},
        "top_k": top_k,
    }


@pytest.mark.parametrize("category", ["c3", "rare"])
def test_filtered_search_returns_the_exact_top_k(http: httpx.Client, category: str) -> None:
    query = rng.normal(size=DIM).astype(np.float32)
    allowed = [i for i in range(N) if CATEGORY[i] == category]
    k = 50
    out = adhoc(
        http,
        {
            "parameters": {"searches": [vector_search(query, k)], "final_top_k": k},
            "pre_filters": {
                "AND": [{"field": "metadata.category", "operator": "eq", "value": category}]
            },
        },
    )
    got = [d["document_id"] for d in out["documents"]]
    expected = exact_top(query, allowed, k)
    assert len(got) == min(k, len(allowed))
    assert len(set(got) & set(expected)) / len(expected) >= 0.98
    assert all(d["metadata"]["category"] == category for d in out["documents"])


def test_request_filters_are_anded_with_pre_filters(http: httpx.Client) -> None:
    query = rng.normal(size=DIM).astype(np.float32)
    out = adhoc(
        http,
        {
            "parameters": {"searches": [vector_search(query, 100)], "final_top_k": 100},
            "pre_filters": {
                "AND": [{"field": "metadata.category", "operator": "eq", "value": "c4"}]
            },
        },
        filters={"AND": [{"field": "metadata.rank", "operator": "lt", "value": 1000}]},
    )
    allowed = [i for i in range(1000) if CATEGORY[i] == "c4"]
    assert sorted(d["document_id"] for d in out["documents"]) == sorted(f"p{i}" for i in allowed)


def test_document_query_min_score_facets_and_group_by(http: httpx.Client) -> None:
    search = {
        "feature_uri": "emb",
        "top_k": 200,
        "query": {
            "input_mode": "document",
            "document_ref": {"collection_id": "points", "document_id": "p17"},
        },
    }
    out = adhoc(
        http,
        {
            "parameters": {
                "searches": [search],
                "final_top_k": 200,
                "facets": [{"key": "metadata.category", "limit": 30}],
            }
        },
    )
    assert out["documents"][0]["document_id"] == "p17"
    assert out["documents"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    facet = out["facets"][0]
    assert facet["key"] == "metadata.category"
    counts = {v["value"]: v["count"] for v in facet["values"]}
    assert counts == {c: CATEGORY.count(c) for c in set(CATEGORY)}

    strict = dict(search, min_score=0.9)
    hi = adhoc(http, {"parameters": {"searches": [strict], "final_top_k": 200}})
    assert hi["documents"] and all(d["score"] >= 0.9 for d in hi["documents"])
    assert len(hi["documents"]) < len(out["documents"])

    grouped = adhoc(
        http,
        {
            "parameters": {
                "searches": [search],
                "final_top_k": 200,
                "group_by": {"field": "metadata.category", "max_per_group": 2, "limit": 3},
            }
        },
    )
    cats = [d["metadata"]["category"] for d in grouped["documents"]]
    assert len(cats) == 6 and len(set(cats)) == 3 and all(cats.count(c) == 2 for c in set(cats))
