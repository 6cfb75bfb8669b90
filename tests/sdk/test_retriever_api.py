"""Every retriever endpoint through the official SDK's typed methods, checked by value.

The SDK parses each response into its strict pydantic models, so a response of the wrong
shape fails here even when the plain-HTTP tests pass.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import mixpeek
import pytest
from mixpeek.exceptions import (
    ConflictException,
    NotFoundException,
    UnprocessableEntityException,
)
from mixpeek.models import (
    AdhocExecuteRequest,
    AdhocExecutionDetail,
    CloneRetrieverRequest,
    CloneRetrieverResponse,
    CreateRetrieverRequest,
    ErrorResponse,
    ExecuteBatchRequest,
    ExecuteRetrieverRequest,
    ExecuteRetrieverResponse,
    ExecutionDetail,
    ExplainRetrieverRequest,
    ExplainRetrieverResponse,
    ListAdhocExecutionsRequest,
    ListAdhocExecutionsResponse,
    ListExecutionsRequest,
    ListExecutionsResponse,
    ListRetrieversRequest,
    ListRetrieversResponse,
    PatchRetrieverRequest,
    PatchRetrieverResponse,
    RetrieverConfig,
    RetrieverModelOutput,
    RetrieverStageDefinition,
    TypeaheadResponse,
)

from tests.sdk.conftest import ClientFactory
from tests.support.corpus import COLLECTION, DENSE_URI, TEXTS, search, seed_corpus
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.sdk]

CATEGORIES = {"filter", "sort", "reduce", "apply", "enrich"}


@pytest.fixture(scope="module")
def corpus_ns(server: ServerHandle) -> Iterator[str]:
    """One namespace holding the `kbase` corpus, shared by the tests of this module."""
    name = f"ns-{uuid.uuid4().hex[:10]}"
    seed_corpus(server, name).close()
    yield name


@pytest.fixture
def client(sdk: ClientFactory, corpus_ns: str) -> mixpeek.ApiClient:
    return sdk(namespace=corpus_ns)


@pytest.fixture
def api(client: mixpeek.ApiClient) -> mixpeek.RetrieversApi:
    return mixpeek.RetrieversApi(client)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def fs_stage(name: str, searches: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return {
        "stage_name": name,
        "config": {"stage_id": "feature_search", "parameters": {"searches": searches, **params}},
    }


def filter_stage(name: str, field: str, operator: str, value: Any) -> dict[str, Any]:
    return {
        "stage_name": name,
        "config": {
            "stage_id": "attribute_filter",
            "parameters": {"field": field, "operator": operator, "value": value},
        },
    }


def create(api: mixpeek.RetrieversApi, body: dict[str, Any]) -> RetrieverConfig:
    full = {"collection_identifiers": [COLLECTION], **body}
    full.setdefault("retriever_name", unique("r"))
    full.setdefault("input_schema", {"query": {"type": "text"}})
    return api.create_retriever(CreateRetrieverRequest.from_dict(full))


def execute(api: mixpeek.RetrieversApi, rid: str, **body: Any) -> ExecuteRetrieverResponse:
    return api.execute_retriever(rid, ExecuteRetrieverRequest.from_dict(body))


def error_of(exc: mixpeek.ApiException) -> Any:
    """The parsed ErrorResponse the SDK attaches to the exception. The SDK declares no model
    for 409, so a conflict's body is parsed here with the same model."""
    data = exc.data if exc.status != 409 else ErrorResponse.from_json(exc.body or "")
    assert isinstance(data, ErrorResponse), exc.body
    assert data.success is False and data.status == exc.status
    return data.error


def count(pred: Any) -> int:
    return sum(1 for text, cat, year in TEXTS if pred(text, cat, year))


# --------------------------------------------------------------------------- stage catalogue


def test_list_stages_is_anonymous_and_complete(server: ServerHandle) -> None:
    anonymous = mixpeek.ApiClient(mixpeek.Configuration(host=server.base_url))
    stages = mixpeek.RetrieverStagesApi(anonymous).list_stages_retrievers()
    assert stages and all(isinstance(s, RetrieverStageDefinition) for s in stages)
    by_id = {s.stage_id: s for s in stages}
    assert len(by_id) == len(stages)
    for s in stages:
        assert s.category.value in CATEGORIES
        assert s.icon and s.description
        assert isinstance(s.parameter_schema, dict) and s.parameter_schema["type"] == "object"
    expected = {
        "feature_search": "filter",
        "attribute_filter": "filter",
        "llm_filter": "filter",
        "sort_attribute": "sort",
        "sort_relevance": "sort",
        "rerank": "sort",
        "mmr": "sort",
        "group_by": "reduce",
        "sample": "reduce",
        "aggregate": "reduce",
        "json_transform": "apply",
        "document_enrich": "apply",
    }
    assert {k: by_id[k].category.value for k in expected} == expected
    # The schema is the stage's real parameter model.
    assert {"searches", "final_top_k"} <= set(
        by_id["feature_search"].parameter_schema["properties"]
    )
    assert {"field", "operator", "value"} <= set(
        by_id["attribute_filter"].parameter_schema["properties"]
    )
    anonymous.rest_client.pool_manager.clear()


