"""Start-up optimization builds the HNSW index over new points; results stay the same."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ADMIN_KEY
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api, pytest.mark.slow]


def test_restart_optimizes_and_keeps_answers(
    fresh_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = fresh_server(data, embedder="hash", optimize_on_start_min_points=1000)
    admin = first.client(ADMIN_KEY)
    admin.post(
        "/v1/namespaces",
        json={"namespace_name": "opt", "vector_configs": [{"name": "emb", "dimension": 384}]},
    ).raise_for_status()
    c = first.client(ADMIN_KEY, "opt")
    c.post("/v1/collections", json={"collection_name": "pts", "source": {"type": "direct_upsert"}})
    vectors = np.random.default_rng(1).normal(size=(8000, 384))
    # 8,000 x 384 floats pass the engine's indexing threshold (~10 MB per segment).
    for start in range(0, 8000, 1000):
        docs = [
            {"document_id": f"p{i}", "vectors": {"emb": vectors[i].tolist()}, "metadata": {"i": i}}
            for i in range(start, start + 1000)
        ]
        admin.post(
            "/v1/namespaces/opt/documents/upsert", json={"collection_id": "pts", "documents": docs}
        ).raise_for_status()
    query = {
        "collection_identifiers": ["pts"],
        "stages": [
            {
                "stage_name": "s",
                "config": {
                    "stage_id": "feature_search",
                    "parameters": {
                        "final_top_k": 10,
                        "searches": [
                            {
                                "feature_uri": "emb",
                                "top_k": 10,
                                "query": {"input_mode": "vector", "value": vectors[7].tolist()},
                            }
                        ],
                    },
                },
            }
        ],
    }
    before = [
        d["document_id"] for d in c.post("/v1/retrievers/execute", json=query).json()["documents"]
    ]
    first.stop()

    second = fresh_server(data, embedder="hash", optimize_on_start_min_points=1000)
    stores = second.server.config.app.state.stores  # type: ignore[attr-defined]
    col = stores.metadata.get_collection(stores.metadata.get_namespace("opt").namespace_id, "pts")
    assert stores.index.unindexed_points(col.collection_id) == 0
    c2 = second.client(ADMIN_KEY, "opt")
    after = [
        d["document_id"] for d in c2.post("/v1/retrievers/execute", json=query).json()["documents"]
    ]
    assert after[0] == "p7"
    assert len(set(after) & set(before)) >= 9
