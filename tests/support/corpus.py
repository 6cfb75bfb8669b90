"""A small, known corpus loaded through the HTTP API."""

from __future__ import annotations

import httpx

from tests.support.server import ServerHandle

TEXTS = [
    ("The cat sat quietly on the warm windowsill", "pets", 2019),
    ("Quantum computers use qubits to run algorithms", "science", 2021),
    ("A kitten napped in the afternoon sun by the window", "pets", 2022),
    ("Stock markets fell sharply after the announcement", "finance", 2020),
    ("Photosynthesis converts sunlight into chemical energy", "science", 2018),
    ("The zyxquartz protocol was ratified yesterday", "science", 2023),
] + [
    (f"Filler document number {i} about gardening and soil", "garden", 2000 + i) for i in range(30)
]

COLLECTION = "kbase"
DENSE_URI = "mixpeek://text_extractor@v1/all_minilm_l6_v2"


def seed_corpus(server: ServerHandle, namespace: str) -> httpx.Client:
    """Create the namespace, the collection and the documents; returns a scoped client."""
    server.client(server.admin_key).post(
        "/v1/namespaces", json={"namespace_name": namespace}
    ).raise_for_status()
    http = server.client(server.admin_key, namespace=namespace)
    http.post(
        "/v1/collections",
        json={
            "collection_name": COLLECTION,
            "source": {"type": "direct_upsert"},
            "feature_extractor": {"feature_extractor_name": "text_extractor", "version": "v1"},
        },
    ).raise_for_status()
    for text, category, year in TEXTS:
        http.post(
            f"/v1/collections/{COLLECTION}/documents",
            json={"text": text, "metadata": {"category": category, "year": year}},
        ).raise_for_status()
    return http


def search(
    query: str = "{{INPUT.query}}", *, lexical: bool = False, top_k: int = 50
) -> dict[str, object]:
    return {
        "feature_uri": DENSE_URI,
        "query": {"input_mode": "text", "value": query},
        "top_k": top_k,
        "lexical": lexical,
    }