# --------------------------------------------------------------------------- definitions

HYBRID_BODY: dict[str, Any] = {
    "description": "hybrid search over the knowledge base",
    "input_schema": {
        "query": {"type": "text", "required": True, "description": "what to look for"},
        "min_year": {"type": "integer", "default": 2005, "examples": [2010]},
        "category": {"type": "string", "enum": ["pets", "science", "finance", "garden"]},
    },
    "stages": [
        fs_stage("search", [search(top_k=30), search(lexical=True, top_k=30)], final_top_k=30),
        filter_stage("recent", "metadata.year", "gte", "{{INPUT.min_year}}"),
        {
            "stage_name": "by_year",
            "stage_type": "sort",
            "description": "newest first",
            "config": {
                "stage_id": "sort_attribute",
                "parameters": {"field": "metadata.year", "direction": "desc"},
            },
        },
    ],
    "budget_limits": {"max_credits": 12.5, "max_time_ms": 60000},
    "tags": ["kb", "hybrid"],
    "metadata": {"owner": "suite", "seed": {"version": 3, "flags": [True, None, 1.5]}},
}


def test_create_round_trips_every_field(api: mixpeek.RetrieversApi) -> None:
    name = unique("hybrid")
    r = create(api, {**HYBRID_BODY, "retriever_name": name})
    assert isinstance(r, RetrieverConfig)
    assert r.retriever_id and r.retriever_id.startswith("ret_")
    assert r.retriever_name == name
    assert r.description == HYBRID_BODY["description"]
    assert r.version == 1
    assert r.fusion == "rrf"
    assert r.collection_ids == r.collection_identifiers
    assert len(r.collection_ids or []) == 1 and r.collection_ids[0].startswith("col_")
    assert r.created_at is not None and r.updated_at is not None

    assert [s.stage_name for s in r.stages] == ["search", "recent", "by_year"]
    assert [s.stage_type.value if s.stage_type else None for s in r.stages] == [
        "filter",
        "filter",
        "sort",
    ]
    for sent, got in zip(HYBRID_BODY["stages"], r.stages, strict=True):
        assert got.config == sent["config"]
        assert got.parameters == sent["config"]["parameters"]
        assert got.on_error == "error"
    assert r.stages[2].description == "newest first"

    schema = {k: v.model_dump(exclude_unset=True) for k, v in (r.input_schema or {}).items()}
    sent_schema = HYBRID_BODY["input_schema"]
    assert set(schema) == set(sent_schema)
    for key, field in sent_schema.items():
        got = {k: (v.value if hasattr(v, "value") else v) for k, v in schema[key].items()}
        assert {k: got[k] for k in field} == field
    assert r.budget_limits is not None
    assert r.budget_limits.to_dict() == HYBRID_BODY["budget_limits"]
    assert r.tags == HYBRID_BODY["tags"]
    assert r.metadata == HYBRID_BODY["metadata"]

    single = create(api, {"stages": [fs_stage("only", [search()])]})
    assert single.fusion is None and single.budget_limits is None
    assert single.stages[0].stage_type is not None and single.stages[0].stage_type.value == "filter"
    assert single.tags == [] and single.metadata == {}


