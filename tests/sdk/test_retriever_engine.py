"""Retrievers end to end through the official SDK: create, execute, paginate, read executions."""

from __future__ import annotations

import mixpeek
import pytest

from tests.sdk.conftest import ClientFactory
from tests.support.corpus import COLLECTION, TEXTS, seed_corpus
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.sdk]


@pytest.fixture
def corpus(sdk: ClientFactory, ns_name: str, server: ServerHandle) -> mixpeek.ApiClient:
    seed_corpus(server, ns_name).close()
    return sdk(namespace=ns_name)


def create(client: mixpeek.ApiClient, body: dict[str, object]) -> str:
    from mixpeek.models import CreateRetrieverRequest

    r = mixpeek.RetrieversApi(client).create_retriever(CreateRetrieverRequest.from_dict(body))
    assert r.retriever_id is not None
    return r.retriever_id


DENSE = {
    "feature_uri": "mixpeek://text_extractor@v1/all_minilm_l6_v2",
    "query": {"input_mode": "text", "value": "{{INPUT.query}}"},
    "top_k": 50,
}


def test_semantic_and_lexical_ranking(corpus: mixpeek.ApiClient) -> None:
    rid = create(
        corpus,
        {
            "retriever_name": "semantic",
            "collection_identifiers": ["kbase"],
            "input_schema": {"query": {"type": "text", "required": True}},
            "stages": [
                {
                    "stage_name": "search",
                    "config": {
                        "stage_id": "feature_search",
                        "parameters": {"searches": [DENSE], "final_top_k": 10},
                    },
                }
            ],
        },
    )
    api = mixpeek.RetrieversApi(corpus)
    from mixpeek.models import ExecuteRetrieverRequest

    out = api.execute_retriever(
        rid,
        ExecuteRetrieverRequest.from_dict(
            {"inputs": {"query": "a small cat sleeping near a window"}}
        ),
    )
    docs = out.documents
    assert docs[0]["text"] in (TEXTS[0][0], TEXTS[2][0])
    assert {docs[0]["text"], docs[1]["text"]} == {TEXTS[0][0], TEXTS[2][0]}
    assert "sources" in docs[0]["scores"]

    lex = dict(DENSE, lexical=True)
    rid2 = create(
        corpus,
        {
            "retriever_name": "lexical",
            "collection_identifiers": ["kbase"],
            "input_schema": {"query": {"type": "text"}},
            "stages": [
                {
                    "stage_name": "bm25",
                    "config": {
                        "stage_id": "feature_search",
                        "parameters": {"searches": [lex], "final_top_k": 5},
                    },
                }
            ],
        },
    )
    out = api.execute_retriever(
        rid2, ExecuteRetrieverRequest.from_dict({"inputs": {"query": "zyxquartz"}})
    )
    assert out.documents[0]["text"] == TEXTS[5][0]


def test_pipeline_pagination_and_execution_detail(corpus: mixpeek.ApiClient) -> None:
    from mixpeek.models import ExecuteRetrieverRequest

    rid = create(
        corpus,
        {
            "retriever_name": "pipeline",
            "collection_identifiers": ["kbase"],
            "input_schema": {
                "query": {"type": "text"},
                "min_year": {"type": "integer", "default": 2005},
            },
            "stages": [
                {
                    "stage_name": "search",
                    "config": {
                        "stage_id": "feature_search",
                        "parameters": {"searches": [DENSE], "final_top_k": 50},
                    },
                },
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
                    "stage_name": "by_year",
                    "config": {
                        "stage_id": "sort_attribute",
                        "parameters": {"field": "metadata.year", "direction": "desc"},
                    },
                },
            ],
        },
    )
    api = mixpeek.RetrieversApi(corpus)
    first = api.execute_retriever(
        rid,
        ExecuteRetrieverRequest.from_dict(
            {"inputs": {"query": "gardening"}, "pagination": {"method": "cursor", "limit": 4}}
        ),
    )
    assert first.status == "completed"
    expected_total = sum(1 for _, _, y in TEXTS if y >= 2005)
    assert first.pagination["total"] == expected_total
    seen = [d["document_id"] for d in first.documents]
    years = [d["metadata"]["year"] for d in first.documents]
    cursor = first.pagination["cursor"]
    while cursor:
        page = api.execute_retriever(
            rid,
            ExecuteRetrieverRequest.from_dict(
                {
                    "inputs": {"query": "gardening"},
                    "pagination": {"method": "cursor", "limit": 4, "cursor": cursor},
                }
            ),
        )
        assert page.execution_id == first.execution_id
        assert page.pagination["total"] == expected_total
        seen += [d["document_id"] for d in page.documents]
        years += [d["metadata"]["year"] for d in page.documents]
        cursor = page.pagination["cursor"]
    assert len(seen) == len(set(seen)) == expected_total
    assert years == sorted(years, reverse=True)

    detail = api.get_execution_retrievers(rid, first.execution_id)
    stats = detail.stage_statistics.stages
    points = mixpeek.CollectionDocumentsApi(corpus).count_documents(COLLECTION).count
    assert stats["search"].input_count == points and stats["search"].output_count == 36
    assert stats["recent"].input_count == 36 and stats["recent"].output_count == expected_total
    assert stats["by_year"].output_count == expected_total
    assert detail.stages_completed == detail.total_stages == 3
    assert detail.completed_at >= detail.created_at
    assert detail.budget["credits_used"] == detail.stage_statistics.credits_used > 0

    status = api.get_execution_status_retrievers(rid, first.execution_id)
    assert status["status"] == "completed"
    profile = api.get_execution_profile_retrievers(rid, first.execution_id)
    assert [s["stage_name"] for s in profile["stages"]] == ["search", "recent", "by_year"]
    listed = api.list_executions_retrievers(rid)
    assert listed.pagination.total >= 1
    assert any(s.execution_id == first.execution_id for s in listed.results)
