"""GET /metrics after real traffic: every series of docs/observability.md is present with the
values that traffic implies, labelled by route template (never a raw path), and the series
that name collections are served to unbound keys only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ADMIN_KEY
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]

DOCS = 5
EXECUTE_ROUTE = "/v1/retrievers/{retriever_id}/execute"
STAGE_IDS = ("feature_search", "attribute_filter", "sort_attribute")


def scrape(handle: ServerHandle, key: str | None = None) -> dict[str, list[Any]]:
    """Metric family name -> its samples (name, labels, value)."""
    resp = handle.client(key).get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return {f.name: list(f.samples) for f in text_string_to_metric_families(resp.text)}


def value(families: dict[str, list[Any]], sample: str, **labels: str) -> float:
    """The one sample of that name whose labels include `labels`."""
    family = sample.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    found = [
        s.value
        for s in families.get(family, [])
        if s.name == sample and labels.items() <= s.labels.items()
    ]
    assert len(found) == 1, f"{sample}{labels}: {found}"
    return float(found[0])


def _traffic(handle: ServerHandle) -> dict[str, str]:
    """A namespace, a collection of DOCS vectors, a 3-stage retriever run twice (the second
    run is a cache hit), and one unknown route."""
    admin = handle.client(ADMIN_KEY)
    ns = admin.post(
        "/v1/namespaces",
        json={"namespace_name": "obs", "vector_configs": [{"name": "emb", "dimension": 2}]},
    ).raise_for_status()
    scoped = handle.client(ADMIN_KEY, "obs")
    col = scoped.post(
        "/v1/collections", json={"collection_name": "pts", "source": {"type": "direct_upsert"}}
    ).raise_for_status()
    docs = [
        {
            "document_id": f"d{i}",
            "vectors": {"emb": [1.0, float(i)]},
            "metadata": {"tag": "a" if i % 2 == 0 else "b", "rank": i},
        }
        for i in range(DOCS)
    ]
    admin.post(
        "/v1/namespaces/obs/documents/upsert", json={"collection_id": "pts", "documents": docs}
    ).raise_for_status()
    search = {
        "feature_uri": "emb",
        "query": {"input_mode": "vector", "value": "{{INPUT.v}}"},
        "top_k": 10,
    }
    stages = [
        {
            "stage_name": "search",
            "config": {"stage_id": "feature_search", "parameters": {"searches": [search]}},
        },
        {
            "stage_name": "only-a",
            "config": {
                "stage_id": "attribute_filter",
                "parameters": {"field": "metadata.tag", "operator": "eq", "value": "a"},
            },
        },
        {
            "stage_name": "by-rank",
            "config": {"stage_id": "sort_attribute", "parameters": {"field": "metadata.rank"}},
        },
    ]
    rid = (
        scoped.post(
            "/v1/retrievers",
            json={
                "retriever_name": "r",
                "collection_identifiers": ["pts"],
                "input_schema": {"v": {"type": "array"}},
                "stages": stages,
            },
        )
        .raise_for_status()
        .json()["retriever_id"]
    )
    runs = [
        scoped.post(f"/v1/retrievers/{rid}/execute", json={"inputs": {"v": [1.0, 0.0]}})
        .raise_for_status()
        .json()
        for _ in range(2)
    ]
    assert [r["status"] for r in runs] == ["completed", "completed"]
    assert [r["cache_hit"] for r in runs] == [False, True]
    assert len(runs[0]["documents"]) == 3  # d0, d2, d4: the filter ran
    assert admin.get("/v1/no/such/route/xyz123").status_code == 404
    assert admin.request("PROPFIND", "/v1/health").status_code == 405  # a method we never serve
    return {
        "namespace_id": ns.json()["namespace_id"],
        "collection_id": col.json()["collection_id"],
        "retriever_id": rid,
    }


def test_metrics_after_traffic(fresh_server: Callable[..., ServerHandle]) -> None:
    handle = fresh_server(embedder="hash")
    ids = _traffic(handle)
    anonymous = scrape(handle)
    admin = scrape(handle, ADMIN_KEY)

    # Latency by route template, method and status class; unknown paths under one value.
    http = "stagewise_http_request_duration_seconds"
    execute = {"method": "POST", "route": EXECUTE_ROUTE, "status_class": "2xx"}
    assert value(anonymous, f"{http}_count", **execute) == 2
    assert value(anonymous, f"{http}_sum", **execute) > 0
    assert value(anonymous, f"{http}_count", route="unmatched", status_class="4xx") == 1
    assert value(anonymous, f"{http}_count", method="other", route="/v1/health") == 1
    routes = {s.labels["route"] for s in anonymous[http]}
    assert {EXECUTE_ROUTE, "/v1/retrievers", "unmatched"} <= routes
    for label in routes:  # templates only: no id, no raw path
        assert ids["retriever_id"] not in label and "xyz123" not in label, label

    # Executions by final status and mode; none running now.
    assert value(anonymous, "stagewise_executions_total", status="completed", mode="named") == 2
    assert not any(
        s.labels.get("status") == "failed" and s.value for s in anonymous["stagewise_executions"]
    )
    assert value(anonymous, "stagewise_executions_running") == 0

    # One duration per stage of the run that ran (the cache hit ran none).
    for stage_id in STAGE_IDS:
        stage = {"stage_id": stage_id}
        assert value(anonymous, "stagewise_stage_duration_seconds_count", **stage) == 1
        assert value(anonymous, "stagewise_stage_duration_seconds_sum", **stage) > 0

    # Result cache: the ratio is hits / (hits + misses).
    assert value(anonymous, "stagewise_result_cache_hits_total") == 1
    assert value(anonymous, "stagewise_result_cache_misses_total") == 1

    # Index figures, read at scrape time: aggregates for anyone.
    assert value(anonymous, "stagewise_index_points") == DOCS
    assert 0 <= value(anonymous, "stagewise_index_unindexed_points") <= DOCS
    assert value(anonymous, "stagewise_index_follower_lag_seqs") == 0
    assert value(anonymous, "stagewise_index_shards_failed") == 0
    assert value(anonymous, "stagewise_follower_writes_applied_total") >= DOCS

    # Per collection: only for an unbound key.
    per_collection = (
        "stagewise_collection_points",
        "stagewise_collection_unindexed_points",
        "stagewise_collection_follower_lag_seqs",
    )
    assert not set(per_collection) & set(anonymous)
    mine = {"namespace_id": ids["namespace_id"], "collection_id": ids["collection_id"]}
    assert value(admin, "stagewise_collection_points", **mine) == DOCS
    unindexed = value(admin, "stagewise_collection_unindexed_points", **mine)
    assert unindexed == value(admin, "stagewise_index_unindexed_points")
    assert value(admin, "stagewise_collection_follower_lag_seqs", **mine) == 0


def test_per_collection_series_need_an_unbound_key(
    fresh_server: Callable[..., ServerHandle],
) -> None:
    handle = fresh_server(embedder="hash")
    admin = handle.client(ADMIN_KEY)
    admin.post(
        "/v1/namespaces",
        json={"namespace_name": "tenant", "vector_configs": [{"name": "v", "dimension": 2}]},
    ).raise_for_status()
    handle.client(ADMIN_KEY, "tenant").post(
        "/v1/collections", json={"collection_name": "col", "source": {"type": "direct_upsert"}}
    ).raise_for_status()

    def key(**body: Any) -> str:
        return str(admin.post("/v1/keys", json=body).raise_for_status().json()["key"])

    bound, reader = key(namespace="tenant"), key(read_only=True)
    assert "stagewise_collection_points" not in scrape(handle, bound)
    assert "stagewise_index_points" in scrape(handle, bound)  # the aggregates, as anonymous
    assert "stagewise_collection_points" in scrape(handle, reader)
    # A key that is sent is checked: a wrong one is refused in the error shape.
    resp = handle.client("sk_not_a_key").get("/metrics")
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_api_key"
    assert resp.headers["x-request-id"]


def test_two_apps_in_one_process_count_apart(
    fresh_server: Callable[..., ServerHandle], tmp_path: Any
) -> None:
    """Each app has its own registry: one app's requests are not the other's."""
    one = fresh_server(tmp_path / "one", embedder="hash")
    two = fresh_server(tmp_path / "two", embedder="hash")
    with httpx.Client(base_url=one.base_url) as http:
        for _ in range(3):
            http.get("/v1/health").raise_for_status()
    health = {"method": "GET", "route": "/v1/health", "status_class": "2xx"}
    count = "stagewise_http_request_duration_seconds_count"
    assert value(scrape(one), count, **health) == 3
    assert not any(
        s.labels.get("route") == "/v1/health"
        for s in scrape(two).get("stagewise_http_request_duration_seconds", [])
    )
