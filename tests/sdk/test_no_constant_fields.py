"""No field of a namespace or a collection body is a constant: every figure moves with the work.

One server of the module's own holds namespaces and collections in different states (empty;
with documents; one deleted; read by retrievers directly, through a per-search collection
list, or only through a document_enrich join; BYO standalone vs managed; a shard that no
longer answers). Their bodies are read through the official SDK (strict pydantic parsing)
and as raw JSON; every leaf of the raw JSON must take at least two distinct values across
them, except the short ALLOWLIST below (type tags and echoes of the one configuration
Stagewise offers; an entry covers its path and everything under it)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import mixpeek
import pytest
from mixpeek.models import (
    BYOUpsertRequest,
    CollectionResponse,
    CreateCollectionRequest,
    CreateNamespaceRequest,
    CreateRetrieverRequest,
    CreateTaxonomyRequest,
    DocumentCreateRequest,
    ListCollectionsRequest,
    NamespaceModel,
)

from tests.conftest import ADMIN_KEY
from tests.support.server import ServerHandle, start_server

pytestmark = [pytest.mark.sdk]

URI = "mixpeek://text_extractor@v1/all_minilm_l6_v2"

# Paths whose value is a map keyed by data (field names, URIs, vector names): compared whole.
MAP_PATHS = {
    "vector_inference_map",
    "feature_extractors[].params",
    "metadata",
    "index_map",
    "input_schema",
    "output_schema.properties",
    "feature_extractor.input_mappings",
}

ALLOWLIST = {
    "namespace": {
        "object": "type tag of the resource",
        "feature_extractors[]": "echo of the configuration; the one extractor, text_extractor@v1",
    },
    "collection": {
        "feature_extractor.version": "echo; every extractor (and the 'none' placeholder) is v1",
        "feature_extractor.include_all_source_fields": "echo of the request (the SDK's default)",
        "source.field_map": "echo of the request (the SDK's default)",
        "vector_indexes[].type": "type tag: every index Stagewise builds is single-vector",
        "vector_indexes[].source": "type tag: the SDK's one source value, present on BYO only",
        "taxonomy_applications[]": "echo of the request (the taxonomy resolved to its id)",
    },
}

# Constants the bodies used to carry; none may come back.
REMOVED = {
    "namespace": {
        "namespace_type",
        "scope",
        "bucket_count",
        "object_count",
        "auto_create_indexes",
        "adaptive_indexing",
        "document_count_complete",
    },
    "collection": {
        "indexing_status_scoped",
        "lifecycle_state",
        "vector_count",
        "schema_version",
        "schema_validation",
    },
}


def sdk_client(handle: ServerHandle, namespace: str | None = None) -> mixpeek.ApiClient:
    api_key = {"NamespaceHeader": namespace} if namespace else None
    config = mixpeek.Configuration(host=handle.base_url, access_token=ADMIN_KEY, api_key=api_key)
    return mixpeek.ApiClient(config)


def fs_stage(name: str, **params: Any) -> dict[str, Any]:
    search = {"feature_uri": URI, "query": {"input_mode": "text", "value": "{{INPUT.q}}"}}
    search.update(params.pop("search", {}))
    return {
        "stage_name": name,
        "config": {
            "stage_id": "feature_search",
            "parameters": {"searches": [search], "final_top_k": 5, **params},
        },
    }


def with_filter(stage: dict[str, Any], flt: dict[str, Any]) -> dict[str, Any]:
    stage["config"]["pre_filters"] = flt
    return stage


def eq(field_name: str, value: Any) -> dict[str, Any]:
    return {"AND": [{"field": field_name, "operator": "eq", "value": value}]}


@dataclass
class World:
    handle: ServerHandle
    ids: dict[str, str] = field(default_factory=dict)  # "ns/col" -> collection_id
    retrievers: dict[str, str] = field(default_factory=dict)  # "ns/name" -> retriever_id

    def client(self, namespace: str | None = None) -> mixpeek.ApiClient:
        return sdk_client(self.handle, namespace)

    def http(self, namespace: str | None = None) -> httpx.Client:
        return self.handle.client(ADMIN_KEY, namespace)

    def create_namespace(self, body: dict[str, Any]) -> None:
        mixpeek.NamespacesApi(self.client()).create_namespace(
            CreateNamespaceRequest.from_dict(body)
        )

    def create_collection(self, ns: str, body: dict[str, Any]) -> str:
        col = mixpeek.CollectionsApi(self.client(ns)).create_collection(
            CreateCollectionRequest.from_dict(body)
        )
        assert col.collection_id is not None
        self.ids[f"{ns}/{body['collection_name']}"] = col.collection_id
        return col.collection_id

    def add_documents(self, ns: str, col: str, docs: list[dict[str, Any]]) -> list[str]:
        api = mixpeek.CollectionDocumentsApi(self.client(ns))
        cid = self.ids[f"{ns}/{col}"]
        return [
            str(api.create_document(cid, DocumentCreateRequest.from_dict(d)).document_id)
            for d in docs
        ]

    def create_retriever(self, ns: str, body: dict[str, Any]) -> str:
        r = mixpeek.RetrieversApi(self.client(ns)).create_retriever(
            CreateRetrieverRequest.from_dict({"input_schema": {"q": {"type": "string"}}, **body})
        )
        self.retrievers[f"{ns}/{body['retriever_name']}"] = str(r.retriever_id)
        return str(r.retriever_id)


def build_world(handle: ServerHandle) -> World:
    w = World(handle)
    text = {"feature_extractor_name": "text_extractor", "version": "v1"}

    # 'empty': a managed namespace with nothing in it.
    w.create_namespace({"namespace_name": "empty"})

    # 'texts': managed; collections with and without documents, read in different ways.
    w.create_namespace(
        {
            "namespace_name": "texts",
            "description": "managed, several collections",
            "payload_indexes": [{"field_name": "metadata.category", "type": "keyword"}],
        }
    )
    w.create_collection(
        "texts",
        {
            "collection_name": "unread",
            "description": "no documents, no retriever",
            "source": {"type": "direct_upsert"},
            "feature_extractor": text,
        },
    )
    w.create_collection(
        "texts",
        {
            "collection_name": "articles",
            "source": {"type": "direct_upsert"},
            "feature_extractor": {**text, "input_mappings": {"text": "text"}},
            "metadata": {"team": "search"},
        },
    )
    w.create_collection(
        "texts",
        {
            "collection_name": "authors",
            "source": {"type": "direct_upsert"},
            "feature_extractor": {**text, "input_mappings": {"text": "bio"}},
            "input_schema": {"properties": {"bio": {"type": "text"}}},
        },
    )
    w.create_collection(
        "texts",
        {"collection_name": "archive", "source": {"type": "none"}, "enabled": False},
    )
    w.create_collection(
        "texts",
        {
            "collection_name": "reviews",
            "source": {"type": "direct_upsert"},
            "features": ["text_extractor@v1"],
        },
    )
    ids = w.add_documents(
        "texts",
        "articles",
        [
            {"text": f"article {i}", "metadata": {"category": c, "author": "a1"}}
            for i, c in enumerate(["news", "sport", "news"])
        ],
    )
    mixpeek.CollectionDocumentsApi(w.client("texts")).delete_document(
        w.ids["texts/articles"], ids[0]
    )
    w.add_documents("texts", "authors", [{"bio": "writes about sport", "document_id": "a1"}])
    w.add_documents("texts", "reviews", [{"text": "fine", "metadata": {"stars": 4}}])
    # 'articles' is read by three retrievers; 'authors' only through a join; 'reviews' only
    # through a per-search collection list; 'unread' and 'archive' by none.
    w.create_retriever(
        "texts",
        {
            "retriever_name": "by_category",
            "collection_identifiers": ["articles"],
            "stages": [with_filter(fs_stage("s"), eq("metadata.category", "news"))],
        },
    )
    w.create_retriever(
        "texts",
        {
            "retriever_name": "with_authors",
            "collection_identifiers": ["articles"],
            "stages": [
                fs_stage("s"),
                {
                    "stage_name": "join",
                    "config": {
                        "stage_id": "document_enrich",
                        "parameters": {
                            "target_collection_id": "authors",
                            "source_field": "metadata.author",
                            "target_field": "document_id",
                            "output_field": "author",
                        },
                    },
                },
            ],
        },
    )
    w.create_retriever(
        "texts",
        {
            "retriever_name": "reviews_too",
            "collection_identifiers": [w.ids["texts/articles"]],
            "stages": [fs_stage("s", search={"collection_identifiers": ["reviews"]})],
        },
    )
    # 'reviews' applies a taxonomy over 'articles' (taxonomy_applications, taxonomy_count).
    config = {
        "taxonomy_type": "flat",
        "retriever_id": w.retrievers["texts/by_category"],
        "input_mappings": [{"input_key": "q", "source_type": "payload", "path": "text"}],
        "source_collection": {"collection_id": w.ids["texts/articles"]},
    }
    taxonomy = mixpeek.TaxonomiesApi(w.client("texts")).create_taxonomy_taxonomies(
        CreateTaxonomyRequest.from_dict({"taxonomy_name": "categories", "config": config})
    )
    mixpeek.CollectionsApi(w.client("texts")).update_collection(
        "reviews", {"taxonomy_applications": [{"taxonomy_id": taxonomy.taxonomy_id}]}
    )

    # 'vectors': standalone (BYO); a collection and the hidden direct-upsert one.
    w.create_namespace(
        {
            "namespace_name": "vectors",
            "vector_configs": [{"name": "emb", "dimension": 4, "metric": "euclidean"}],
            "payload_indexes": [
                {"field_name": "metadata.year", "type": "integer"},
                {"field_name": "metadata.kind", "type": "keyword"},
            ],
        }
    )
    w.create_collection(
        "vectors", {"collection_name": "points", "source": {"type": "direct_upsert"}}
    )
    byo = mixpeek.BYODocumentsApi(w.client("vectors"))
    byo.upsert_documents_byo_namespaces(
        "vectors",
        BYOUpsertRequest.from_dict(
            {
                "collection_id": w.ids["vectors/points"],
                "documents": [
                    {"document_id": f"p{i}", "vectors": {"emb": [i, 1.0, 0.0, 0.5]}}
                    for i in range(4)
                ],
            }
        ),
    )
    byo.upsert_documents_byo_namespaces(
        "vectors",
        BYOUpsertRequest.from_dict(
            {"documents": [{"document_id": "loose", "vectors": {"emb": [0.0, 1.0, 0.0, 0.5]}}]}
        ),
    )
    w.create_retriever(
        "vectors",
        {
            "retriever_name": "near",
            "collection_identifiers": ["points"],
            "stages": [
                with_filter(
                    {
                        "stage_name": "s",
                        "config": {
                            "stage_id": "feature_search",
                            "parameters": {
                                "searches": [
                                    {
                                        "feature_uri": "emb",
                                        "query": {"input_mode": "vector", "value": [1, 0, 0, 0]},
                                    }
                                ]
                            },
                        },
                    },
                    {"AND": [{"field": "metadata.year", "operator": "gte", "value": 2020}]},
                )
            ],
        },
    )

    # 'broken': a standalone namespace whose collection's shard stops answering. The fault is
    # injected at the storage boundary: the real Qdrant Edge shard is closed under the server,
    # as a crashed or unmounted shard would be; nothing of ours is mocked.
    w.create_namespace(
        {
            "namespace_name": "broken",
            "vector_configs": [{"name": "v3", "dimension": 3, "metric": "cosine"}],
        }
    )
    w.create_collection("broken", {"collection_name": "lost", "source": {"type": "direct_upsert"}})
    byo = mixpeek.BYODocumentsApi(w.client("broken"))
    byo.upsert_documents_byo_namespaces(
        "broken",
        BYOUpsertRequest.from_dict(
            {
                "collection_id": "lost",
                "documents": [{"document_id": "x", "vectors": {"v3": [1.0, 0.0, 0.0]}}],
            }
        ),
    )
    stores = handle.server.config.app.state.stores  # type: ignore[attr-defined]
    stores.index.shard(w.ids["broken/lost"]).close()
    return w


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data: Path = tmp_path_factory.mktemp("no-constants")
    # hash embedder: the figures, not the embeddings, are under test; no background builds
    handle = start_server(data, admin_key=ADMIN_KEY, embedder="hash", index_build_min_points=0)
    try:
        yield build_world(handle)
    finally:
        handle.stop()


NAMESPACES = ["empty", "texts", "vectors", "broken"]


def raw_namespaces(w: World) -> list[dict[str, Any]]:
    """Every namespace body: GET of each, and the list route."""
    http = w.http()
    bodies = [http.get(f"/v1/namespaces/{n}").raise_for_status().json() for n in NAMESPACES]
    listed = http.post("/v1/namespaces/list", json={}).raise_for_status().json()["results"]
    assert {b["namespace_name"] for b in listed} == set(NAMESPACES)
    return bodies + listed


def raw_collections(w: World) -> list[dict[str, Any]]:
    """Every collection body: GET of each (by id), and each namespace's list route."""
    bodies = []
    for key, cid in w.ids.items():
        ns = key.split("/")[0]
        bodies.append(w.http(ns).get(f"/v1/collections/{cid}").raise_for_status().json())
    for ns in NAMESPACES:
        listed = w.http(ns).post("/v1/collections/list", json={}).raise_for_status().json()
        bodies += listed["results"]
    return bodies


