"""Taxonomies through the official SDK's typed methods (TaxonomiesApi, RetrieversApi,
CollectionsApi), checked by value, hostile input included. The SDK parses every answer
into its strict models, so a wrong shape fails here."""

from __future__ import annotations

import uuid
from typing import Any

import mixpeek
import pytest
from mixpeek.exceptions import (
    ConflictException,
    NotFoundException,
    UnprocessableEntityException,
)
from mixpeek.models import (
    CreateCollectionRequest,
    CreateRetrieverRequest,
    CreateTaxonomyRequest,
    ExecuteRetrieverRequest,
    JoinResponse,
    ListTaxonomiesRequest,
    ListTaxonomiesResponse,
    PatchTaxonomyRequest,
    Payload,
    Payload1,
    TaxonomyResponse,
)

from tests.sdk.conftest import ClientFactory
from tests.support.server import ServerHandle
from tests.support.taxonomy_world import (
    TaxonomyWorld,
    create_taxonomy,
    flat_config,
    matcher_retriever,
    text_collection,
)

pytestmark = [pytest.mark.sdk]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def stage_retriever(
    client: mixpeek.ApiClient, world: TaxonomyWorld, params: dict[str, Any], stage_id: str
) -> dict[str, Any]:
    return {
        "retriever_name": unique("enrich"),
        "collection_identifiers": [world.articles_id],
        "stages": [
            {
                "stage_name": "search",
                "config": {
                    "stage_id": "feature_search",
                    "parameters": {
                        "searches": [
                            {
                                "feature_uri": "mixpeek://text_extractor@v1/all_minilm_l6_v2",
                                "query": {"input_mode": "text", "value": "{{INPUT.query}}"},
                            }
                        ],
                        "final_top_k": 4,
                    },
                },
            },
            {"stage_name": "tax", "config": {"stage_id": stage_id, "parameters": params}},
        ],
    }


def run(client: mixpeek.ApiClient, body: dict[str, Any], query: str) -> Any:
    api = mixpeek.RetrieversApi(client)
    r = api.create_retriever(CreateRetrieverRequest.from_dict(body))
    request = ExecuteRetrieverRequest.from_dict({"inputs": {"query": query}, "limit": 50})
    return api.execute_retriever(r.retriever_id, request)


def test_crud_round_trip(sdk: ClientFactory, taxonomy_world: TaxonomyWorld) -> None:
    api = mixpeek.TaxonomiesApi(sdk(namespace=taxonomy_world.namespace))
    got = api.get_taxonomy_taxonomies(taxonomy_world.taxonomy_id)
    assert isinstance(got, TaxonomyResponse)
    assert got.taxonomy_name == "topics" and got.version == 1 and got.ready is True
    flat = got.config.actual_instance
    assert flat.taxonomy_type == "flat" and flat.retriever_id == taxonomy_world.matcher_id
    assert flat.source_collection.collection_id == taxonomy_world.topics_id
    assert flat.top_k == 1 and flat.input_mappings[0].path == "text"
    assert api.get_taxonomy_taxonomies("topics").taxonomy_id == got.taxonomy_id  # by name
    assert api.get_taxonomy_taxonomies("topics", version=1).taxonomy_id == got.taxonomy_id
    with pytest.raises(NotFoundException):
        api.get_taxonomy_taxonomies("topics", version=2)

    name = unique("copy")
    config = flat_config(taxonomy_world.matcher_id, "topics", top_k=3)  # a collection name
    made = api.create_taxonomy_taxonomies(
        CreateTaxonomyRequest.from_dict(
            {"taxonomy_name": name, "description": "d", "metadata": {"team": "a"}, "config": config}
        )
    )
    assert made.config.actual_instance.source_collection.collection_id == taxonomy_world.topics_id
    listed = api.list_taxonomies_0(list_taxonomies_request=ListTaxonomiesRequest.from_dict({}))
    assert isinstance(listed, ListTaxonomiesResponse) and listed.total_count == 2
    assert [t.taxonomy_name for t in listed.results] == ["topics", name]
    page = api.list_taxonomies(limit=1, offset=1)
    assert page.total_count == 2 and [t.taxonomy_name for t in page.results] == [name]
    searched = api.list_taxonomies_0(
        list_taxonomies_request=ListTaxonomiesRequest.from_dict({"search": name.upper()})
    )
    assert [t.taxonomy_id for t in searched.results] == [made.taxonomy_id]

    renamed = api.patch_taxonomy_taxonomies(
        made.taxonomy_id,
        PatchTaxonomyRequest.from_dict({"taxonomy_name": name + "-b", "metadata": {"v": 2}}),
    )
    assert renamed.taxonomy_name == name + "-b" and renamed.metadata == {"v": 2}
    assert renamed.description == "d" and renamed.config.actual_instance.top_k == 3
    with pytest.raises(ConflictException):
        api.patch_taxonomy_taxonomies(
            made.taxonomy_id, PatchTaxonomyRequest.from_dict({"taxonomy_name": "topics"})
        )
    with pytest.raises(ConflictException):
        api.create_taxonomy_taxonomies(
            CreateTaxonomyRequest.from_dict({"taxonomy_name": "topics", "config": config})
        )
    deleted = api.delete_taxonomy_taxonomies(made.taxonomy_id)
    assert deleted["taxonomy_id"] == made.taxonomy_id
    with pytest.raises(NotFoundException):
        api.get_taxonomy_taxonomies(made.taxonomy_id)
    with pytest.raises(NotFoundException):
        api.delete_taxonomy_taxonomies(made.taxonomy_id)


