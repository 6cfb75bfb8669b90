"""Execution records: pagination, seed fields, failures, budgets, progress, SSE, adhoc,
batch and explain, checked by value over loopback HTTP."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import slow_stage
from tests.support.corpus import COLLECTION, TEXTS, search, seed_corpus
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]


@pytest.fixture(scope="module")
def http(server: ServerHandle) -> Iterator[httpx.Client]:
    client = seed_corpus(server, f"ns-{uuid.uuid4().hex[:10]}")
    yield client
    client.close()


def make(http: httpx.Client, stages: list[dict[str, Any]], **extra: Any) -> str:
    body = {
        "retriever_name": f"r-{uuid.uuid4().hex[:8]}",
        "collection_identifiers": [COLLECTION],
        "input_schema": {"query": {"type": "text"}},
        "stages": stages,
        **extra,
    }
    resp = http.post("/v1/retrievers", json=body)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["retriever_id"])


def fs(name: str, searches: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return {
        "stage_name": name,
        "config": {"stage_id": "feature_search", "parameters": {"searches": searches, **params}},
    }


def run(http: httpx.Client, rid: str, body: dict[str, Any], **params: Any) -> dict[str, Any]:
    resp = http.post(f"/v1/retrievers/{rid}/execute", json=body, params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


QUERY = {"query": "documents about gardening"}


def full_list(http: httpx.Client, rid: str) -> list[str]:
    out = run(http, rid, {"inputs": QUERY, "pagination": {"method": "offset", "page_size": 500}})
    return [d["document_id"] for d in out["documents"]]


@pytest.mark.parametrize("method", ["cursor", "offset", "keyset", "scroll"])
def test_walking_every_page_yields_the_ranked_list(http: httpx.Client, method: str) -> None:
    rid = make(http, [fs("search", [search()], final_top_k=36)])
    expected = full_list(http, rid)
    assert len(expected) == len(TEXTS)
    seen: list[str] = []
    pagination: dict[str, Any] = {"method": method}
    size_key = "page_size" if method == "offset" else "limit"
    pagination[size_key] = 7
    page_number = 1
    totals = set()
    for _ in range(20):
        out = run(http, rid, {"inputs": QUERY, "pagination": pagination})
        totals.add(out["pagination"]["total"])
        seen += [d["document_id"] for d in out["documents"]]
        # A write between pages must not disturb the walk: pages come from the snapshot.
        http.post(
            f"/v1/collections/{COLLECTION}/documents",
            json={"text": "gardening documents about soil and gardening", "metadata": {}},
        )
        if not out["pagination"]["has_next"]:
            break
        if method == "cursor":
            pagination["cursor"] = out["pagination"]["cursor"]
        elif method == "scroll":
            pagination["scroll_id"] = out["pagination"]["scroll_id"]
        elif method == "keyset":
            pagination["after"] = out["pagination"]["after"]
        else:
            page_number += 1
            pagination["page_number"] = page_number
    assert seen == expected
    assert totals == {len(expected)}


def test_hybrid_rrf_matches_hand_computed_fusion(http: httpx.Client) -> None:
    dense = make(http, [fs("d", [search(top_k=20)], final_top_k=20)])
    lexical = make(http, [fs("l", [search(lexical=True, top_k=20)], final_top_k=20)])
    hybrid = make(
        http,
        [fs("h", [search(top_k=20), search(lexical=True, top_k=20)], fusion="rrf", final_top_k=40)],
    )
    q = {"inputs": {"query": "cat sleeping by the window"}, "pagination": {"limit": 100}}
    ranks: dict[str, float] = {}
    for rid in (dense, lexical):
        for rank, doc in enumerate(run(http, rid, q)["documents"], start=1):
            ranks[doc["document_id"]] = ranks.get(doc["document_id"], 0.0) + 1 / (60 + rank)
    expected = sorted(ranks.items(), key=lambda kv: (-kv[1], kv[0]))
    got = run(http, hybrid, q)["documents"]
    assert [d["document_id"] for d in got] == [k for k, _ in expected]
    for doc, (_, score) in zip(got, expected, strict=True):
        assert doc["score"] == pytest.approx(score, abs=1e-12)
        assert doc["scores"]["fused"] == pytest.approx(score, abs=1e-12)
        assert set(doc["scores"]["sources"]) <= {
            f"dense:{search()['feature_uri']}",
            f"bm25:{search()['feature_uri']}",
        }


def test_completed_execution_has_every_field(http: httpx.Client) -> None:
    rid = make(
        http,
        [
            fs("search", [search()], final_top_k=30),
            {
                "stage_name": "recent",
                "config": {
                    "stage_id": "attribute_filter",
                    "parameters": {
                        "field": "metadata.year",
                        "operator": "gte",
                        "value": "{{INPUT.min_year}}",
                    },
                },
            },
            {
                "stage_name": "sorted",
                "config": {"stage_id": "sort_attribute", "parameters": {"field": "metadata.year"}},
            },
        ],
        input_schema={"query": {"type": "text"}, "min_year": {"type": "integer", "default": 2010}},
        budget_limits={"max_credits": 100, "max_time_ms": 60000},
    )
    out = run(
        http,
        rid,
        {
            "inputs": {"query": "gardening", "unused": 1},
            "pagination": {"method": "cursor", "limit": 5},
        },
    )
    eid = out["execution_id"]
    detail = http.get(f"/v1/retrievers/{rid}/executions/{eid}").json()
    assert eid.startswith("exec_") and detail["status"] == "completed"
    stages = detail["stage_statistics"]["stages"]
    assert list(stages) == ["search", "recent", "sorted"]
    # The first stage considered every point of the collection (its input), kept 30.
    points = http.get(f"/v1/collections/{COLLECTION}/documents/count").json()["count"]
    assert stages["search"]["input_count"] == points and stages["search"]["output_count"] == 30
    assert stages["search"]["efficiency"] == pytest.approx(30 / points)
    kept = stages["recent"]["output_count"]
    assert stages["recent"]["input_count"] == 30 and 0 < kept < 30
    assert stages["recent"]["efficiency"] == pytest.approx(kept / 30)
    assert stages["sorted"]["input_count"] == stages["sorted"]["output_count"] == kept
    assert all(s["duration_ms"] >= 0 for s in stages.values())
    # The search's own cache holds query embeddings: a hit means no model call was made.
    cache = stages["search"]["metadata"]["cache"]
    assert stages["search"]["stage_cache_hit"] is (cache["hits"] > 0 and cache["misses"] == 0)
    # Stages without a cache of their own say nothing about one.
    assert "stage_cache_hit" not in stages["recent"] and "cache_hit" not in stages["sorted"]
    assert detail["pagination"]["total"] == kept and out["pagination"]["total"] == kept
    assert detail["stages_completed"] == detail["total_stages"] == 3
    assert detail["current_stage"] is None and detail["error"] is None
    assert detail["completed_at"] >= detail["created_at"]
    credits = detail["stage_statistics"]["credits_used"]
    assert credits == pytest.approx(sum(s["credits"] for s in stages.values()))
    budget = detail["budget"]
    assert budget["credits_used"] == credits
    assert budget["credits_remaining"] == pytest.approx(100 - credits)
    assert budget["limits"] == {"max_credits": 100, "max_time_ms": 60000}
    assert budget["time_used_ms"] == detail["stage_statistics"]["total_time_ms"] > 0
    assert detail["interpretation"]["inferred_inputs"] == {"min_year": 2010}
    assert detail["interpretation"]["ignored_input_keys"] == ["unused"]
    assert detail["documents_retained"] is True and detail["cache_hit"] is False
    assert all(d["metadata"]["year"] >= 2010 for d in detail["documents"])

    again = run(
        http,
        rid,
        {
            "inputs": {"query": "gardening", "unused": 1},
            "pagination": {"method": "cursor", "limit": 5},
        },
    )
    assert again["cache_hit"] is True and again["execution_id"] != eid
    assert again["stage_statistics"]["stages"] == stages
    assert [d["document_id"] for d in again["documents"]] == [
        d["document_id"] for d in out["documents"]
    ]
    fresh = run(http, rid, {"inputs": {"query": "gardening", "unused": 1}, "skip_cache": True})
    assert fresh["cache_hit"] is False


def test_budget_failure_is_recorded_with_the_stats_that_ran(http: httpx.Client) -> None:
    rid = make(
        http,
        [
            fs("lexical", [search(lexical=True, top_k=10)], final_top_k=10),
            fs("dense", [search(top_k=10)], final_top_k=10),
        ],
        budget_limits={"max_credits": 1.5},
    )
    out = run(http, rid, {"inputs": {"query": "gardening"}})
    assert out["status"] == "failed"
    assert out["error"] == "Budget exceeded: Maximum credits limit reached"
    detail = http.get(f"/v1/retrievers/{rid}/executions/{out['execution_id']}").json()
    assert detail["status"] == "failed" and detail["error"] == out["error"]
    assert detail["stages_completed"] == 1 and detail["total_stages"] == 2
    lexical = detail["stage_statistics"]["stages"]["lexical"]
    assert lexical["output_count"] == 10 and "error" not in lexical
    assert "error" in detail["stage_statistics"]["stages"]["dense"]
    assert detail["budget"]["credits_used"] <= 1.5
    assert detail["documents"] == [] and detail["documents_retained"] is False
    assert detail["completed_at"] >= detail["created_at"]


def test_time_budget_stops_a_slow_pipeline(http: httpx.Client) -> None:
    rid = make(
        http,
        [
            {
                "stage_name": "slow",
                "config": {"stage_id": "test_slow", "parameters": {"total_ms": 2000}},
            }
        ],
        budget_limits={"max_time_ms": 50},
    )
    started = time.perf_counter()
    out = run(http, rid, {"inputs": {"query": "cat"}})
    wall_ms = (time.perf_counter() - started) * 1000
    assert out["status"] == "failed"
    assert out["error"] == "Budget exceeded: Maximum time limit reached"
    used = out["budget"]["time_used_ms"]
    assert 50 <= used <= 50 + slow_stage.CHECK_INTERVAL_MS + 40  # one check interval + jitter
    assert wall_ms < 1000  # nowhere near the 2 s the stage wanted


def test_bad_requests_are_4xx_and_record_nothing(http: httpx.Client) -> None:
    rid = make(
        http, [fs("search", [search()])], input_schema={"query": {"type": "text", "required": True}}
    )
    before = http.post(f"/v1/retrievers/{rid}/executions/list").json()["pagination"]["total"]
    assert http.post(f"/v1/retrievers/{rid}/execute", json={"inputs": {}}).status_code == 422
    assert (
        http.post(f"/v1/retrievers/{rid}/execute", json={"inputs": {"query": 5}}).status_code == 422
    )
    bad_filter = {
        "inputs": {"query": "x"},
        "filters": {"AND": [{"field": "a", "operator": "nope"}]},
    }
    assert http.post(f"/v1/retrievers/{rid}/execute", json=bad_filter).status_code == 422
    assert http.post("/v1/retrievers/ret_missing/execute", json={}).status_code == 404
    after = http.post(f"/v1/retrievers/{rid}/executions/list").json()["pagination"]["total"]
    assert after == before


def test_wait_false_is_observable_in_processing(http: httpx.Client) -> None:
    rid = make(
        http,
        [
            fs("search", [search()], final_top_k=5),
            {
                "stage_name": "slow",
                "config": {"stage_id": "test_slow", "parameters": {"total_ms": 800}},
            },
            {
                "stage_name": "sorted",
                "config": {"stage_id": "sort_attribute", "parameters": {"field": "metadata.year"}},
            },
        ],
    )
    out = run(http, rid, {"inputs": {"query": "cat"}}, wait="false")
    assert out["status"] == "pending" and out["documents"] == []
    eid = out["execution_id"]
    seen: list[tuple[str, str | None, int]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s = http.get(f"/v1/retrievers/{rid}/executions/{eid}/status").json()
        seen.append((s["status"], s["current_stage"], s["stages_completed"]))
        if s["status"] in ("completed", "failed"):
            break
        time.sleep(0.05)
    assert ("processing", "slow", 1) in seen
    assert seen[-1] == ("completed", None, 3)
    detail = http.get(f"/v1/retrievers/{rid}/executions/{eid}").json()
    assert detail["stages_completed"] == 3 and len(detail["documents"]) == 5


def test_sse_stream_reports_each_stage(http: httpx.Client) -> None:
    rid = make(
        http,
        [
            fs("search", [search()], final_top_k=5),
            {
                "stage_name": "sorted",
                "config": {"stage_id": "sort_attribute", "parameters": {"field": "metadata.year"}},
            },
        ],
    )
    with http.stream(
        "POST", f"/v1/retrievers/{rid}/execute", json={"inputs": {"query": "cat"}, "stream": True}
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: ")]
    kinds = [e["event_type"] for e in events]
    assert kinds == [
        "stage_start",
        "stage_complete",
        "stage_start",
        "stage_complete",
        "execution_complete",
    ]
    assert [e["stage_name"] for e in events if e["event_type"] == "stage_complete"] == [
        "search",
        "sorted",
    ]
    assert len(events[-1]["documents"]) == 5
    eid = events[-1]["execution_id"]
    assert http.get(f"/v1/retrievers/{rid}/executions/{eid}").json()["status"] == "completed"


def test_adhoc_batch_and_explain(http: httpx.Client) -> None:
    adhoc = http.post(
        "/v1/retrievers/execute",
        json={
            "collection_identifiers": [COLLECTION],
            "input_schema": {"query": {"type": "text"}},
            "stages": [fs("search", [search()], final_top_k=4)],
            "inputs": {"query": "kitten"},
        },
    )
    assert adhoc.status_code == 200 and adhoc.headers["x-execution-mode"] == "adhoc"
    body = adhoc.json()
    assert body["execution_metadata"]["retriever_persisted"] is False
    assert len(body["documents"]) == 4
    got = http.get(f"/v1/retrievers/executions/{body['execution_id']}").json()
    assert got["execution_mode"] == "adhoc" and json.loads(got["inputs"]) == {"query": "kitten"}
    listed = http.post("/v1/retrievers/executions/list", json={}).json()
    assert body["execution_id"] in [r["execution_id"] for r in listed["results"]]

    rid = make(http, [fs("search", [search()], final_top_k=3)])
    batch = http.post(
        f"/v1/retrievers/{rid}/execute/batch",
        json={
            "queries": [{"inputs": {"query": "cat"}}, {"inputs": {"query": "stocks"}}],
            "settings": {"limit": 2},
        },
    ).json()
    assert [len(r["documents"]) for r in batch["results"]] == [2, 2]
    too_many = http.post(
        f"/v1/retrievers/{rid}/execute/batch", json={"queries": [{"inputs": {}}] * 17}
    )
    assert too_many.status_code == 422
    assert too_many.json()["error"]["details"]["limits"]["max_queries"] == 16

    cold = http.post(f"/v1/retrievers/{rid}/execute/explain", json={"inputs": {}}).json()
    assert cold["execution_plan"][0]["estimated_output"] == 3
    run(http, rid, {"inputs": {"query": "cat"}})
    warm = http.post(f"/v1/retrievers/{rid}/execute/explain", json={}).json()
    assert warm["history_runs"] >= 1
    assert warm["execution_plan"][0]["estimated_duration_ms"] > 0


def test_explain_inline_and_retriever_list_filters(http: httpx.Client) -> None:
    a = make(http, [fs("search", [search()], final_top_k=3)], tags=["alpha"], metadata={"n": 2})
    b = make(http, [fs("search", [search()], final_top_k=3)], tags=["beta"], metadata={"n": 1})
    out = run(http, a, {"inputs": {"query": "cat"}}, explain="true")
    assert out["explain_plan"]["retriever_id"] == a
    assert out["explain_plan"]["execution_plan"][0]["stage_name"] == "search"

    def listed(body: dict[str, Any]) -> list[str]:
        resp = http.post("/v1/retrievers/list", json=body, params={"limit": 1000})
        assert resp.status_code == 200, resp.text
        return [r["retriever_id"] for r in resp.json()["results"] if r["retriever_id"] in (a, b)]

    assert listed({"filters": {"tags": {"$in": ["alpha"]}}}) == [a]
    assert listed({"filters": {"tags": {"$nin": ["alpha"]}}}) == [b]
    assert listed({"sorts": [{"field": "metadata.n", "direction": "asc"}]}) == [b, a]
    assert listed({"sort": {"field": "metadata.n", "direction": "desc"}}) == [a, b]
    bad = http.post("/v1/retrievers/list", json={"filters": {"tags": {"$regex": "a"}}})
    assert bad.status_code == 422


def test_join_on_a_deleted_collection_fails_the_run(http: httpx.Client) -> None:
    http.post("/v1/collections", json={"collection_name": "labels", "source": {"type": "none"}})
    http.post(
        "/v1/collections/labels/documents",
        json={"metadata": {"category": "pets", "label": "Pets & animals"}},
    )
    enrich = {
        "stage_name": "join",
        "config": {
            "stage_id": "document_enrich",
            "parameters": {
                "target_collection_id": "labels",
                "source_field": "metadata.category",
                "target_field": "metadata.category",
                "fields_to_merge": ["metadata.label"],
                "output_field": "category_info",
            },
        },
    }
    rid = make(http, [fs("search", [search()], final_top_k=5), enrich])
    ok = run(http, rid, {"inputs": {"query": "kitten sleeping"}})
    assert ok["status"] == "completed"
    pets = [d for d in ok["documents"] if d["metadata"]["category"] == "pets"]
    assert pets and all(d["category_info"]["metadata"]["label"] == "Pets & animals" for d in pets)

    assert http.delete("/v1/collections/labels").status_code == 200
    failed = run(http, rid, {"inputs": {"query": "kitten sleeping"}, "skip_cache": True})
    assert failed["status"] == "failed"
    assert "labels" in failed["error"] and "no longer exists" in failed["error"]
    stages = failed["stage_statistics"]["stages"]
    assert stages["search"]["output_count"] == 5 and "error" in stages["join"]
    assert failed["stages_completed"] == 1