def leaves(node: Any, path: str, out: dict[str, set[str]]) -> None:
    """Every node's value (containers included) by path; list items share their list's
    path + '[]', and the values of MAP_PATHS are taken whole."""
    if path:
        out[path].add(json.dumps(node, sort_keys=True))
        if path in MAP_PATHS:
            return
    if isinstance(node, dict):
        for key, value in node.items():
            leaves(value, f"{path}.{key}" if path else key, out)
    elif isinstance(node, list):
        for item in node:
            leaves(item, f"{path}[]", out)


def allowed(path: str, allow: dict[str, str]) -> bool:
    return any(path == a or path.startswith((f"{a}.", f"{a}[]")) for a in allow)


def constant_paths(bodies: list[dict[str, Any]], allow: dict[str, str]) -> dict[str, str]:
    values: dict[str, set[str]] = defaultdict(set)
    for body in bodies:
        leaves(body, "", values)
    return {p: next(iter(v)) for p, v in values.items() if len(v) < 2 and not allowed(p, allow)}


# ---- the test the acceptance criteria ask for


def test_every_field_of_a_namespace_body_moves_with_the_work(world: World) -> None:
    bodies = raw_namespaces(world)
    assert constant_paths(bodies, ALLOWLIST["namespace"]) == {}
    for body in bodies:
        assert not REMOVED["namespace"] & body.keys()
    # each allowlisted path exists (an allowlist entry for a field that is gone is stale)
    seen: dict[str, set[str]] = defaultdict(set)
    for body in bodies:
        leaves(body, "", seen)
    assert set(ALLOWLIST["namespace"]) <= seen.keys()