def test_execute_and_the_deprecated_path(sdk: ClientFactory, taxonomy_world: TaxonomyWorld) -> None:
    api = mixpeek.TaxonomiesApi(sdk(namespace=taxonomy_world.namespace))
    docs = [{"document_id": "a", "text": "The striker scored a goal"}, {"title": "no text"}]
    answer = api.execute_taxonomy_taxonomies_0("topics", Payload1({"source_documents": docs}))
    assert isinstance(answer, JoinResponse)
    assert answer.stats.processed_docs == 2 and answer.stats.enriched == 1
    assert answer.results is not None and answer.matches is not None
    assert [m.document_id for m in answer.matches] == ["a"]
    match = answer.matches[0]
    assert match.label == "sports" and match.hierarchy_level == 0 and match.score
    assert match.taxonomy_id == taxonomy_world.taxonomy_id
    assert "topic" in (match.enriched_fields or [])
    assert answer.results[0]["topic"] == "sports"
    assert answer.results[1] == {"title": "no text"}  # lacks the mapped `text`: unchanged
    with pytest.warns(DeprecationWarning):
        old = api.execute_taxonomy_taxonomies(
            taxonomy_world.taxonomy_id, Payload({"source_documents": docs[:1]})
        )
    assert old.matches is not None and old.matches[0].node_id == match.node_id


