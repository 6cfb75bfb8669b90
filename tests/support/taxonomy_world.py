"""A namespace for the taxonomy tests, built through the SDK as a user would: a labelled
reference collection (`topics`: the taxonomy's nodes), a collection of held-out texts
(`articles`), a retriever matching a query against `topics` and a flat taxonomy over it.
The texts are tests/sdk/data/taxonomy_topics.json (6 topics x 8 references, 30 held out)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mixpeek
from mixpeek.models import (
    CreateCollectionRequest,
    CreateNamespaceRequest,
    CreateRetrieverRequest,
    CreateTaxonomyRequest,
    DocumentCreateRequest,
)

DATA = json.loads((Path(__file__).parents[1] / "sdk" / "data" / "taxonomy_topics.json").read_text())
URI = "mixpeek://text_extractor@v1/all_minilm_l6_v2"


@dataclass
class TaxonomyWorld:
    namespace: str
    topics_id: str
    articles_id: str
    matcher_id: str  # retriever over `topics`: one dense search of {{INPUT.query}}
    taxonomy_id: str


def text_collection(client: mixpeek.ApiClient, name: str, **extra: Any) -> str:
    body = {
        "collection_name": name,
        "source": {"type": "direct_upsert"},
        "feature_extractor": {
            "feature_extractor_name": "text_extractor",
            "version": "v1",
            "input_mappings": {"text": "text"},
        },
        **extra,
    }
    api = mixpeek.CollectionsApi(client)
    return str(api.create_collection(CreateCollectionRequest.from_dict(body)).collection_id)


def matcher_retriever(client: mixpeek.ApiClient, name: str, collections: list[str]) -> str:
    search = {"feature_uri": URI, "query": {"input_mode": "text", "value": "{{INPUT.query}}"}}
    body = {
        "retriever_name": name,
        "collection_identifiers": collections,
        "input_schema": {"query": {"type": "text", "required": True}},
        "stages": [
            {
                "stage_name": "match",
                "config": {
                    "stage_id": "feature_search",
                    "parameters": {"searches": [search], "final_top_k": 5},
                },
            }
        ],
    }
    api = mixpeek.RetrieversApi(client)
    return str(api.create_retriever(CreateRetrieverRequest.from_dict(body)).retriever_id)


def flat_config(retriever_id: str, collection_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "taxonomy_type": "flat",
        "retriever_id": retriever_id,
        "input_mappings": [{"input_key": "query", "source_type": "payload", "path": "text"}],
        "source_collection": {
            "collection_id": collection_id,
            "enrichment_fields": [
                {"field_path": "label", "target_field": "topic", "merge_mode": "replace"}
            ],
        },
        **extra,
    }


def create_taxonomy(client: mixpeek.ApiClient, name: str, config: dict[str, Any]) -> str:
    api = mixpeek.TaxonomiesApi(client)
    body = CreateTaxonomyRequest.from_dict({"taxonomy_name": name, "config": config})
    return str(api.create_taxonomy_taxonomies(body).taxonomy_id)


def build_world(base_url: str, key: str) -> TaxonomyWorld:
    def client_for(namespace: str | None = None) -> mixpeek.ApiClient:
        api_key = {"NamespaceHeader": namespace} if namespace else None
        config = mixpeek.Configuration(host=base_url, access_token=key, api_key=api_key)
        return mixpeek.ApiClient(config)

    admin = client_for()
    namespace = f"ns-{uuid.uuid4().hex[:10]}"
    mixpeek.NamespacesApi(admin).create_namespace(
        CreateNamespaceRequest.from_dict({"namespace_name": namespace})
    )
    client = client_for(namespace)
    topics = text_collection(client, "topics")
    articles = text_collection(client, "articles")
    docs = mixpeek.CollectionDocumentsApi(client)
    for ref in DATA["reference"]:
        docs.create_document(topics, DocumentCreateRequest.from_dict(ref))
    for item in DATA["held_out"]:
        body = {"text": item["text"], "metadata": {"topic": item["label"], "set": "held_out"}}
        docs.create_document(articles, DocumentCreateRequest.from_dict(body))
    matcher = matcher_retriever(client, "topic-matcher", [topics])
    taxonomy = create_taxonomy(client, "topics", flat_config(matcher, topics))
    return TaxonomyWorld(namespace, topics, articles, matcher, taxonomy)