def test_every_field_of_a_collection_body_moves_with_the_work(world: World) -> None:
    bodies = raw_collections(world)
    assert constant_paths(bodies, ALLOWLIST["collection"]) == {}
    for body in bodies:
        assert not REMOVED["collection"] & body.keys()
    seen: dict[str, set[str]] = defaultdict(set)
    for body in bodies:
        leaves(body, "", seen)
    assert set(ALLOWLIST["collection"]) <= seen.keys()


def test_the_leaf_check_catches_a_constant() -> None:
    """The check itself can fail: a field that never changes is reported."""
    bodies = [{"a": 1, "stat": 0, "nested": [{"k": "x"}]}, {"a": 2, "stat": 0, "nested": []}]
    assert constant_paths(bodies, {}) == {
        "stat": "0",
        "nested[].k": '"x"',
        "nested[]": '{"k": "x"}',
    }


# ---- what each figure means, read through the SDK


def sdk_collection(w: World, ns: str, col: str) -> CollectionResponse:
    return mixpeek.CollectionsApi(w.client(ns)).get_collection(w.ids[f"{ns}/{col}"])


def sdk_namespace(w: World, ns: str) -> NamespaceModel:
    return mixpeek.NamespacesApi(w.client()).get_namespace(ns)


def test_retriever_count_counts_the_retrievers_that_read_the_collection(world: World) -> None:
    counts = {
        col: sdk_collection(world, "texts", col).retriever_count
        for col in ("articles", "authors", "reviews", "unread", "archive")
    }
    # articles: three retrievers list it; authors: only a document_enrich join names it;
    # reviews: only a search's own collection_identifiers name it.
    assert counts == {"articles": 3, "authors": 1, "reviews": 1, "unread": 0, "archive": 0}
    assert sdk_collection(world, "vectors", "points").retriever_count == 1