def test_get_by_id_and_by_name_and_list(api: mixpeek.RetrieversApi) -> None:
    name = unique("getme")
    created = create(api, {**HYBRID_BODY, "retriever_name": name})
    by_id = api.get_retriever(created.retriever_id)
    by_name = api.get_retriever(name)
    assert isinstance(by_id, RetrieverModelOutput)
    assert by_id == by_name
    assert by_id.is_published is False  # the SDK's default: nothing is published here
    assert by_id.marketplace_listing_id is None
    # The GET shape is the create shape plus the publication field the SDK defaults.
    got = by_id.to_dict()
    assert got.pop("is_published") is False
    assert got == created.to_dict()

    other = create(api, {"retriever_name": unique("other"), "stages": [fs_stage("s", [search()])]})

    found = api.list_retrievers(
        list_retrievers_request=ListRetrieversRequest.from_dict({"search": name})
    )
    assert isinstance(found, ListRetrieversResponse)
    assert found.total == 1
    assert [x.retriever_id for x in found.results or []] == [created.retriever_id]
    assert found.results[0].metadata == HYBRID_BODY["metadata"]

    everything = api.list_retrievers_get(limit=1000)
    ids = [x.retriever_id for x in everything.results or []]
    assert {created.retriever_id, other.retriever_id} <= set(ids)
    assert everything.total == len(ids)
    posted = api.list_retrievers(limit=1000)
    assert [x.retriever_id for x in posted.results or []] == ids


def test_list_retrievers_pages(api: mixpeek.RetrieversApi) -> None:
    for _ in range(3):
        create(api, {"stages": [fs_stage("s", [search()])]})
    ids = [x.retriever_id for x in api.list_retrievers_get(limit=1000).results or []]
    assert len(ids) >= 3
    walked = []
    for offset in range(len(ids)):
        page = api.list_retrievers_get(limit=1, offset=offset)
        assert page.total == len(ids)
        assert page.pagination is not None and page.pagination.page_size == 1
        assert page.pagination.page == offset + 1
        walked += [x.retriever_id for x in page.results or []]
    assert walked == ids
    second = api.list_retrievers(limit=1, page=2)
    assert [x.retriever_id for x in second.results or []] == ids[1:2]


def test_patch_bumps_the_version_and_refuses_budget_changes(api: mixpeek.RetrieversApi) -> None:
    r = create(api, {**HYBRID_BODY, "retriever_name": unique("patch")})
    assert r.retriever_id is not None
    out = api.patch_retriever(
        r.retriever_id,
        PatchRetrieverRequest.from_dict(
            {"description": "patched", "tags": ["new"], "metadata": {"seed": {"version": 4}}}
        ),
    )
    assert isinstance(out, PatchRetrieverResponse)
    assert out.retriever.version == 2
    assert out.retriever.description == "patched"
    assert out.retriever.tags == ["new"]
    assert out.retriever.metadata == {"seed": {"version": 4}}  # replaced, not merged
    assert out.retriever.updated_at >= r.updated_at
    assert out.retriever.stages == r.stages
    again = api.get_retriever(r.retriever_id)
    assert (again.version, again.description, again.tags, again.metadata) == (
        2,
        "patched",
        ["new"],
        {"seed": {"version": 4}},
    )

    with pytest.raises(UnprocessableEntityException) as info:
        api.patch_retriever(
            r.retriever_id,
            PatchRetrieverRequest.from_dict({"budget_limits": {"max_credits": 99}}),
        )
    err = error_of(info.value)
    assert err.code == "immutable_field" and "budget_limits" in err.message
    assert api.get_retriever(r.retriever_id).version == 2


def test_clone_copies_the_definition_under_a_new_name(api: mixpeek.RetrieversApi) -> None:
    source = create(api, {**HYBRID_BODY, "retriever_name": unique("src")})
    assert source.retriever_id is not None
    new_name = unique("copy")
    out = api.clone_retriever(
        source.retriever_id,
        CloneRetrieverRequest.from_dict(
            {"retriever_name": new_name, "budget_limits": {"max_credits": 3, "max_time_ms": 10}}
        ),
    )
    assert isinstance(out, CloneRetrieverResponse)
    assert out.source_retriever_id == source.retriever_id
    clone = out.retriever
    assert clone.retriever_name == new_name
    assert clone.retriever_id != source.retriever_id
    assert clone.version == 1
    assert clone.stages == source.stages
    assert clone.input_schema == source.input_schema
    assert clone.tags == source.tags and clone.metadata == source.metadata
    assert clone.fusion == "rrf"
    assert clone.budget_limits is not None
    assert clone.budget_limits.to_dict() == {"max_credits": 3, "max_time_ms": 10}
    assert api.get_retriever(new_name).retriever_id == clone.retriever_id
    assert api.get_retriever(source.retriever_id).budget_limits == source.budget_limits

    with pytest.raises(ConflictException) as info:
        api.clone_retriever(
            source.retriever_id, CloneRetrieverRequest.from_dict({"retriever_name": new_name})
        )
    assert error_of(info.value).code == "retriever_name_taken"
    with pytest.raises(ConflictException) as info:
        create(api, {"retriever_name": new_name, "stages": [fs_stage("s", [search()])]})
    assert error_of(info.value).code == "retriever_name_taken"
    with pytest.raises(NotFoundException):
        api.clone_retriever("ret_missing", CloneRetrieverRequest.from_dict({"retriever_name": "x"}))


