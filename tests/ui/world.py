"""The data the explorer tests look at: a namespace with the known corpus, a retriever of four
stages (hybrid search, a templated filter, a slow stage that makes the run observable and
its waterfall measurable, MMR), one whose budget fails every run, and a second namespace."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.sync_api import Page

from tests.support import slow_stage
from tests.support.corpus import COLLECTION, DENSE_URI, search, seed_corpus
from tests.support.server import ServerHandle

SLOW_MS = 1000.0  # two polls of the live view land inside it
QUERY = "a cat by the window"

STAGES: list[dict[str, Any]] = [
    {
        "stage_name": "search",
        "config": {
            "stage_id": "feature_search",
            "parameters": {
                "searches": [search(top_k=40), search(top_k=40, lexical=True)],
                "fusion": "rrf",
                "final_top_k": 20,
            },
        },
    },
    {
        "stage_name": "recent",
        "config": {
            "stage_id": "attribute_filter",
            "parameters": {"field": "metadata.year", "operator": "gte", "value": "{{INPUT.year}}"},
        },
    },
    {
        "stage_name": "slow",
        "config": {"stage_id": slow_stage.SlowStage.stage_id, "parameters": {"total_ms": SLOW_MS}},
    },
    {
        "stage_name": "diverse",
        "config": {
            "stage_id": "mmr",
            "parameters": {"diversity_feature_uri": DENSE_URI, "top_k": 10, "lambda": 0.8},
        },
    },
    # A second sleeper: two bars are always wide enough to check their proportion, however
    # fast the search runs.
    {
        "stage_name": "settle",
        "config": {
            "stage_id": slow_stage.SlowStage.stage_id,
            "parameters": {"total_ms": SLOW_MS * 0.3},
        },
    },
]


@dataclass
class World:
    http: httpx.Client  # admin key, scoped to the namespace
    namespace: str
    namespace_id: str
    other_namespace: str
    retriever_id: str
    tight_id: str  # max_credits below one search: every run fails

    def detail(self, retriever_id: str, execution_id: str) -> dict[str, Any]:
        resp = self.http.get(
            f"/v1/retrievers/{retriever_id}/executions/{execution_id}", params={"limit": 1000}
        )
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def ranking(self, execution_id: str) -> list[str]:
        docs = self.detail(self.retriever_id, execution_id)["documents"]
        return [d["document_id"] for d in docs]

    def execute(self, retriever_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        resp = self.http.post(
            f"/v1/retrievers/{retriever_id}/execute",
            params={"skip_cache": "true"},
            json={"inputs": inputs},
        )
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def document_id(self, text: str) -> str:
        resp = self.http.post(f"/v1/collections/{COLLECTION}/documents/list", json={"limit": 100})
        assert resp.status_code == 200, resp.text
        return str(next(d["document_id"] for d in resp.json()["results"] if d["text"] == text))


def _retriever(http: httpx.Client, name: str, **extra: Any) -> str:
    body = {
        "retriever_name": name,
        "collection_identifiers": [COLLECTION],
        "input_schema": {
            "query": {"type": "text", "required": True, "description": "What to look for"},
            "year": {"type": "integer", "default": 2000},
        },
        "stages": STAGES,
        **extra,
    }
    resp = http.post("/v1/retrievers", json=body)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["retriever_id"])


def build_world(server: ServerHandle) -> World:
    suffix = uuid.uuid4().hex[:8]
    namespace, other = f"ui-{suffix}", f"ui-other-{suffix}"
    http = seed_corpus(server, namespace)
    admin = server.client(server.admin_key)
    admin.post("/v1/namespaces", json={"namespace_name": other}).raise_for_status()
    namespace_id = admin.get(f"/v1/namespaces/{namespace}").json()["namespace_id"]
    admin.close()
    return World(
        http=http,
        namespace=namespace,
        namespace_id=str(namespace_id),
        other_namespace=other,
        retriever_id=_retriever(
            http, "hybrid-recent", budget_limits={"max_credits": 50, "max_time_ms": 20_000}
        ),
        tight_id=_retriever(http, "tight-budget", budget_limits={"max_credits": 0.5}),
    )


def signed_in(page: Page, server: ServerHandle, world: World, hash_: str) -> Page:
    """The explorer at `hash_`, signed in as the admin key in the world's namespace (the
    sign-in form itself is tested once, in test_explorer)."""
    page.goto(f"{server.base_url}/ui/")
    session = {"stagewise.apiKey": server.admin_key, "stagewise.namespace": world.namespace_id}
    page.evaluate(
        "(items) => { for (const [k, v] of Object.entries(items)) sessionStorage.setItem(k, v); }",
        session,
    )
    page.goto(f"{server.base_url}/ui/{hash_}")
    page.reload()  # a fresh start with the session, whatever the hash was
    return page