def test_retriever_count_moves_when_a_retriever_goes(world: World) -> None:
    api = mixpeek.RetrieversApi(world.client("texts"))
    rid = world.create_retriever(
        "texts",
        {
            "retriever_name": "temporary_join",
            "collection_identifiers": ["unread"],
            "stages": [
                fs_stage("s"),
                {
                    "stage_name": "j",
                    "config": {
                        "stage_id": "document_enrich",
                        "parameters": {"target_collection_id": world.ids["texts/archive"]},
                    },
                },
            ],
        },
    )
    assert sdk_collection(world, "texts", "unread").retriever_count == 1
    assert sdk_collection(world, "texts", "archive").retriever_count == 1  # joined by id
    api.delete_retriever(rid)
    assert sdk_collection(world, "texts", "unread").retriever_count == 0
    assert sdk_collection(world, "texts", "archive").retriever_count == 0


def test_document_counts_and_indexing_status_follow_the_writes(world: World) -> None:
    articles = sdk_collection(world, "texts", "articles")
    assert articles.document_count == 2  # three written, one deleted
    for ns, col in [("texts", c) for c in ("articles", "authors", "reviews", "unread")] + [
        ("vectors", "points")
    ]:
        got = sdk_collection(world, ns, col)
        # acknowledged writes are in the index: its point count equals the live documents
        assert got.indexing_status == "quiesced", (ns, col)

    # namespace document_count sums every collection's, the hidden direct-upsert one too
    for ns in ("texts", "vectors"):
        every = mixpeek.CollectionsApi(world.client(ns)).list_collections(
            list_collections_request=ListCollectionsRequest.from_dict({"include_system": True})
        )
        listed = {c.collection_name: c.document_count for c in every.results}
        body = sdk_namespace(world, ns)
        assert body.document_count == sum(v or 0 for v in listed.values())
        assert body.collection_count == len([n for n in listed if not n.startswith("_")])
    assert sdk_namespace(world, "vectors").document_count == 5  # 4 in 'points', 1 loose
    assert sdk_namespace(world, "vectors").collection_count == 1

    # one more write moves both figures
    before = sdk_namespace(world, "texts").document_count
    world.add_documents("texts", "unread", [{"text": "now read"}])
    assert sdk_collection(world, "texts", "unread").document_count == 1
    assert sdk_collection(world, "texts", "unread").indexing_status == "quiesced"
    assert sdk_namespace(world, "texts").document_count == before + 1