@pytest.mark.inprocess  # reads the server's stores directly
def test_delete_removes_the_retriever_and_its_executions(
    api: mixpeek.RetrieversApi, server: ServerHandle, corpus_ns: str
) -> None:
    r = create(api, {"stages": [fs_stage("s", [search()], final_top_k=3)]})
    assert r.retriever_id is not None
    run = execute(api, r.retriever_id, inputs={"query": "cat"})
    assert run.status == "completed"
    stores = server.server.config.app.state.stores
    ns_id = mixpeek.NamespacesApi(api.api_client).get_namespace(corpus_ns).namespace_id
    assert stores.metadata.get_execution(ns_id, run.execution_id) is not None

    out = api.delete_retriever(r.retriever_id)
    assert out == {"success": True, "message": "Retriever deleted", "retriever_id": r.retriever_id}
    with pytest.raises(NotFoundException) as info:
        api.get_retriever(r.retriever_id)
    assert error_of(info.value).code == "retriever_not_found"
    with pytest.raises(NotFoundException):
        api.get_retriever(r.retriever_name)
    with pytest.raises(NotFoundException):
        api.get_execution_retrievers(r.retriever_id, run.execution_id)
    assert stores.metadata.get_execution(ns_id, run.execution_id) is None
    with pytest.raises(NotFoundException):
        api.delete_retriever(r.retriever_id)


# --------------------------------------------------------------------------- execution


def test_execute_legacy_results_limit_and_request_filters(api: mixpeek.RetrieversApi) -> None:
    r = create(
        api,
        {
            "stages": [
                fs_stage("search", [search()], final_top_k=50),
                filter_stage("recent", "metadata.year", "gte", 2010),
            ]
        },
    )
    rid = r.retriever_id
    assert rid is not None
    recent = count(lambda _t, _c, y: y >= 2010)
    recent_garden = count(lambda _t, c, y: y >= 2010 and c == "garden")
    assert 0 < recent_garden < recent

    plain = execute(api, rid, inputs={"query": "gardening"})
    assert isinstance(plain, ExecuteRetrieverResponse)
    assert plain.status == "completed" and plain.execution_id.startswith("exec_")
    assert plain.retriever_id == rid
    assert plain.results is None
    assert len(plain.documents or []) == recent == plain.pagination["total"]

    legacy = api.execute_retriever(
        rid,
        ExecuteRetrieverRequest.from_dict({"inputs": {"query": "gardening"}}),
        include_legacy_results=True,
    )
    assert legacy.results is not None
    assert legacy.results == legacy.documents
    assert [d["document_id"] for d in legacy.documents] == [
        d["document_id"] for d in plain.documents
    ]

    short = execute(api, rid, inputs={"query": "gardening"}, limit=5)
    assert [d["document_id"] for d in short.documents] == [
        d["document_id"] for d in plain.documents[:5]
    ]
    assert short.pagination["limit"] == 5 and short.pagination["total"] == recent
    assert short.pagination["has_next"] is True

    narrowed = execute(
        api,
        rid,
        inputs={"query": "gardening"},
        filters={"AND": [{"field": "metadata.category", "operator": "eq", "value": "garden"}]},
    )
    assert narrowed.status == "completed"
    assert narrowed.pagination["total"] == len(narrowed.documents) == recent_garden
    assert all(d["metadata"]["category"] == "garden" for d in narrowed.documents)
    assert all(d["metadata"]["year"] >= 2010 for d in narrowed.documents)
    # AND-ed, not replaced: the stage's own year filter still applies.
    assert min(d["metadata"]["year"] for d in narrowed.documents) == 2010


