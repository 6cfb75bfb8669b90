"""The foundation acceptance flow, driven by the official mixpeek SDK over loopback HTTP."""

from __future__ import annotations

import mixpeek
import pytest
from mixpeek.exceptions import NotFoundException, UnauthorizedException
from mixpeek.models import (
    CreateCollectionRequest,
    CreateNamespaceRequest,
    DocumentCreateRequest,
    ListDocumentsRequest,
)

from tests.sdk.conftest import ClientFactory

pytestmark = [pytest.mark.sdk]

CATEGORIES = ["science", "sports", "cooking", "travel"]


def make_collection(client: mixpeek.ApiClient, name: str = "articles") -> str:
    col = mixpeek.CollectionsApi(client).create_collection(
        CreateCollectionRequest.from_dict(
            {
                "collection_name": name,
                "source": {"type": "direct_upsert"},
                "feature_extractor": {
                    "feature_extractor_name": "text_extractor",
                    "version": "v1",
                    "input_mappings": {"text": "text"},
                },
            }
        )
    )
    assert col.collection_id and col.collection_id.startswith("col_")
    return col.collection_id


def test_namespace_collection_documents_flow(sdk: ClientFactory, ns_name: str) -> None:
    admin = sdk()
    ns = mixpeek.NamespacesApi(admin).create_namespace(
        CreateNamespaceRequest.from_dict({"namespace_name": ns_name})
    )
    assert ns.namespace_id.startswith("ns_")
    assert ns.namespace_name == ns_name
    assert ns.namespace_ready is True

    client = sdk(namespace=ns_name)
    collection_id = make_collection(client)
    col = mixpeek.CollectionsApi(client).get_collection("articles")
    assert col.collection_id == collection_id
    index = col.vector_indexes[0]
    assert index.feature_uri == "mixpeek://text_extractor@v1/all_minilm_l6_v2"
    assert index.index["dimensions"] == 384

    docs_api = mixpeek.CollectionDocumentsApi(client)
    created = []
    for i in range(20):
        doc = docs_api.create_document(
            collection_id,
            DocumentCreateRequest.from_dict(
                {
                    "text": f"Article number {i} about {CATEGORIES[i % 4]}",
                    "metadata": {"category": CATEGORIES[i % 4], "rank": i},
                }
            ),
        )
        assert doc.document_id.startswith("doc_")
        assert doc.searchable_at is not None
        created.append(doc.document_id)

    counted = docs_api.count_documents(collection_id)
    assert (counted.collection_id, counted.count) == (collection_id, 20)

    listed = docs_api.list_documents(
        collection_id,
        list_documents_request=ListDocumentsRequest.from_dict(
            {
                "filters": {
                    "AND": [{"field": "metadata.category", "operator": "eq", "value": "sports"}]
                },
                "limit": 100,
                "include_total": True,
            }
        ),
    )
    assert listed.results is not None
    got = sorted(d.additional_properties["metadata"]["rank"] for d in listed.results)
    assert got == [1, 5, 9, 13, 17]
    assert listed.total_documents == 5

    patched = docs_api.patch_document(
        collection_id, created[0], {"metadata": {"category": "history", "rank": None}}
    )
    assert patched.additional_properties["metadata"] == {"category": "history"}
    fetched = docs_api.get_document(collection_id, created[0])
    assert fetched.additional_properties["metadata"] == {"category": "history"}
    assert fetched.additional_properties["text"] == "Article number 0 about science"

    deleted = docs_api.delete_document(collection_id, created[1])
    assert deleted.success is True
    assert docs_api.count_documents(collection_id).count == 19
    with pytest.raises(NotFoundException):
        docs_api.get_document(collection_id, created[1])


def test_wrong_key_is_unauthorized_with_parsed_body(sdk: ClientFactory, ns_name: str) -> None:
    bad = sdk(key="sk_not_a_real_key", namespace=ns_name)
    with pytest.raises(UnauthorizedException) as info:
        mixpeek.NamespacesApi(bad).create_namespace(
            CreateNamespaceRequest.from_dict({"namespace_name": ns_name})
        )
    body = info.value.data
    assert body is not None
    assert body.status == 401
    assert body.success is False
    assert body.error.type == "UnauthorizedError"
    assert "Invalid API key" in body.error.message


def test_unknown_collection_is_not_found_with_parsed_body(sdk: ClientFactory, ns_name: str) -> None:
    mixpeek.NamespacesApi(sdk()).create_namespace(
        CreateNamespaceRequest.from_dict({"namespace_name": ns_name})
    )
    client = sdk(namespace=ns_name)
    with pytest.raises(NotFoundException) as info:
        mixpeek.CollectionsApi(client).get_collection("no-such-collection")
    body = info.value.data
    assert body is not None and body.status == 404
    assert body.error.code == "collection_not_found"
    assert "no-such-collection" in body.error.message


def test_namespaces_are_isolated(sdk: ClientFactory, ns_name: str) -> None:
    admin = sdk()
    other = f"{ns_name}-other"
    for name in (ns_name, other):
        mixpeek.NamespacesApi(admin).create_namespace(
            CreateNamespaceRequest.from_dict({"namespace_name": name})
        )
    client_a = sdk(namespace=ns_name)
    collection_id = make_collection(client_a)
    doc = mixpeek.CollectionDocumentsApi(client_a).create_document(
        collection_id, DocumentCreateRequest.from_dict({"text": "secret of namespace A"})
    )
    client_b = sdk(namespace=other)
    with pytest.raises(NotFoundException):
        mixpeek.CollectionsApi(client_b).get_collection(collection_id)
    with pytest.raises(NotFoundException):
        mixpeek.CollectionDocumentsApi(client_b).get_document(collection_id, doc.document_id)
    listed = mixpeek.CollectionsApi(client_b).list_collections()
    assert listed.total_count == 0
