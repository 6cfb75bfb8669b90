"""Execution retention through a running server: runs past the per-namespace bound are
deleted with their results, reads of them answer 404 in the error shape, and the runs kept
read back whole."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.corpus import COLLECTION, search, seed_corpus
from tests.support.server import ServerHandle, start_server

pytestmark = [pytest.mark.api]

ADMIN_KEY = "sk-retention-admin-key-0123456789"
KEEP = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_server(
        Path(tmp_path_factory.mktemp("retention")),
        admin_key=ADMIN_KEY,
        embedder="hash",
        rate_limit_per_s=0,
        execution_retention_per_namespace=KEEP,
        execution_prune_every_s=0.2,
    )
    yield handle
    handle.stop()


def _executions(http: httpx.Client, rid: str) -> tuple[list[str], int]:
    resp = http.post(f"/v1/retrievers/{rid}/executions/list", json={})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return [x["execution_id"] for x in body["results"]], body["pagination"]["total"]


def test_runs_past_the_bound_are_deleted_and_read_as_404(server: ServerHandle) -> None:
    namespace = f"ns-{uuid.uuid4().hex[:10]}"
    http = seed_corpus(server, namespace)
    try:
        resp = http.post(
            "/v1/retrievers",
            json={
                "retriever_name": "kept-few",
                "collection_identifiers": [COLLECTION],
                "input_schema": {"query": {"type": "text"}, "year": {"type": "integer"}},
                "stages": [
                    {
                        "stage_name": "search",
                        "config": {
                            "stage_id": "feature_search",
                            "parameters": {"searches": [search(top_k=20)], "final_top_k": 20},
                        },
                    },
                    {
                        "stage_name": "recent",
                        "config": {
                            "stage_id": "attribute_filter",
                            "parameters": {
                                "field": "metadata.year",
                                "operator": "gte",
                                "value": "{{INPUT.year}}",
                            },
                        },
                    },
                ],
            },
        )
        assert resp.status_code == 200, resp.text
        rid = resp.json()["retriever_id"]
        runs: list[tuple[str, list[str]]] = []
        for i in range(KEEP + 4):  # distinct inputs: no cache hits
            resp = http.post(
                f"/v1/retrievers/{rid}/execute",
                json={"inputs": {"query": f"retention query {i}", "year": 1990 + i % 3}},
            )
            assert resp.status_code == 200, resp.text
            body = resp.json()
            runs.append((body["execution_id"], [d["document_id"] for d in body["documents"]]))

        deadline = time.monotonic() + 20
        while _executions(http, rid)[1] > KEEP and time.monotonic() < deadline:
            time.sleep(0.1)
        listed, total = _executions(http, rid)
        assert total == KEEP
        assert listed == [eid for eid, _ in reversed(runs[-KEEP:])]

        for eid, _ in runs[:-KEEP]:
            resp = http.get(f"/v1/retrievers/{rid}/executions/{eid}")
            assert resp.status_code == 404, resp.text
            assert resp.json()["success"] is False
            assert resp.json()["error"]["code"] == "execution_not_found"
        for eid, documents in runs[-KEEP:]:
            resp = http.get(f"/v1/retrievers/{rid}/executions/{eid}")
            assert resp.status_code == 200, resp.text
            assert [d["document_id"] for d in resp.json()["documents"]] == documents

        metrics = http.get("/metrics").text
        pruned = [
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("stagewise_executions_pruned_total ")
        ]
        assert pruned and pruned[0] >= 4, pruned
    finally:
        http.close()