def test_execution_records_status_profile_and_history(
    api: mixpeek.RetrieversApi, client: mixpeek.ApiClient
) -> None:
    r = create(
        api,
        {
            "stages": [
                fs_stage("search", [search()], final_top_k=20),
                {
                    "stage_name": "sorted",
                    "config": {
                        "stage_id": "sort_attribute",
                        "parameters": {"field": "metadata.year", "direction": "asc"},
                    },
                },
            ]
        },
    )
    rid = r.retriever_id
    assert rid is not None
    first = execute(api, rid, inputs={"query": "cats"}, skip_cache=True)
    second = execute(api, rid, inputs={"query": "stocks"}, skip_cache=True)

    detail = api.get_execution_retrievers(rid, first.execution_id)
    assert isinstance(detail, ExecutionDetail)
    assert detail.execution_id == first.execution_id and detail.status == "completed"
    assert detail.retriever_id == rid
    assert [d["document_id"] for d in detail.documents] == [
        d["document_id"] for d in first.documents
    ]
    assert detail.documents_retained is True and detail.total_returned == 20
    assert detail.stages_completed == detail.total_stages == 2
    stats = detail.stage_statistics
    assert stats is not None and list(stats.stages or {}) == ["search", "sorted"]
    # The search considered every point of the corpus: its input.
    points = mixpeek.CollectionDocumentsApi(client).count_documents(COLLECTION).count
    assert (stats.stages["search"].input_count, stats.stages["search"].output_count) == (
        points,
        20,
    )
    assert stats.stages["search"].efficiency == pytest.approx(20 / points)
    assert (stats.stages["sorted"].input_count, stats.stages["sorted"].output_count) == (20, 20)
    assert stats.stages["sorted"].efficiency == 1.0
    # The same document shown by name too.
    assert api.get_execution_retrievers(r.retriever_name, first.execution_id) == detail

    status = api.get_execution_status_retrievers(rid, first.execution_id)
    assert status["execution_id"] == first.execution_id
    assert (status["status"], status["stages_completed"], status["total_stages"]) == (
        "completed",
        2,
        2,
    )
    assert status["current_stage"] is None and status["error"] is None

    profile = api.get_execution_profile_retrievers(rid, first.execution_id)
    assert profile["execution_id"] == first.execution_id
    assert [(s["stage_name"], s["input_count"], s["output_count"]) for s in profile["stages"]] == [
        ("search", points, 20),
        ("sorted", 20, 20),
    ]
    assert profile["credits_used"] == stats.credits_used

    # A failed run: the second search stage blows the credit budget.
    failing = create(
        api,
        {
            "stages": [
                fs_stage("lexical", [search(lexical=True, top_k=10)], final_top_k=10),
                fs_stage("dense", [search(top_k=10)], final_top_k=10),
            ],
            "budget_limits": {"max_credits": 1.5},
        },
    )
    fid = failing.retriever_id
    assert fid is not None
    ok = execute(api, fid, inputs={"query": "zzz"}, skip_cache=True)
    assert ok.status == "failed"
    assert ok.error == "Budget exceeded: Maximum credits limit reached"
    failed_detail = api.get_execution_retrievers(fid, ok.execution_id)
    assert (failed_detail.status, failed_detail.error) == ("failed", ok.error)
    assert failed_detail.documents == [] and failed_detail.documents_retained is False
    assert (failed_detail.stages_completed, failed_detail.total_stages) == (1, 2)
    assert failed_detail.stage_statistics.stages["dense"].error
    failed_status = api.get_execution_status_retrievers(fid, ok.execution_id)
    assert (failed_status["status"], failed_status["error"]) == ("failed", ok.error)
    failed_list = api.list_executions_retrievers(
        fid, list_executions_request=ListExecutionsRequest.from_dict({"status": "failed"})
    )
    assert isinstance(failed_list, ListExecutionsResponse)
    assert [x.execution_id for x in failed_list.results or []] == [ok.execution_id]
    assert failed_list.results[0].status == "failed"
    completed_list = api.list_executions_retrievers(
        fid, list_executions_request=ListExecutionsRequest.from_dict({"status": "completed"})
    )
    assert completed_list.results == [] and completed_list.pagination.total == 0

    history = api.list_executions_retrievers(rid)
    assert history.pagination.total == 2 and history.pagination.has_next is False
    ids = {x.execution_id for x in history.results or []}
    assert ids == {first.execution_id, second.execution_id}
    for summary in history.results or []:
        assert summary.status == "completed"
        # Documents processed across stages: the points the search ranked, then the 20 sorted.
        assert summary.total_returned == 20 and summary.total_processed == points + 20
        assert summary.completed_at is not None and summary.completed_at >= summary.created_at
    only_completed = api.list_executions_retrievers(
        rid, list_executions_request=ListExecutionsRequest.from_dict({"status": "completed"})
    )
    assert {x.execution_id for x in only_completed.results or []} == ids
    none_failed = api.list_executions_retrievers(
        rid, list_executions_request=ListExecutionsRequest.from_dict({"status": "failed"})
    )
    assert none_failed.results == [] and none_failed.pagination.total == 0
    page = api.list_executions_retrievers(rid, limit=1)
    assert len(page.results or []) == 1 and page.pagination.has_next is True
    assert (page.pagination.limit, page.pagination.offset, page.pagination.total) == (1, 0, 2)

    with pytest.raises(NotFoundException):
        api.get_execution_retrievers(fid, first.execution_id)  # another retriever's run


