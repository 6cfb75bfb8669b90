"""Replay: a past execution's inputs run again against today's index and retriever version,
with the ranking diff checked against the two stored rankings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import mixpeek
import pytest

from tests.support import slow_stage
from tests.support.corpus import COLLECTION, search, seed_corpus
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]


@pytest.fixture(scope="module")
def world(server: ServerHandle) -> Iterator[tuple[httpx.Client, str]]:
    namespace = f"ns-{uuid.uuid4().hex[:10]}"
    client = seed_corpus(server, namespace)
    yield client, namespace
    client.close()


def _retriever(http: httpx.Client, stages: list[dict[str, Any]]) -> str:
    resp = http.post(
        "/v1/retrievers",
        json={
            "retriever_name": f"r-{uuid.uuid4().hex[:8]}",
            "collection_identifiers": [COLLECTION],
            # A templated filter value, as users write it.
            "input_schema": {"query": {"type": "text"}, "year": {"type": "integer"}},
            "stages": stages,
        },
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["retriever_id"])


def _hybrid(top_k: int) -> dict[str, Any]:
    return {
        "stage_name": "search",
        "config": {
            "stage_id": "feature_search",
            "parameters": {
                "searches": [search(top_k=40), search(top_k=40, lexical=True)],
                "fusion": "rrf",
                "final_top_k": top_k,
            },
        },
    }


NOT_BEFORE = {
    "stage_name": "recent",
    "config": {
        "stage_id": "attribute_filter",
        "parameters": {"field": "metadata.year", "operator": "gte", "value": "{{INPUT.year}}"},
    },
}


def _ranking(http: httpx.Client, rid: str, eid: str) -> list[str]:
    resp = http.get(f"/v1/retrievers/{rid}/executions/{eid}", params={"limit": 1000})
    assert resp.status_code == 200, resp.text
    return [d["document_id"] for d in resp.json()["documents"]]


def _doc_id(http: httpx.Client, text: str) -> str:
    resp = http.post(f"/v1/collections/{COLLECTION}/documents/list", json={"limit": 100})
    assert resp.status_code == 200, resp.text
    return next(d["document_id"] for d in resp.json()["results"] if d.get("text") == text)


def test_replay_diffs_the_ranking_after_documents_and_the_retriever_changed(
    world: tuple[httpx.Client, str], server: ServerHandle
) -> None:
    http, namespace = world
    rid = _retriever(http, [_hybrid(20), NOT_BEFORE])
    inputs = {"query": "a cat by the window", "year": 2000}
    first = http.post(f"/v1/retrievers/{rid}/execute", json={"inputs": inputs})
    assert first.status_code == 200, first.text
    eid = first.json()["execution_id"]
    before = _ranking(http, rid, eid)
    assert len(before) >= 10

    # A filler document becomes the best answer; the kitten document goes away; the retriever
    # keeps fewer hits. Each should show in the diff.
    filler_text = "Filler document number 7 about gardening and soil"
    climber = _doc_id(http, filler_text)
    kitten = _doc_id(http, "A kitten napped in the afternoon sun by the window")
    assert kitten in before[:5]
    resp = http.patch(
        f"/v1/collections/{COLLECTION}/documents/{climber}",
        json={"text": "A cat by the window, asleep in the sun on the windowsill"},
    )
    assert resp.status_code == 200, resp.text
    assert http.delete(f"/v1/collections/{COLLECTION}/documents/{kitten}").status_code == 200
    patched = http.patch(f"/v1/retrievers/{rid}", json={"stages": [_hybrid(15), NOT_BEFORE]})
    assert patched.status_code == 200, patched.text

    out = http.post(f"/v1/retrievers/{rid}/executions/{eid}/replay", params={"depth": 10})
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["replay_of"] == eid and body["status"] == "completed"
    assert body["execution_id"] != eid
    assert body["inputs"] == inputs
    assert body["retriever_version"] == {"original": 1, "replayed": 2}
    after = _ranking(http, rid, body["execution_id"])
    assert body["total_results"] == {"original": len(before), "replayed": len(after)}
    assert len(after) <= 15 and kitten not in after

    diff = body["diff"]
    rows = {r["document_id"]: r for r in diff["rows"]}
    # Every row agrees with the two stored rankings.
    for doc, row in rows.items():
        old = before.index(doc) + 1 if doc in before else None
        new = after.index(doc) + 1 if doc in after else None
        assert (row["original_rank"], row["replayed_rank"]) == (old, new)
        if old is not None and new is not None:
            assert row["rank_delta"] == old - new
    assert [r["document_id"] for r in diff["rows"] if r["change"] != "gone"] == after[:10]
    assert rows[kitten]["change"] == "gone" and rows[kitten]["replayed_rank"] is None
    assert rows[climber]["replayed_rank"] == 1
    assert rows[climber]["change"] == ("up" if climber in before[:10] else "new")
    counted = {c: sum(r["change"] == c for r in diff["rows"]) for c in ("up", "down", "same")}
    summary = diff["summary"]
    assert (summary["moved_up"], summary["moved_down"], summary["unchanged"]) == (
        counted["up"],
        counted["down"],
        counted["same"],
    )
    assert summary["gone"] == sum(r["change"] == "gone" for r in diff["rows"]) >= 1
    assert summary["moved_up"] + summary["new"] >= 1

    # The replay is an ordinary execution, named as a replay, and the SDK's strict models
    # still parse it.
    detail = http.get(f"/v1/retrievers/{rid}/executions/{body['execution_id']}").json()
    assert detail["replay_of"] == eid and detail["cache_hit"] is False
    config = mixpeek.Configuration(
        host=server.base_url,
        access_token=server.admin_key,
        api_key={"NamespaceHeader": namespace},
    )
    with mixpeek.ApiClient(config) as client:
        parsed = mixpeek.RetrieversApi(client).get_execution_retrievers(rid, body["execution_id"])
    assert parsed.execution_id == body["execution_id"]


def test_a_replay_never_answers_from_the_cache(world: tuple[httpx.Client, str]) -> None:
    http, _ = world
    rid = _retriever(http, [_hybrid(10)])
    inputs = {"query": "quantum computing"}
    eid = http.post(f"/v1/retrievers/{rid}/execute", json={"inputs": inputs}).json()["execution_id"]
    cached = http.post(f"/v1/retrievers/{rid}/execute", json={"inputs": inputs}).json()
    assert cached["cache_hit"] is True  # the same query is cached...
    body = http.post(f"/v1/retrievers/{rid}/executions/{eid}/replay").json()
    detail = http.get(f"/v1/retrievers/{rid}/executions/{body['execution_id']}").json()
    assert detail["cache_hit"] is False  # ...but a replay runs the stages again
    assert {s["input_count"] > 0 for s in detail["stage_statistics"]["stages"].values()} == {True}
    summary = body["diff"]["summary"]
    assert (
        summary["unchanged"] == len(body["diff"]["rows"]) == min(10, len(_ranking(http, rid, eid)))
    )
    assert summary["moved_up"] == summary["moved_down"] == summary["new"] == summary["gone"] == 0


def test_replay_refuses_what_it_cannot_replay(world: tuple[httpx.Client, str]) -> None:
    http, _ = world
    rid = _retriever(http, [_hybrid(5)])
    missing = http.post(f"/v1/retrievers/{rid}/executions/exec_nosuchrun/replay")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "execution_not_found"
    eid = http.post(f"/v1/retrievers/{rid}/execute", json={"inputs": {"query": "x"}}).json()[
        "execution_id"
    ]
    for depth in (0, 1001, "many"):
        bad = http.post(f"/v1/retrievers/{rid}/executions/{eid}/replay", params={"depth": depth})
        assert bad.status_code == 422 and bad.json()["success"] is False
    other = _retriever(http, [_hybrid(5)])
    # An execution is replayed only through its own retriever.
    assert http.post(f"/v1/retrievers/{other}/executions/{eid}/replay").status_code == 404

    slow = _retriever(
        http,
        [
            _hybrid(5),
            {
                "stage_name": "slow",
                "config": {
                    "stage_id": slow_stage.SlowStage.stage_id,
                    "parameters": {"total_ms": 1500},
                },
            },
        ],
    )
    pending = http.post(
        f"/v1/retrievers/{slow}/execute", params={"wait": "false"}, json={"inputs": {"query": "x"}}
    ).json()["execution_id"]
    busy = http.post(f"/v1/retrievers/{slow}/executions/{pending}/replay")
    assert busy.status_code == 409, busy.text
    assert busy.json()["error"]["code"] == "execution_not_finished"


def _listed(http: httpx.Client, path: str, body: dict[str, Any]) -> list[str]:
    resp = http.post(path, json=body, params={"limit": 50})
    assert resp.status_code == 200, resp.text
    return [x["execution_id"] for x in resp.json()["results"]]


def test_execution_lists_filter_by_time(world: tuple[httpx.Client, str]) -> None:
    http, _ = world
    rid = _retriever(http, [_hybrid(5)])
    runs = []
    for query in ("soil", "qubits", "markets"):  # distinct inputs: no cache hits
        out = http.post(f"/v1/retrievers/{rid}/execute", json={"inputs": {"query": query}})
        detail = http.get(f"/v1/retrievers/{rid}/executions/{out.json()['execution_id']}")
        runs.append((detail.json()["execution_id"], detail.json()["created_at"]))
    (first, t1), (second, t2), (third, t3) = runs
    assert t1 < t2 < t3
    named = f"/v1/retrievers/{rid}/executions/list"
    assert _listed(http, named, {}) == [third, second, first]
    assert _listed(http, named, {"start_time": t2}) == [third, second]
    assert _listed(http, named, {"end_time": t2}) == [second, first]
    instant = datetime.fromisoformat(t2.replace("Z", "+00:00"))
    for spelled in (
        instant.isoformat(),  # +00:00
        instant.astimezone(timezone(timedelta(hours=2))).isoformat(),
        instant.replace(tzinfo=None).isoformat(),  # no offset: UTC
    ):
        assert _listed(http, named, {"start_time": spelled, "end_time": spelled}) == [second]
    assert _listed(http, named, {"start_time": t3, "status": "failed"}) == []
    bad = http.post(named, json={"start_time": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "start_time"

    adhoc = http.post(
        "/v1/retrievers/execute",
        json={
            "collection_identifiers": [COLLECTION],
            "stages": [_hybrid(3)],
            "inputs": {"query": "soil"},
        },
    )
    assert adhoc.status_code == 200, adhoc.text
    aid = adhoc.json()["execution_id"]
    created = http.get(f"/v1/retrievers/executions/{aid}").json()["created_at"]
    listed = _listed(http, "/v1/retrievers/executions/list", {"start_time": created})
    assert listed == [aid]
