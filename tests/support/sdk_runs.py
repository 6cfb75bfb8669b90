"""A namespace driven through the official mixpeek SDK: collections, documents, retrievers and
executions, each answer parsed by the SDK (strict pydantic) and kept as raw JSON too."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import mixpeek
from mixpeek.models import (
    CreateCollectionRequest,
    CreateNamespaceRequest,
    CreateRetrieverRequest,
    DocumentCreateRequest,
    ExecuteRetrieverRequest,
    ExecutionDetail,
)

from tests.support.corpus import DENSE_URI
from tests.support.server import ServerHandle

TEXT_EXTRACTOR = {"feature_extractor_name": "text_extractor", "version": "v1"}
# A small collection the interaction and dataset tests search and judge.
GEAR_TEXTS = [
    "Trail running shoes with a grippy sole",
    "Waterproof hiking boots for winter",
    "Lightweight tent for two people",
    "Insulated sleeping bag rated to minus ten",
]


def dense(query: Any = "{{INPUT.q}}", **extra: Any) -> dict[str, Any]:
    """One dense search over the MiniLM text feature."""
    return {"feature_uri": DENSE_URI, "query": {"input_mode": "text", "value": query}, **extra}


def search_stage(
    name: str = "search",
    *,
    searches: list[dict[str, Any]] | None = None,
    pre_filters: dict[str, Any] | None = None,
    **params: Any,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "stage_id": "feature_search",
        "parameters": {"searches": searches or [dense()], **params},
    }
    if pre_filters is not None:
        config["pre_filters"] = pre_filters
    return {"stage_name": name, "config": config}


def stage(name: str, stage_id: str, **params: Any) -> dict[str, Any]:
    return {"stage_name": name, "config": {"stage_id": stage_id, "parameters": params}}


def join_stage(target: str, name: str = "join", **params: Any) -> dict[str, Any]:
    """document_enrich: each candidate's metadata.brand looked up in `target` by metadata.code,
    the match nested under `brand_info`."""
    return stage(
        name,
        "document_enrich",
        target_collection_id=target,
        source_field="metadata.brand",
        target_field="metadata.code",
        output_field="brand_info",
        **params,
    )


@dataclass
class Run:
    """One answer: the SDK's parsed model and the raw JSON it was parsed from."""

    model: Any
    raw: dict[str, Any]


@dataclass
class Space:
    """A namespace of the test's own; `key` is the API key its calls use (admin unless set)."""

    handle: ServerHandle
    name: str = field(default_factory=lambda: f"ns-{uuid.uuid4().hex[:10]}")
    key: str | None = None
    ids: dict[str, str] = field(default_factory=dict)  # collection name -> id
    _clients: dict[str | None, mixpeek.ApiClient] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        mixpeek.NamespacesApi(self.client(namespace=None)).create_namespace(
            CreateNamespaceRequest.from_dict({"namespace_name": self.name})
        )

    def client(self, namespace: str | None = "") -> mixpeek.ApiClient:
        """An SDK client with this space's key, bound to the namespace (None: unbound)."""
        ns = self.name if namespace == "" else namespace
        if ns not in self._clients:
            config = mixpeek.Configuration(
                host=self.handle.base_url,
                access_token=self.key or self.handle.admin_key,
                api_key={"NamespaceHeader": ns} if ns else None,
            )
            self._clients[ns] = mixpeek.ApiClient(config)
        return self._clients[ns]

    def as_key(self, key: str) -> Space:
        """The same namespace seen through another API key (nothing is created)."""
        other = object.__new__(Space)
        other.handle, other.name, other.key, other.ids = self.handle, self.name, key, self.ids
        other._clients = {}
        return other

    # ---- collections and documents

    def collection(
        self, name: str, docs: list[dict[str, Any]] | None = None, **extractor: Any
    ) -> str:
        """A text collection; `extractor` adds to its feature_extractor (input_mappings)."""
        col = mixpeek.CollectionsApi(self.client()).create_collection(
            CreateCollectionRequest.from_dict(
                {
                    "collection_name": name,
                    "source": {"type": "direct_upsert"},
                    "feature_extractor": {**TEXT_EXTRACTOR, **extractor},
                }
            )
        )
        assert col.collection_id is not None
        self.ids[name] = col.collection_id
        self.add(name, docs or [])
        return col.collection_id

    def add(self, collection: str, docs: list[dict[str, Any]]) -> list[str]:
        api = self.documents()
        return [
            str(api.create_document(collection, DocumentCreateRequest.from_dict(d)).document_id)
            for d in docs
        ]

    def documents(self) -> mixpeek.CollectionDocumentsApi:
        return mixpeek.CollectionDocumentsApi(self.client())

    def collection_body(self, collection: str) -> dict[str, Any]:
        got = mixpeek.CollectionsApi(self.client()).get_collection_with_http_info(collection)
        return dict(json.loads(got.raw_data))

    # ---- retrievers and executions

    def retriever(self, body: dict[str, Any]) -> str:
        body = {
            "retriever_name": f"r-{uuid.uuid4().hex[:8]}",
            "input_schema": {"q": {"type": "string"}},
            **body,
        }
        r = mixpeek.RetrieversApi(self.client()).create_retriever(
            CreateRetrieverRequest.from_dict(body)
        )
        assert r.retriever_id is not None
        return str(r.retriever_id)

    def retrievers(self) -> mixpeek.RetrieversApi:
        return mixpeek.RetrieversApi(self.client())

    def execute(self, retriever_id: str, body: dict[str, Any], **query: Any) -> Run:
        got = self.retrievers().execute_retriever_with_http_info(
            retriever_id, ExecuteRetrieverRequest.from_dict(body), **query
        )
        return Run(got.data, json.loads(got.raw_data))

    def detail(self, retriever_id: str, execution_id: str, **page: int) -> Run:
        """GET the execution; `page` (limit, offset) are query parameters the SDK's method
        does not take, so such a call goes through HTTP and is parsed by the SDK's model."""
        if not page:
            got = self.retrievers().get_execution_retrievers_with_http_info(
                retriever_id, execution_id
            )
            return Run(got.data, json.loads(got.raw_data))
        with self.handle.client(self.key or self.handle.admin_key, self.name) as http:
            raw = http.get(
                f"/v1/retrievers/{retriever_id}/executions/{execution_id}", params=page
            ).raise_for_status()
        return Run(ExecutionDetail.from_dict(raw.json()), raw.json())


def doc_ids(run: Run) -> set[str]:
    return {d["document_id"] for d in run.raw["documents"]}