def test_execute_batch_matches_single_executions(api: mixpeek.RetrieversApi) -> None:
    r = create(api, {"stages": [fs_stage("search", [search()], final_top_k=5)]})
    rid = r.retriever_id
    assert rid is not None
    out = api.execute_batch_retrievers(
        rid,
        ExecuteBatchRequest.from_dict(
            {
                "queries": [
                    {"inputs": {"query": "a kitten by the window"}},
                    {"inputs": {"query": "stock market news"}},
                ],
                "settings": {"limit": 2},
            }
        ),
    )
    assert isinstance(out, dict)
    assert out["retriever_id"] == rid and out["total_queries"] == 2
    results = out["results"]
    assert [x["query_index"] for x in results] == [0, 1]
    assert all(x["status"] == "completed" and x["error"] is None for x in results)
    for query, got in zip(["a kitten by the window", "stock market news"], results, strict=True):
        single = execute(api, rid, inputs={"query": query}, limit=2)
        assert [d["document_id"] for d in got["documents"]] == [
            d["document_id"] for d in single.documents
        ]
    assert results[1]["documents"][0]["text"] == TEXTS[3][0]


def test_explain_uses_the_stage_parameters_then_history(api: mixpeek.RetrieversApi) -> None:
    r = create(
        api,
        {
            "stages": [
                fs_stage("search", [search()], final_top_k=7),
                filter_stage("pets", "metadata.category", "eq", "pets"),
            ]
        },
    )
    rid = r.retriever_id
    assert rid is not None
    cold = api.explain_retriever_execution_id_execute(
        rid, ExplainRetrieverRequest.from_dict({"inputs": {"query": "cat"}})
    )
    assert isinstance(cold, ExplainRetrieverResponse)
    assert (cold.retriever_id, cold.retriever_name) == (rid, r.retriever_name)
    assert cold.total_estimated_stages == 2
    plan = cold.execution_plan or []
    assert [(p.stage_index, p.stage_name, p.stage_type) for p in plan] == [
        (0, "search", "filter"),
        (1, "pets", "filter"),
    ]
    assert plan[0].estimated_output == 7 and plan[1].estimated_input == 7
    assert cold.estimated_cost["total_duration_ms"] == 0.0

    run = execute(api, rid, inputs={"query": "cat"})
    kept = run.stage_statistics.stages["pets"].output_count
    assert kept == count(lambda _t, c, _y: c == "pets")
    warm = api.explain_retriever_execution_id_execute(rid, ExplainRetrieverRequest.from_dict({}))
    wplan = warm.execution_plan or []
    # The search considered every point of the corpus, as the cold plan estimated.
    points = run.stage_statistics.stages["search"].input_count
    assert points == plan[0].estimated_input >= len(TEXTS)
    assert (wplan[0].estimated_input, wplan[0].estimated_output) == (points, 7)
    assert (wplan[1].estimated_input, wplan[1].estimated_output) == (7, kept)
    assert wplan[1].estimated_efficiency == pytest.approx(kept / 7)
    assert warm.estimated_cost["total_duration_ms"] == pytest.approx(
        sum(p.estimated_duration_ms for p in wplan)
    )
    assert warm.estimated_cost["total_duration_ms"] > 0


def test_missing_optional_input_relaxes_the_filter(api: mixpeek.RetrieversApi) -> None:
    r = create(
        api,
        {
            "input_schema": {"query": {"type": "text"}, "category": {"type": "string"}},
            "stages": [
                fs_stage("search", [search()], final_top_k=50),
                filter_stage("by_category", "metadata.category", "eq", "{{INPUT.category}}"),
            ],
        },
    )
    rid = r.retriever_id
    assert rid is not None
    given = execute(api, rid, inputs={"query": "animals", "category": "pets"})
    assert given.status == "completed"
    assert {d["metadata"]["category"] for d in given.documents} == {"pets"}
    assert len(given.documents) == count(lambda _t, c, _y: c == "pets")
    assert given.interpretation["relaxations"] == []

    missing = execute(api, rid, inputs={"query": "animals"})
    assert missing.status == "completed"
    assert len(missing.documents) == missing.pagination["total"] == len(TEXTS)
    assert len(missing.documents) > len(given.documents)
    relaxations = missing.interpretation["relaxations"]
    assert len(relaxations) == 1
    assert relaxations[0]["type"] == "filter_dropped"
    assert relaxations[0]["stage"] == "by_category"
    assert relaxations[0]["field"] == "metadata.category"
    assert relaxations[0]["operator"] == "eq"
    assert "category" in relaxations[0]["reason"]
    assert missing.stage_statistics.stages["by_category"].output_count == len(TEXTS)


