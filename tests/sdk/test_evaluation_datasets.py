"""Evaluation datasets through the official SDK (RetrieverEvaluationsApi), as a user writes
them: judged queries uploaded, read back by id and by name, listed page by page; and mined
from interactions recorded through the SDK against real executions.

* create, get by id and by name, list with page/page_size and totals;
* a taken name is a 409; another namespace neither sees a dataset nor is blocked by its name;
* hostile input (no queries, grades outside 0..5 or not integers, repeated query ids, a
  document listed twice or relevant yet graded 0, past the documented limits) is a 4xx in the
  error shape and stores nothing;
* read-only keys read but never create or generate;
* generate-from-interactions follows the stated click model (services/dataset_mining.py):
  grades from click/purchase, negative feedback removes, views are no judgement, the window
  and min_interactions drop what they should, query ids are stable across runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import mixpeek
import pytest
from mixpeek.exceptions import ConflictException, NotFoundException
from mixpeek.models import (
    BulkInteractionsRequest,
    CreateDatasetRequest,
    GenerateFromInteractionsRequest,
    GroundTruthQuery,
    SearchInteraction,
)

from tests.support.sdk_runs import GEAR_TEXTS as TEXTS
from tests.support.sdk_runs import Space, search_stage
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.sdk, pytest.mark.store_only]

BASE = "/v1/retrievers/evaluations/datasets"


@dataclass
class World:
    space: Space
    other: Space
    retriever_id: str

    def api(self, space: Space | None = None) -> mixpeek.RetrieverEvaluationsApi:
        return mixpeek.RetrieverEvaluationsApi((space or self.space).client())

    def http(self, key: str | None = None) -> httpx.Client:
        handle = self.space.handle
        return handle.client(key or handle.admin_key, self.space.name)

    def run(self, q: str) -> tuple[str, list[str]]:
        got = self.space.execute(self.retriever_id, {"inputs": {"q": q}})
        return got.model.execution_id, [d["document_id"] for d in got.raw["documents"]]

    def names(self) -> list[str]:
        listed = self.api().list_datasets_retrievers_evaluations(page_size=1000)
        return [d.dataset_name for d in listed.datasets]


@pytest.fixture(scope="module")
def world(server: ServerHandle) -> World:
    space = Space(server)
    space.collection("gear", [{"text": t} for t in TEXTS])
    rid = space.retriever(
        {"collection_identifiers": ["gear"], "stages": [search_stage(final_top_k=4)]}
    )
    return World(space, Space(server), rid)


def query(qid: str, docs: list[str], scores: dict[str, int] | None = None) -> GroundTruthQuery:
    return GroundTruthQuery(
        query_id=qid,
        query_input={"q": f"text for {qid}"},
        relevant_documents=docs,
        relevance_scores=scores,
    )


def error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False and body["status"] == status
    return dict(body["error"])


def test_create_get_by_id_and_name_and_list(world: World) -> None:
    api = world.api()
    name = f"golden-{uuid.uuid4().hex[:6]}"
    sent = CreateDatasetRequest(
        dataset_name=name,
        description="hand-judged",
        queries=[
            query("q1", ["doc_b", "doc_a"], {"doc_a": 1, "doc_b": 3, "doc_c": 0}),
            query("q2", ["doc_z"]),
        ],
        metadata={"labeler": "ana", "version": 2},
    )
    made = api.create_dataset_retrievers_evaluations(sent)
    assert made.dataset_id and made.dataset_name == name and made.query_count == 2
    assert made.queries == sent.queries and made.metadata == sent.metadata
    assert made.namespace_id != world.other.name and made.created_at == made.updated_at
    assert api.get_dataset_retrievers_evaluations(made.dataset_id) == made
    assert api.get_dataset_retrievers_evaluations(name) == made

    more = [
        api.create_dataset_retrievers_evaluations(
            CreateDatasetRequest(dataset_name=f"{name}-{i}", queries=[query("q", ["d"])])
        )
        for i in range(2)
    ]
    first = api.list_datasets_retrievers_evaluations(page=1, page_size=2)
    second = api.list_datasets_retrievers_evaluations(page=2, page_size=2)
    assert (first.page, first.page_size, second.page) == (1, 2, 2)
    assert first.total == second.total >= 3
    listed = [d.dataset_id for d in first.datasets + second.datasets]
    assert len(set(listed)) == len(listed) == min(4, first.total)
    everything = api.list_datasets_retrievers_evaluations(page_size=1000)
    by_id = {d.dataset_id: d for d in everything.datasets}
    assert by_id[made.dataset_id] == made
    assert {m.dataset_id for m in more} <= set(by_id)


def test_a_taken_name_is_409_and_namespaces_are_apart(world: World) -> None:
    name = f"dup-{uuid.uuid4().hex[:6]}"
    body = {
        "dataset_name": name,
        "queries": [{"query_id": "a", "query_input": {}, "relevant_documents": ["d1"]}],
    }
    with world.http() as http:
        kept = http.post(BASE, json=body).raise_for_status().json()
        err = error(http.post(BASE, json={**body, "description": "again"}), 409)
        assert err["code"] == "dataset_name_taken"
        assert http.get(f"{BASE}/{name}").json() == kept
    other = world.api(world.other)
    for identifier in (kept["dataset_id"], name):
        with pytest.raises(NotFoundException):
            other.get_dataset_retrievers_evaluations(identifier)
    assert name not in [
        d.dataset_name for d in other.list_datasets_retrievers_evaluations(page_size=1000).datasets
    ]
    theirs = other.create_dataset_retrievers_evaluations(CreateDatasetRequest.from_dict(body))
    assert theirs.dataset_id != kept["dataset_id"]


def test_bad_input_is_a_clear_4xx_and_stores_nothing(world: World) -> None:
    good_q = {"query_id": "a", "query_input": {"q": "x"}, "relevant_documents": ["d1"]}
    many_docs = [f"d{i}" for i in range(1001)]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"queries": []}, "queries"),
        ({"queries": [{**good_q, "relevance_scores": {"d1": 6}}]}, "relevance_scores"),
        ({"queries": [{**good_q, "relevance_scores": {"d1": -1}}]}, "relevance_scores"),
        ({"queries": [{**good_q, "relevance_scores": {"d1": "3"}}]}, "relevance_scores"),
        ({"queries": [{**good_q, "relevance_scores": {"d1": 2.5}}]}, "relevance_scores"),
        ({"queries": [good_q, {**good_q, "relevant_documents": ["d2"]}]}, "duplicate_query_id"),
        ({"queries": [{**good_q, "relevant_documents": ["d1", "d1"]}]}, "duplicate_document"),
        ({"queries": [{**good_q, "relevance_scores": {"d1": 0}}]}, "contradictory_judgement"),
        ({"queries": [{**good_q, "relevant_documents": []}]}, "relevant_documents"),
        ({"queries": [{**good_q, "relevant_documents": many_docs}]}, "relevant_documents"),
        (
            {"queries": [{**good_q, "relevance_scores": {f"x{i}": 0 for i in range(1000)}}]},
            "too_many_judgements",
        ),
        ({"queries": [{**good_q, "query_id": f"q{i}"} for i in range(10_001)]}, "queries"),
        ({"queries": [{"query_id": "a", "relevant_documents": ["d1"]}]}, "query_input"),
        ({"queries": [{**good_q, "query_id": 7}]}, "query_id"),
        ({"dataset_name": "", "queries": [good_q]}, "dataset_name"),
        ({"dataset_name": "n" * 201, "queries": [good_q]}, "dataset_name"),
    ]
    before = world.names()
    with world.http() as http:
        for patch, expect in cases:
            name = f"bad-{uuid.uuid4().hex[:6]}"
            resp = http.post(BASE, json={"dataset_name": name, **patch})
            err = error(resp, 422)
            assert expect in str(err), (patch if len(str(patch)) < 300 else expect, err)
            assert error(http.get(f"{BASE}/{name}"), 404)["code"] == "dataset_not_found"
        malformed = http.post(
            BASE, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert 400 <= malformed.status_code < 500 and malformed.json()["success"] is False
    assert world.names() == before


def test_a_read_only_key_reads_but_never_writes(world: World) -> None:
    made = world.api().create_dataset_retrievers_evaluations(
        CreateDatasetRequest(dataset_name=f"ro-{uuid.uuid4().hex[:6]}", queries=[query("q", ["d"])])
    )
    with world.http() as admin:
        body = {"namespace": world.space.name, "read_only": True}
        key = admin.post("/v1/keys", json=body).raise_for_status().json()["key"]
    reader = world.api(world.space.as_key(key))
    assert reader.get_dataset_retrievers_evaluations(made.dataset_name) == made
    assert made.dataset_id in [
        d.dataset_id for d in reader.list_datasets_retrievers_evaluations(page_size=1000).datasets
    ]
    before = world.names()
    with world.http(key=key) as http:
        body = {
            "dataset_name": "nope",
            "queries": [{"query_id": "a", "query_input": {}, "relevant_documents": ["d"]}],
        }
        assert error(http.post(BASE, json=body), 403)["code"] == "read_only_key"
        path = f"/v1/retrievers/{world.retriever_id}/evaluations/generate-from-interactions"
        assert error(http.post(path, json={"min_interactions": 1}), 403)["code"] == "read_only_key"
    assert world.names() == before


def interaction(doc: str, execution_id: str, *types: str, **kw: Any) -> SearchInteraction:
    return SearchInteraction.from_dict(
        {
            "feature_id": doc,
            "interaction_type": list(types),
            "position": 0,
            "execution_id": execution_id,
            **kw,
        }
    )


def test_generate_from_interactions_follows_the_click_model(world: World) -> None:
    tag = uuid.uuid4().hex[:6]  # fresh queries: other tests' interactions stay out
    shoes, boots, tent, bag = (f"{w} {tag}" for w in ("shoes", "boots", "tent", "bag"))
    s1, docs = world.run(shoes)
    s2, _ = world.run(shoes)  # the same query run twice: one query in the dataset
    b1, _ = world.run(boots)
    t1, _ = world.run(tent)
    g1, _ = world.run(bag)
    d0, d1, d2 = docs[:3]
    long_ago = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    plan = [
        interaction(d0, s1, "view", "click"),
        interaction(d1, s1, "click"),
        interaction(d2, s1, "view"),  # seen, not chosen: no judgement
        interaction(d0, s2, "purchase"),  # grade 2
        interaction(d1, s2, "click"),
        interaction(d0, b1, "click"),
        interaction(d0, b1, "click"),
        interaction(d1, b1, "click"),
        interaction(d1, b1, "negative_feedback"),  # removes d1 for boots
        interaction(d0, t1, "click"),
        interaction(d1, t1, "click", occurred_at=long_ago),  # outside a 30-day window
        interaction(d0, g1, "view"),
        interaction(d1, g1, "view"),
        interaction(d2, g1, "impression"),
    ]
    interactions = mixpeek.RetrieverInteractionsApi(world.space.client())
    interactions.create_interactions_bulk_retrievers_batch(
        BulkInteractionsRequest(interactions=plan)
    )
    api = world.api()
    mined = api.generate_dataset_from_interactions_retrievers_id_evaluations(
        world.retriever_id,
        GenerateFromInteractionsRequest(dataset_name=f"mined-{tag}", min_interactions=2),
    )
    got = {q.query_input["q"]: q for q in mined.queries if tag in q.query_input["q"]}
    assert set(got) == {shoes, boots}  # tent: 1 in the window; bag: views only
    assert got[shoes].query_input == {"q": shoes}
    assert got[shoes].relevant_documents == [d0, d1]
    assert got[shoes].relevance_scores == {d0: 2, d1: 1}
    assert got[boots].relevant_documents == [d0] and got[boots].relevance_scores == {d0: 1}
    assert mined.metadata and mined.metadata["min_interactions"] == 2
    assert mined.metadata["click_model"]
    assert api.get_dataset_retrievers_evaluations(f"mined-{tag}") == mined

    wider = api.generate_dataset_from_interactions_retrievers_id_evaluations(
        world.retriever_id,
        GenerateFromInteractionsRequest(
            dataset_name=f"wide-{tag}", min_interactions=2, lookback_days=60
        ),
    )
    wide = {q.query_input["q"]: q for q in wider.queries if tag in q.query_input["q"]}
    assert set(wide) == {shoes, boots, tent}
    assert wide[tent].relevance_scores == {d0: 1, d1: 1}
    assert wide[shoes].query_id == got[shoes].query_id  # stable across runs

    views = api.generate_dataset_from_interactions_retrievers_id_evaluations(
        world.retriever_id,
        GenerateFromInteractionsRequest(
            dataset_name=f"views-{tag}", min_interactions=2, positive_interaction_types=["view"]
        ),
    )
    as_views = {q.query_input["q"]: q for q in views.queries if tag in q.query_input["q"]}
    assert set(as_views) == {shoes, bag}  # whatever the caller counts as positive
    # equal grades and counts: ordered by document id
    assert as_views[shoes].relevant_documents == sorted([d0, d2])
    assert as_views[bag].relevant_documents == sorted([d0, d1])

    # the SDK's default name; a second run that day takes the same name: 409, nothing stored
    auto = GenerateFromInteractionsRequest(min_interactions=2)
    named = api.generate_dataset_from_interactions_retrievers_id_evaluations(
        world.retriever_id, auto
    )
    assert named.dataset_name == f"auto_{world.retriever_id}_{datetime.now(UTC):%Y%m%d}"
    before = world.names()
    with pytest.raises(ConflictException):
        api.generate_dataset_from_interactions_retrievers_id_evaluations(world.retriever_id, auto)
    assert world.names() == before


def test_generate_refusals(world: World) -> None:
    path = f"/v1/retrievers/{world.retriever_id}/evaluations/generate-from-interactions"
    before = world.names()
    with world.http() as http:
        # the SDK's defaults (5 positive interactions per query) over a sparse log
        fresh = world.space.retriever(
            {"collection_identifiers": ["gear"], "stages": [search_stage(final_top_k=4)]}
        )
        empty = f"/v1/retrievers/{fresh}/evaluations/generate-from-interactions"
        assert error(http.post(empty), 422)["code"] == "no_qualifying_queries"
        # the namespace's other retriever has plenty; this one's own log is empty
        got = error(http.post(empty, json={"min_interactions": 1, "lookback_days": 365}), 422)
        assert got["code"] == "no_qualifying_queries"
        assert got["details"]["interactions_scanned"] == 0
        for body in (
            {"min_interactions": 0},
            {"lookback_days": 366},
            {"lookback_days": "7"},
            {"positive_interaction_types": ["clickz"]},
            {"positive_interaction_types": []},
            {"dataset_name": ""},
        ):
            error(http.post(path, json=body), 422)
        unknown = "/v1/retrievers/ret_missing/evaluations/generate-from-interactions"
        assert error(http.post(unknown, json={}), 404)["code"] == "retriever_not_found"
    with world.other.handle.client(world.other.handle.admin_key, world.other.name) as http:
        assert error(http.post(path, json={}), 404)["code"] == "retriever_not_found"
    assert world.names() == before
