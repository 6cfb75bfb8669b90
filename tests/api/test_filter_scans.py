"""Filters the engine cannot run (ends_with, regex): the scan cap's 422 on the document
listing, and an execute batch that resolves one such filter once for all its queries."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.api.test_metrics import scrape, value
from tests.conftest import ADMIN_KEY
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]

CAP = 10
DOCS = 30


def test_scan_cap_422_and_batch_reuses_one_residual(
    fresh_server: Callable[..., ServerHandle],
) -> None:
    handle = fresh_server(embedder="hash", filter_scan_cap=CAP)
    admin = handle.client(ADMIN_KEY)
    admin.post(
        "/v1/namespaces",
        json={"namespace_name": "cliffs", "vector_configs": [{"name": "emb", "dimension": 2}]},
    ).raise_for_status()
    http = handle.client(ADMIN_KEY, "cliffs")
    col = http.post(
        "/v1/collections", json={"collection_name": "pts", "source": {"type": "direct_upsert"}}
    ).raise_for_status()
    cid = col.json()["collection_id"]
    docs = [
        {
            "document_id": f"d{i}",
            "vectors": {"emb": [1.0, float(i)]},
            "metadata": {"name": f"item-{i:02d}", "group": i % 5},
        }
        for i in range(DOCS)
    ]
    admin.post(
        "/v1/namespaces/cliffs/documents/upsert", json={"collection_id": "pts", "documents": docs}
    ).raise_for_status()

    # Every document is a candidate: past the cap, refused with the field and operator named.
    ends = {"field": "metadata.name", "operator": "regex", "value": "[37]$"}
    refused = http.post(f"/v1/collections/{cid}/documents/list", json={"filters": ends})
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["success"] is False and body["status"] == 422
    error = body["error"]
    assert error["code"] == "filter_scan_too_large" and error["type"] == "ValidationError"
    assert error["details"] == {"field": "metadata.name", "operator": "regex", "scan_cap": CAP}
    assert "metadata.name" in error["message"] and "regex" in error["message"]

    # A native condition narrowing the candidates to 6 (group = 3) lets the scan run.
    narrowed = {"AND": [{"metadata.group": 3}, ends]}
    listed = http.post(
        f"/v1/collections/{cid}/documents/list", json={"filters": narrowed, "limit": 50}
    )
    assert listed.status_code == 200, listed.text
    got = sorted(d["document_id"] for d in listed.json()["results"])
    want = sorted(f"d{i}" for i in range(DOCS) if i % 5 == 3 and i % 10 in (3, 7))
    assert got == want and want

    # A batch of two queries under that filter: one payload scan, not one per query.
    search = {
        "feature_uri": "emb",
        "query": {"input_mode": "vector", "value": "{{INPUT.v}}"},
        "top_k": 10,
    }
    rid = (
        http.post(
            "/v1/retrievers",
            json={
                "retriever_name": "r",
                "collection_identifiers": ["pts"],
                "input_schema": {"v": {"type": "array"}},
                "stages": [
                    {
                        "stage_name": "search",
                        "config": {
                            "stage_id": "feature_search",
                            "parameters": {"searches": [search]},
                        },
                    }
                ],
            },
        )
        .raise_for_status()
        .json()["retriever_id"]
    )
    scans = "stagewise_filter_residual_scans_total"
    before = value(scrape(handle), scans)
    batch = http.post(
        f"/v1/retrievers/{rid}/execute/batch",
        json={
            "queries": [
                {"inputs": {"v": [1.0, 0.0]}, "filters": narrowed},
                {"inputs": {"v": [0.0, 1.0]}, "filters": narrowed},
            ]
        },
    )
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["status"] for r in results] == ["completed", "completed"]
    for r in results:
        assert sorted(d["document_id"] for d in r["documents"]) == want
    assert value(scrape(handle), scans) == before + 1
    # The same query alone, twice: each request scans again.
    for v in ([1.0, 2.0], [2.0, 1.0]):
        one = http.post(
            f"/v1/retrievers/{rid}/execute", json={"inputs": {"v": v}, "filters": narrowed}
        )
        assert one.status_code == 200 and one.json()["status"] == "completed", one.text
    assert value(scrape(handle), scans) == before + 3
    # Inside a run, a refused filter fails that execution with the message; the others run.
    mixed = http.post(
        f"/v1/retrievers/{rid}/execute/batch",
        json={"queries": [{"inputs": {"v": [1.0, 1.0]}, "filters": f} for f in (ends, narrowed)]},
    )
    failed, done = mixed.json()["results"]
    assert failed["status"] == "failed" and "scan more than 10" in failed["error"], failed
    assert done["status"] == "completed"