def test_relaxation_drops_only_the_condition_that_is_missing(api: mixpeek.RetrieversApi) -> None:
    conditions = {
        "AND": [
            {"field": "metadata.category", "operator": "eq", "value": "{{INPUT.category}}"},
            {"field": "metadata.year", "operator": "gte", "value": 2010},
        ]
    }
    r = create(
        api,
        {
            "input_schema": {"query": {"type": "text"}, "category": {"type": "string"}},
            "stages": [
                fs_stage("search", [search()], final_top_k=50),
                {
                    "stage_name": "where",
                    "config": {
                        "stage_id": "attribute_filter",
                        "parameters": {"conditions": conditions},
                    },
                },
            ],
        },
    )
    rid = r.retriever_id
    assert rid is not None
    given = execute(api, rid, inputs={"query": "animals", "category": "pets"})
    assert len(given.documents) == count(lambda _t, c, y: c == "pets" and y >= 2010)
    assert given.interpretation["relaxations"] == []
    missing = execute(api, rid, inputs={"query": "animals"})
    assert len(missing.documents) == count(lambda _t, _c, y: y >= 2010) > len(given.documents)
    assert all(d["metadata"]["year"] >= 2010 for d in missing.documents)
    assert [(x["stage"], x["field"]) for x in missing.interpretation["relaxations"]] == [
        ("where", "metadata.category")
    ]


def test_typeahead_suggests_metadata_values(api: mixpeek.RetrieversApi) -> None:
    out = api.typeahead_retrievers(q="ga", fields="metadata.category", limit=5)
    assert isinstance(out, TypeaheadResponse)
    assert out.query == "ga"
    assert [(v.var_field, v.value, v.count) for v in out.values or []] == [
        ("metadata.category", "garden", count(lambda _t, c, _y: c == "garden"))
    ]


# --------------------------------------------------------------------------- adhoc


def test_adhoc_execute_list_and_get(client: mixpeek.ApiClient, api: mixpeek.RetrieversApi) -> None:
    adhoc = mixpeek.AdhocRetrieversApi(client)
    before = adhoc.list_adhoc_executions_retrievers(
        list_adhoc_executions_request=ListAdhocExecutionsRequest.from_dict({"count_only": True})
    )
    assert isinstance(before, ListAdhocExecutionsResponse)
    assert before.results == []
    request = AdhocExecuteRequest.from_dict(
        {
            "collection_identifiers": [COLLECTION],
            "input_schema": {"query": {"type": "text"}},
            "stages": [fs_stage("search", [search()], final_top_k=4)],
            "inputs": {"query": "kitten"},
        }
    )
    raw = adhoc.execute_adhoc_retriever_with_http_info(request)
    headers = {k.lower(): v for k, v in (raw.headers or {}).items()}  # a plain dict
    assert raw.status_code == 200 and headers["x-execution-mode"] == "adhoc"
    body = raw.data
    assert isinstance(body, dict)
    assert body["status"] == "completed"
    assert body["execution_metadata"]["retriever_persisted"] is False
    assert len(body["documents"]) == 4
    assert {d["text"] for d in body["documents"][:2]} == {TEXTS[0][0], TEXTS[2][0]}
    # Same shape as a named execute.
    parsed = ExecuteRetrieverResponse.from_dict(body)
    assert parsed.stage_statistics.stages["search"].output_count == 4
    eid = body["execution_id"]

    second = adhoc.execute_adhoc_retriever(
        AdhocExecuteRequest.from_dict(
            {
                "collection_identifiers": parsed_collection_ids(api),  # by id this time
                "stages": [
                    {
                        "stage_name": "all_pets",
                        "config": {
                            "stage_id": "attribute_filter",
                            "parameters": {
                                "field": "metadata.category",
                                "operator": "eq",
                                "value": "pets",
                            },
                        },
                    }
                ],
            }
        )
    )
    assert sorted(d["text"] for d in second["documents"]) == sorted(
        t for t, c, _ in TEXTS if c == "pets"
    )

    detail = adhoc.get_adhoc_execution_retrievers(eid)
    assert isinstance(detail, AdhocExecutionDetail)
    assert (detail.execution_id, detail.execution_mode, detail.status) == (
        eid,
        "adhoc",
        "completed",
    )
    assert json.loads(detail.inputs or "") == {"query": "kitten"}
    assert detail.inputs_hash
    assert (detail.stages_completed, detail.total_stages, detail.total_returned) == (1, 1, 4)
    assert detail.collection_ids == parsed_collection_ids(api)

    listed = adhoc.list_adhoc_executions_retrievers(
        list_adhoc_executions_request=ListAdhocExecutionsRequest.from_dict({})
    )
    assert listed.total == before.total + 2
    ids = [x.execution_id for x in listed.results or []]
    assert ids[:2] == [second["execution_id"], eid]  # newest first
    assert all(x.execution_mode == "adhoc" for x in listed.results or [])
    failed = adhoc.list_adhoc_executions_retrievers(
        list_adhoc_executions_request=ListAdhocExecutionsRequest.from_dict({"status": "failed"})
    )
    assert failed.total == 0 and failed.results == []
    one = adhoc.list_adhoc_executions_retrievers(limit=1)
    assert [x.execution_id for x in one.results or []] == ids[:1]

    # A named execution is not an adhoc one.
    r = create(api, {"stages": [fs_stage("s", [search()], final_top_k=2)]})
    named = execute(api, r.retriever_id or "", inputs={"query": "cat"})
    with pytest.raises(NotFoundException):
        adhoc.get_adhoc_execution_retrievers(named.execution_id)