def test_hostile_taxonomy_input(
    sdk: ClientFactory, server: ServerHandle, taxonomy_world: TaxonomyWorld, ns_name: str
) -> None:
    client = sdk(namespace=taxonomy_world.namespace)
    api = mixpeek.TaxonomiesApi(client)

    def create(config: dict[str, Any]) -> None:
        body = {"taxonomy_name": unique("bad"), "config": config}
        api.create_taxonomy_taxonomies(CreateTaxonomyRequest.from_dict(body))

    good = flat_config(taxonomy_world.matcher_id, taxonomy_world.topics_id)
    with pytest.raises(NotFoundException):
        create({**good, "retriever_id": "ret_missing"})
    with pytest.raises(NotFoundException):
        create({**good, "source_collection": {"collection_id": "col_missing"}})
    # Another namespace's retriever and collection are not found here.
    other = sdk(namespace=ns_name)
    mixpeek.NamespacesApi(sdk()).create_namespace(
        mixpeek.models.CreateNamespaceRequest.from_dict({"namespace_name": ns_name})
    )
    foreign_col = text_collection(other, "foreign")
    foreign_ret = matcher_retriever(other, "foreign", [foreign_col])
    with pytest.raises(NotFoundException):
        create({**good, "retriever_id": foreign_ret})
    with pytest.raises(NotFoundException):
        create({**good, "source_collection": {"collection_id": foreign_col}})
    with pytest.raises(NotFoundException):
        mixpeek.TaxonomiesApi(other).get_taxonomy_taxonomies(taxonomy_world.taxonomy_id)
    # A retriever that does not search the node collection could never match.
    articles_ret = matcher_retriever(client, unique("arts"), [taxonomy_world.articles_id])
    with pytest.raises(UnprocessableEntityException) as exc:
        create({**good, "retriever_id": articles_ret})
    assert exc.value.data.error.code == "retriever_collection_mismatch"
    with pytest.raises(UnprocessableEntityException):
        create({**good, "input_mappings": [{"input_key": "query", "source_type": "vector"}]})
    with pytest.raises(UnprocessableEntityException):
        create({**good, "input_mappings": [{"input_key": "other", "path": "text"}]})
    with pytest.raises(UnprocessableEntityException):
        create({"taxonomy_type": "hierarchical", "inference_strategy": "schema"})
    with pytest.raises(ValueError):  # the SDK itself refuses top_k 0
        create({**good, "top_k": 0})
    raw = server.client(server.admin_key, taxonomy_world.namespace)
    for top_k in (0, 51, 2.5, True):
        body = {"taxonomy_name": unique("raw"), "config": {**good, "top_k": top_k}}
        assert raw.post("/v1/taxonomies", json=body).status_code == 422
    # PatchTaxonomyRequest has no config field (the SDK drops it): sent raw, it is refused.
    patched = raw.patch(f"/v1/taxonomies/{taxonomy_world.taxonomy_id}", json={"config": good})
    assert patched.status_code == 422 and patched.json()["error"]["code"] == "immutable_field"
    for docs in ([], [{"text": "x"}] * 6, ["not an object"]):
        with pytest.raises(UnprocessableEntityException):
            api.execute_taxonomy_taxonomies_0(
                taxonomy_world.taxonomy_id, Payload1({"source_documents": docs})
            )
    with pytest.raises(NotFoundException):
        api.execute_taxonomy_taxonomies_0("tax_missing", Payload1({"source_documents": [{}]}))


def test_taxonomy_enrich_stage_fans_out_gates_and_validates(
    sdk: ClientFactory, taxonomy_world: TaxonomyWorld
) -> None:
    client = sdk(namespace=taxonomy_world.namespace)
    prefix = f"_taxonomy_{taxonomy_world.taxonomy_id}"
    params = {"taxonomy_id": "topics", "top_k": 3}
    fanned = run(client, stage_retriever(client, taxonomy_world, params, "taxonomy_join"), "goal")
    assert fanned.status == "completed", fanned.error
    stats = fanned.stage_statistics.stages["tax"]
    assert (stats.input_count, stats.output_count) == (4, 12)  # N -> N*M
    docs = fanned.documents
    for i in range(0, 12, 3):  # each document's matches in a row, best first
        group = docs[i : i + 3]
        assert len({d["document_id"] for d in group}) == 1
        scores = [d[f"{prefix}_score"] for d in group]
        assert scores == sorted(scores, reverse=True)
        assert all(d["topic"] == d[f"{prefix}_label"] for d in group)

    gated = {"taxonomy_id": taxonomy_world.taxonomy_id, "top_k": 1, "min_score": 0.0}
    gated["when"] = {"AND": [{"field": "metadata.topic", "operator": "eq", "value": "sports"}]}
    mixed = "the team scored a goal, then the bank raised interest rates"
    result = run(client, stage_retriever(client, taxonomy_world, gated, "taxonomy_enrich"), mixed)
    meta = result.stage_statistics.stages["tax"].metadata
    assert meta["matched"] >= 1 and meta["skipped_by_when"] >= 1
    assert meta["matched"] + meta["skipped_by_when"] == 4
    for doc in result.documents:
        enriched = f"{prefix}_id" in doc
        assert enriched == (doc["metadata"]["topic"] == "sports")

    strict = {"taxonomy_id": taxonomy_world.taxonomy_id, "top_k": 1, "min_score": 1.0}
    result = run(client, stage_retriever(client, taxonomy_world, strict, "taxonomy_enrich"), "x")
    assert result.stage_statistics.stages["tax"].metadata["unmatched"] == 4
    assert all(f"{prefix}_id" not in d for d in result.documents)

    api = mixpeek.RetrieversApi(client)
    for bad in (
        {},  # the SDK's default taxonomy_id is the placeholder '{{TAXONOMY_ID}}'
        {"taxonomy_id": "{{TAXONOMY_ID}}"},
        {"taxonomy_id": "tax_missing"},
        {"taxonomy_id": taxonomy_world.taxonomy_id, "top_k": 51},
        {"taxonomy_id": taxonomy_world.taxonomy_id, "min_score": 2},
        {"taxonomy_id": taxonomy_world.taxonomy_id, "fields": [{"target_field": "x"}]},
    ):
        body = stage_retriever(client, taxonomy_world, bad, "taxonomy_enrich")
        with pytest.raises(UnprocessableEntityException):
            api.create_retriever(CreateRetrieverRequest.from_dict(body))


