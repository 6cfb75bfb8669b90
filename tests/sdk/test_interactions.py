"""Retriever interactions through the official SDK (RetrieverInteractionsApi), the way an app
records them: the execution id and document ids come from a real execute response.

* create, get, a repeat within the window deduplicated, and the execution's profile counting
  each interaction type;
* a batch, listed with each of the SDK's simple filters, sorted, and paged with totals;
* delete (idempotent), and the counts following it;
* tenant isolation: another namespace neither sees, deletes nor records against them;
* read-only keys read but never write;
* hostile input (unknown execution or document, negative position, unknown type, a batch with
  one bad item, unsupported list options) is a clear 4xx and writes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import mixpeek
import pytest
from mixpeek.exceptions import NotFoundException
from mixpeek.models import (
    BulkInteractionsRequest,
    InteractionType,
    ListInteractionsRequest,
    SearchInteraction,
)

from tests.support.sdk_runs import GEAR_TEXTS as TEXTS
from tests.support.sdk_runs import Space, search_stage
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.sdk, pytest.mark.store_only]


@dataclass
class World:
    space: Space
    other: Space  # another namespace, same admin key
    retriever_id: str
    doc_ids: list[str]

    def api(self, space: Space | None = None) -> mixpeek.RetrieverInteractionsApi:
        return mixpeek.RetrieverInteractionsApi((space or self.space).client())

    def http(self, key: str | None = None, namespace: str | None = None) -> httpx.Client:
        handle = self.space.handle
        return handle.client(key or handle.admin_key, namespace or self.space.name)

    def run(self) -> tuple[str, list[str]]:
        """A fresh execution: its id and the document ids it returned, in rank order."""
        got = self.space.execute(self.retriever_id, {"inputs": {"q": f"gear {uuid.uuid4().hex}"}})
        return got.model.execution_id, [d["document_id"] for d in got.raw["documents"]]

    def counts(self, execution_id: str) -> dict[str, int]:
        api = self.space.retrievers()
        profile = api.get_execution_profile_retrievers(self.retriever_id, execution_id)
        return dict(profile["interaction_counts"])

    def listed(self, space: Space | None = None, **filters: Any) -> list[str]:
        page = self.api(space).list_interactions_retrievers(
            # from_dict, as a user with JSON filters writes it (the constructor drops a
            # plain-dict AND list's conditions to None)
            limit=1000,
            list_interactions_request=ListInteractionsRequest.from_dict(filters),
        )
        return [r.interaction_id for r in page.results]


@pytest.fixture(scope="module")
def world(server: ServerHandle) -> World:
    space = Space(server)
    space.collection("gear", [{"text": t} for t in TEXTS])
    rid = space.retriever(
        {"collection_identifiers": ["gear"], "stages": [search_stage(final_top_k=4)]}
    )
    other = Space(server)
    other.collection("gear", [{"text": "Someone else's catalogue"}])
    docs = [
        d["document_id"] for d in space.execute(rid, {"inputs": {"q": "shoes"}}).raw["documents"]
    ]
    return World(space, other, rid, docs)


def click(feature_id: str, position: int, execution_id: str | None, **kw: Any) -> SearchInteraction:
    return SearchInteraction(
        feature_id=feature_id,
        interaction_type=kw.pop("types", [InteractionType.CLICK]),
        position=position,
        execution_id=execution_id,
        **kw,
    )


def error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False and body["status"] == status
    return dict(body["error"])


def test_record_get_dedupe_and_count(world: World) -> None:
    execution_id, docs = world.run()
    api = world.api()
    sent = click(
        docs[1],
        1,
        execution_id,
        types=[InteractionType.VIEW, InteractionType.CLICK],
        metadata={"device": "mobile", "dwell_ms": 5200},
        user_id="user-7",
        session_id="sess-1",
        document_score=0.42,
        result_set_size=len(docs),
    )
    made = api.create_interaction_retrievers(sent)
    assert made.interaction_id and made.deduplicated is False and made.timestamp
    assert made.retriever_id == world.retriever_id  # inferred from the execution
    got = api.get_interaction_retrievers(made.interaction_id)
    assert got == made
    assert (got.feature_id, got.position, got.metadata) == (docs[1], 1, sent.metadata)

    again = api.create_interaction_retrievers(sent)  # the same click, resent
    assert again.deduplicated is True and again.interaction_id is None
    # a different type on the same result is a new interaction
    api.create_interaction_retrievers(
        click(docs[1], 1, execution_id, types=[InteractionType.SHARE])
    )
    api.create_interaction_retrievers(click(docs[0], 0, execution_id))
    assert world.counts(execution_id) == {"view": 1, "click": 2, "share": 1}
    fresh_execution, _ = world.run()
    assert world.counts(fresh_execution) == {}


def test_batch_list_filters_sort_and_pages(world: World) -> None:
    first, docs = world.run()
    second, _ = world.run()
    session = f"sess-{uuid.uuid4().hex[:6]}"
    plan = [
        (docs[0], 0, first, [InteractionType.VIEW]),
        (docs[1], 1, first, [InteractionType.VIEW, InteractionType.CLICK]),
        (docs[2], 2, first, [InteractionType.POSITIVE_FEEDBACK]),
        (docs[0], 0, second, [InteractionType.CLICK]),
        (docs[3], 3, second, [InteractionType.PURCHASE]),
    ]
    batch = BulkInteractionsRequest(
        interactions=[
            click(
                d,
                p,
                x,
                types=t,
                session_id=session,
                user_id=f"u{p % 2}",
                metadata={"device": "Mobile app" if p % 2 else "desktop", "n": p},
            )
            for d, p, x, t in plan
        ]
    )
    made_at = datetime.now(UTC).isoformat()
    made = world.api().create_interactions_bulk_retrievers_batch(batch)
    assert (made.created, made.failed) == (5, 0)
    ids = [r.interaction_id for r in made.results or []]
    assert [r.index for r in made.results or []] == list(range(5)) and len(set(ids)) == 5

    assert set(world.listed(session_id=session)) == set(ids)
    assert (
        world.listed(execution_id=first, sort={"field": "position", "direction": "asc"}) == ids[:3]
    )
    assert world.listed(execution_id=second, sort={"field": "position", "direction": "desc"}) == [
        ids[4],
        ids[3],
    ]
    assert set(world.listed(session_id=session, interaction_type="click")) == {ids[1], ids[3]}
    assert set(world.listed(session_id=session, feature_id=docs[0])) == {ids[0], ids[3]}
    assert set(world.listed(session_id=session, user_id="u1")) == {ids[1], ids[4]}
    assert set(world.listed(retriever_id=world.retriever_id, session_id=session)) == set(ids)
    assert world.listed(session_id=session, interaction_type="share") == []
    assert world.counts(first) == {"view": 2, "click": 1, "positive_feedback": 1}

    # LogicalOperator filters over the interaction's fields, and a metadata search
    near_clicks = {
        "AND": [
            {"field": "position", "operator": "lte", "value": 1},
            {"field": "interaction_type", "operator": "in", "value": ["click", "purchase"]},
        ]
    }
    assert set(world.listed(session_id=session, filters=near_clicks)) == {ids[1], ids[3]}
    since = {"field": "timestamp", "operator": "gte", "value": made_at}
    assert set(world.listed(session_id=session, filters=since)) == set(ids)
    assert world.listed(session_id=session, filters={"metadata.n": 3}) == [ids[4]]
    assert set(world.listed(session_id=session, search="MOBILE")) == {ids[1], ids[4]}
    assert world.listed(session_id=session, search="tablet") == []

    # pages of 2, newest first, with totals; the deprecated `items` mirrors `results`
    seen: list[str] = []
    for page_no in (1, 2, 3):
        page = world.api().list_interactions_retrievers(
            page_size=2,
            page=page_no,
            include_total=True,
            list_interactions_request=ListInteractionsRequest(session_id=session),
        )
        assert page.items == page.results and page.pagination.total == 5
        assert page.pagination.total_pages == 3
        seen += [r.interaction_id for r in page.results]
    assert sorted(seen) == sorted(ids) and len(seen) == 5


def test_delete_is_idempotent_and_counts_follow(world: World) -> None:
    execution_id, docs = world.run()
    api = world.api()
    made = api.create_interaction_retrievers(click(docs[0], 0, execution_id))
    assert world.counts(execution_id) == {"click": 1}
    assert api.delete_interaction_retrievers(made.interaction_id)["deleted"] is True
    with pytest.raises(NotFoundException):
        api.get_interaction_retrievers(made.interaction_id)
    assert api.delete_interaction_retrievers(made.interaction_id)["deleted"] is False
    assert world.counts(execution_id) == {}
    assert world.listed(execution_id=execution_id) == []


def test_another_namespace_sees_nothing(world: World) -> None:
    execution_id, docs = world.run()
    mine = world.api().create_interaction_retrievers(click(docs[0], 0, execution_id))
    theirs = world.api(world.other)
    with pytest.raises(NotFoundException):
        theirs.get_interaction_retrievers(mine.interaction_id)
    assert mine.interaction_id not in world.listed(world.other)
    assert world.listed(world.other, execution_id=execution_id) == []
    assert theirs.delete_interaction_retrievers(mine.interaction_id)["deleted"] is False
    assert world.api().get_interaction_retrievers(mine.interaction_id) == mine

    # the other namespace cannot record against this one's execution or documents
    with world.http(namespace=world.other.name) as http:
        body = {"feature_id": docs[0], "interaction_type": ["click"], "position": 0}
        err = error(
            http.post("/v1/retrievers/interactions", json={**body, "execution_id": execution_id}),
            404,
        )
        assert err["code"] == "execution_not_found"
        assert (
            error(http.post("/v1/retrievers/interactions", json=body), 404)["code"]
            == "document_not_found"
        )
    # a key bound to the other namespace cannot select this one
    admin = world.http()
    key = admin.post("/v1/keys", json={"namespace": world.other.name}).raise_for_status().json()
    with world.space.handle.client(key["key"]) as bound:  # no X-Namespace: its own
        got = bound.get(f"/v1/retrievers/interactions/{mine.interaction_id}")
        assert got.status_code == 404, got.text
        refused = bound.get(
            f"/v1/retrievers/interactions/{mine.interaction_id}",
            headers={"X-Namespace": world.space.name},
        )
        assert refused.status_code == 403, refused.text
    admin.close()


def test_a_read_only_key_reads_but_never_writes(world: World) -> None:
    execution_id, docs = world.run()
    made = world.api().create_interaction_retrievers(click(docs[0], 0, execution_id))
    admin = world.http()
    body = {"namespace": world.space.name, "read_only": True}
    key = admin.post("/v1/keys", json=body).raise_for_status().json()["key"]
    admin.close()
    reader = world.api(world.space.as_key(key))
    assert reader.get_interaction_retrievers(made.interaction_id) == made
    assert made.interaction_id in [
        r.interaction_id
        for r in reader.list_interactions_retrievers(
            list_interactions_request=ListInteractionsRequest(execution_id=execution_id)
        ).results
    ]
    with world.http(key=key) as http:
        one = {"feature_id": docs[1], "interaction_type": ["view"], "position": 1}
        for method, path, payload in (
            ("POST", "", one),
            ("POST", "/batch", {"interactions": [one]}),
            ("DELETE", f"/{made.interaction_id}", None),
        ):
            resp = http.request(method, f"/v1/retrievers/interactions{path}", json=payload)
            assert error(resp, 403)["code"] == "read_only_key"
    assert world.counts(execution_id) == {"click": 1}


def test_bad_input_is_a_clear_4xx_and_writes_nothing(world: World) -> None:
    execution_id, docs = world.run()
    ok = {
        "feature_id": docs[0],
        "interaction_type": ["click"],
        "position": 0,
        "execution_id": execution_id,
    }
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**ok, "execution_id": "exec_missing"}, 404, "execution_not_found"),
        ({**ok, "feature_id": "doc_missing"}, 404, "document_not_found"),
        ({**ok, "position": -1}, 422, ""),
        ({**ok, "interaction_type": ["telepathy"]}, 422, ""),
        ({**ok, "interaction_type": []}, 422, ""),
        ({**ok, "position": "first"}, 422, ""),
        ({**ok, "retriever_id": "ret_elsewhere"}, 422, "validation_error"),
        (
            {key: v for key, v in ok.items() if key != "execution_id"}
            | {"retriever_id": world.retriever_id},
            422,
            "validation_error",
        ),
        ({**ok, "position": 7, "result_set_size": 3}, 422, "validation_error"),
        ({**ok, "result_set_size": 0}, 422, "validation_error"),
        ({**ok, "feature_id": "x" * 300}, 422, ""),
    ]
    with world.http() as http:
        for body, status, code in cases:
            err = error(http.post("/v1/retrievers/interactions", json=body), status)
            assert not code or err["code"] == code, (body, err)
        # one bad item refuses the whole batch, naming it
        batch = {
            "interactions": [ok, {**ok, "feature_id": docs[1]}, {**ok, "feature_id": "doc_missing"}]
        }
        err = error(http.post("/v1/retrievers/interactions/batch", json=batch), 404)
        assert err["details"]["index"] == 2
        error(http.post("/v1/retrievers/interactions/batch", json={"interactions": []}), 422)
        for listing, status in (
            ({"filters": {"position": {"lte": 5}}}, 422),  # not the filter language
            ({"filters": {"field": "position", "operator": "near", "value": 1}}, 422),
            ({"sort": {"field": "metadata.device"}}, 422),
            ({"interaction_type": "telepathy"}, 422),
        ):
            error(http.post("/v1/retrievers/interactions/list", json=listing), status)
        error(http.post("/v1/retrievers/interactions/list", params={"after": "x"}, json={}), 400)
    assert world.counts(execution_id) == {}
    assert world.listed(execution_id=execution_id) == []


@pytest.mark.inprocess  # a server of its own, with a small scan cap
def test_filters_scan_at_most_the_cap(fresh_server: Any) -> None:
    handle = fresh_server(embedder="hash", filter_scan_cap=3)
    space = Space(handle)
    space.collection("gear")
    docs = space.add("gear", [{"text": t} for t in TEXTS])
    session = "sess-cap"
    batch = [
        click(d, i, None, session_id=session if i < 3 else "other", metadata={"i": i})
        for i, d in enumerate(docs)
    ]
    api = mixpeek.RetrieverInteractionsApi(space.client())
    api.create_interactions_bulk_retrievers_batch(BulkInteractionsRequest(interactions=batch))
    flt = {"field": "metadata.i", "operator": "gte", "value": 1}

    def listed(**kw: Any) -> list[int]:
        body = ListInteractionsRequest.from_dict(kw)
        got = api.list_interactions_retrievers(list_interactions_request=body)
        return sorted(r.metadata["i"] for r in got.results)

    assert listed(session_id=session, filters=flt) == [1, 2]  # 3 scanned: at the cap
    assert listed(session_id=session, search="zzz") == []
    with handle.client(handle.admin_key, space.name) as http:
        resp = http.post("/v1/retrievers/interactions/list", json={"filters": flt})
    assert error(resp, 422)["code"] == "filter_scan_too_large"  # 4 to scan: refused
    assert listed() == [0, 1, 2, 3]  # a plain list is never capped


def test_backfill_alias_and_ignored_keys(world: World) -> None:
    """occurred_at keeps a past instant (naive is UTC), clamps a future one to now and sorts;
    `document_id` is accepted for feature_id; an undeclared key is named in `warning`."""
    execution_id, docs = world.run()
    session = f"sess-{uuid.uuid4().hex[:6]}"
    base = {"interaction_type": ["click"], "execution_id": execution_id, "session_id": session}
    with world.http() as http:
        made = http.post(
            "/v1/retrievers/interactions/batch",
            json={
                "interactions": [
                    {
                        **base,
                        "feature_id": docs[0],
                        "position": 0,
                        "occurred_at": "2024-03-01T10:00:00",
                    },
                    {
                        **base,
                        "feature_id": docs[1],
                        "position": 1,
                        "occurred_at": "2099-01-01T00:00:00Z",
                    },
                    {
                        **base,
                        "feature_id": docs[2],
                        "position": 2,
                        "occurred_at": "2023-03-01T10:00:00+02:00",
                    },
                ]
            },
        )
        ids = [r["interaction_id"] for r in made.raise_for_status().json()["results"]]
        aliased = (
            http.post(
                "/v1/retrievers/interactions",
                json={**base, "document_id": docs[3], "position": 3, "colour": "red"},
            )
            .raise_for_status()
            .json()
        )
    assert aliased["feature_id"] == docs[3] and "colour" in aliased["warning"]
    api = world.api()
    got = [api.get_interaction_retrievers(i).occurred_at for i in ids]
    assert got[0] == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert got[1] is not None and got[1] <= datetime.now(UTC)  # the future, clamped
    assert got[2] == datetime(2023, 3, 1, 8, tzinfo=UTC)
    oldest_first = world.listed(
        session_id=session, sort={"field": "occurred_at", "direction": "asc"}
    )
    assert oldest_first[:3] == [ids[2], ids[0], ids[1]]