def test_an_unreadable_shard_is_reported_not_papered_over(world: World) -> None:
    lost = sdk_collection(world, "broken", "lost")
    assert lost.indexing_status == "unknown"
    assert lost.document_count == 1  # the metadata store still answers
    raw = world.http("broken").get(f"/v1/collections/{world.ids['broken/lost']}").json()
    assert "payload_indexes" not in raw  # the shard's indexes cannot be read: not returned
    assert sdk_namespace(world, "broken").namespace_ready is False
    for ns in ("empty", "texts", "vectors"):
        assert sdk_namespace(world, ns).namespace_ready is True


def test_namespace_figures(world: World) -> None:
    texts = sdk_namespace(world, "texts")
    assert texts.vector_inference_map == {"text_extractor_v1_all_minilm_l6_v2": "all_minilm_l6_v2"}
    assert texts.payload_index_count == 1 and texts.mode == "managed"
    vectors = sdk_namespace(world, "vectors")
    assert vectors.vector_inference_map == {}  # BYO vectors are brought, never inferred
    assert vectors.payload_index_count == 2 and vectors.mode == "standalone"
    empty = sdk_namespace(world, "empty")
    assert (empty.collection_count, empty.document_count) == (0, 0)
    # the SDK's defaults stand in for what is no longer sent
    assert empty.document_count_complete is True and empty.bucket_count is None


def test_payload_indexes_come_from_the_shard(world: World) -> None:
    # The namespace declares metadata.category: every collection of it has the index, read
    # back from its shard, whether or not a retriever filters on it.
    for name in ("articles", "unread"):
        got = sdk_collection(world, "texts", name)
        assert [(p["field_name"], p["type"]) for p in got.payload_indexes or []] == [
            ("metadata.category", "keyword")
        ], name
    # Declared numbers are indexed as float (exact numeric comparisons), keywords as such.
    points = sdk_collection(world, "vectors", "points")
    assert sorted((p["field_name"], p["type"]) for p in points.payload_indexes or []) == [
        ("metadata.kind", "keyword"),
        ("metadata.year", "float"),
    ]


def test_a_retriever_body_carries_no_publication_constant(world: World) -> None:
    rid = world.retrievers["texts/by_category"]
    raw = world.http("texts").get(f"/v1/retrievers/{rid}").raise_for_status().json()
    assert "is_published" not in raw
    got = mixpeek.RetrieversApi(world.client("texts")).get_retriever(rid)
    assert got.is_published is False  # the SDK's default