def parsed_collection_ids(api: mixpeek.RetrieversApi) -> list[str]:
    col = mixpeek.CollectionsApi(api.api_client).get_collection(COLLECTION)
    return [col.collection_id]


# --------------------------------------------------------------------------- validation


def _refused(api: mixpeek.RetrieversApi, stages: list[dict[str, Any]], **extra: Any) -> Any:
    name = unique("bad")
    with pytest.raises(UnprocessableEntityException) as info:
        create(api, {"retriever_name": name, "stages": stages, **extra})
    with pytest.raises(NotFoundException):
        api.get_retriever(name)  # nothing half-created
    return error_of(info.value)


def test_creation_time_validation(api: mixpeek.RetrieversApi, server: ServerHandle) -> None:
    anonymous = mixpeek.ApiClient(mixpeek.Configuration(host=server.base_url))
    known = sorted(
        s.stage_id for s in mixpeek.RetrieverStagesApi(anonymous).list_stages_retrievers()
    )
    anonymous.rest_client.pool_manager.clear()

    err = _refused(api, [{"stage_name": "x", "config": {"stage_id": "teleport", "parameters": {}}}])
    assert err.code == "unknown_stage_id" and err.type == "ValidationError"
    assert "teleport" in err.message
    assert all(stage_id in err.message for stage_id in known)
    assert err.details["known_stage_ids"] == known

    err = _refused(api, [fs_stage("s", [search()], final_top_k="lots")])
    assert err.code == "invalid_stage_parameters"
    assert "final_top_k" in err.message
    assert [e["loc"] for e in err.details["errors"]] == [["final_top_k"]]

    bogus = dict(search(), feature_uri="mixpeek://text_extractor@v1/no_such_model")
    err = _refused(api, [fs_stage("s", [bogus])])
    assert err.code == "unknown_feature_uri"
    assert "no_such_model" in err.message and COLLECTION in err.message
    assert err.details["valid_feature_uris"] == [DENSE_URI]

    err = _refused(api, [filter_stage("f", "metadata.year", "gte", "{{ INPUT.min_year + }}")])
    assert err.code == "invalid_template"
    assert err.details["template"] == "{{ INPUT.min_year + }}"

    err = _refused(
        api,
        [
            fs_stage("s", [search()]),
            {
                "stage_name": "judge",
                "config": {"stage_id": "llm_filter", "parameters": {"criteria": "about cats"}},
            },
        ],
    )
    assert err.code == "llm_provider_missing"
    assert err.details["stage_id"] == "llm_filter"

    err = _refused(api, [fs_stage("same", [search()]), filter_stage("same", "a", "eq", 1)])
    assert err.code == "duplicate_stage_name"

    name = unique("nocol")
    with pytest.raises(NotFoundException) as info:
        create(
            api,
            {
                "retriever_name": name,
                "collection_identifiers": ["no_such_collection"],
                "stages": [fs_stage("s", [search()])],
            },
        )
    missing = error_of(info.value)
    assert missing.code == "collection_not_found"
    assert missing.details["identifier"] == "no_such_collection"
    with pytest.raises(NotFoundException):
        api.get_retriever(name)