def test_collection_applications_and_deletion_at_run_time(
    sdk: ClientFactory, taxonomy_world: TaxonomyWorld
) -> None:
    client = sdk(namespace=taxonomy_world.namespace)
    collections, taxonomies = mixpeek.CollectionsApi(client), mixpeek.TaxonomiesApi(client)
    doomed = create_taxonomy(
        client, unique("doomed"), flat_config(taxonomy_world.matcher_id, taxonomy_world.topics_id)
    )
    app = {"taxonomy_id": doomed, "execution_mode": "materialize"}
    col = text_collection(client, unique("tagged"), taxonomy_applications=[app])
    got = collections.get_collection(col)
    assert got.taxonomy_count == 1 and got.taxonomy_applications is not None
    assert got.taxonomy_applications[0].taxonomy_id == doomed
    with pytest.raises(NotFoundException):
        text_collection(client, unique("x"), taxonomy_applications=[{"taxonomy_id": "tax_no"}])
    with pytest.raises(ConflictException):  # applied to a collection: refused
        taxonomies.delete_taxonomy_taxonomies(doomed)
    cleared = collections.update_collection(col, {"taxonomy_applications": []})
    assert cleared.taxonomy_count == 0
    with pytest.raises(NotFoundException):
        collections.update_collection(col, {"taxonomy_applications": [{"taxonomy_id": "tax_no"}]})
    assert isinstance(
        CreateCollectionRequest.from_dict(
            {"collection_name": "xyz", "source": {"type": "none"}, "taxonomy_applications": [app]}
        ),
        CreateCollectionRequest,
    )

    params = {"taxonomy_id": doomed, "top_k": 1}
    api = mixpeek.RetrieversApi(client)
    body = stage_retriever(client, taxonomy_world, params, "taxonomy_enrich")
    r = api.create_retriever(CreateRetrieverRequest.from_dict(body))
    taxonomies.delete_taxonomy_taxonomies(doomed)
    request = ExecuteRetrieverRequest.from_dict({"inputs": {"query": "goal"}})
    result = api.execute_retriever(r.retriever_id, request)
    assert result.status == "failed" and doomed in (result.error or "")
    assert "no longer exists" in (result.error or "")


@pytest.mark.inprocess  # reads the server's taxonomy store directly
def test_namespace_delete_removes_its_taxonomies(
    sdk: ClientFactory, server: ServerHandle, ns_name: str
) -> None:
    namespaces = mixpeek.NamespacesApi(sdk())
    created = namespaces.create_namespace(
        mixpeek.models.CreateNamespaceRequest.from_dict({"namespace_name": ns_name})
    )
    client = sdk(namespace=ns_name)
    col = text_collection(client, "nodes")
    create_taxonomy(client, "doomed", flat_config(matcher_retriever(client, "m", [col]), col))
    stores = server.server.config.app.state.stores  # type: ignore[attr-defined]
    assert stores.taxonomies.list_taxonomies(created.namespace_id)[1] == 1
    namespaces.delete_namespace(ns_name)
    assert stores.taxonomies.list_taxonomies(created.namespace_id) == ([], 0)
