"""What stagewise.tuning fuses is what a hybrid feature_search returns for the same lists."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from stagewise.tuning import FusionConfig, fuse_query
from tests.api.test_executions import fs, make, run
from tests.support.corpus import search, seed_corpus
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]

DEPTH = 30
SOURCES = ("dense", "bm25")
QUERIES = ("cat sleeping by the window", "stock markets fell", "qubits and sunlight energy")
CONFIGS = [
    FusionConfig("rrf", (1.0, 1.0), (30, 30)),
    FusionConfig("rrf", (0.5, 1.0), (8, 30)),
    FusionConfig("dbsf", (1.0, 0.25), (30, 5)),
    FusionConfig("weighted", (0.75, 1.0), (12, 30)),
]


@pytest.fixture(scope="module")
def http(server: ServerHandle) -> Iterator[httpx.Client]:
    client = seed_corpus(server, f"ns-{uuid.uuid4().hex[:10]}")
    yield client
    client.close()


def hits(http: httpx.Client, rid: str, query: str) -> list[tuple[str, float]]:
    out = run(http, rid, {"inputs": {"query": query}, "pagination": {"limit": 100}})
    return [(d["document_id"], d["score"]) for d in out["documents"]]


def cut_in_a_tie(hits: list[tuple[str, float]], top_k: int) -> bool:
    """The engine keeps an arbitrary subset of the documents tied at a top_k cut, so a shorter
    search need not return the head of a deeper one there; such cuts are not compared."""
    return 0 < top_k < len(hits) and hits[top_k - 1][1] == hits[top_k][1]


def test_tuning_fuses_the_single_source_lists_exactly_as_the_stage(http: httpx.Client) -> None:
    single = {
        name: make(
            http, [fs(name, [search(lexical=name == "bm25", top_k=DEPTH)], final_top_k=DEPTH)]
        )
        for name in SOURCES
    }
    lists = {q: {name: hits(http, rid, q) for name, rid in single.items()} for q in QUERIES}
    # Both sources answer every query (BM25 only the documents sharing a term with it).
    assert all(lists[q]["bm25"] and len(lists[q]["dense"]) == DEPTH for q in QUERIES)
    for config in CONFIGS:
        for q in QUERIES:
            cuts = zip(SOURCES, config.top_ks, strict=True)
            assert not any(cut_in_a_tie(lists[q][name], k) for name, k in cuts), (config, q)
        searches = [
            {**search(lexical=name == "bm25", top_k=top_k), "weight": weight}
            for name, weight, top_k in zip(SOURCES, config.weights, config.top_ks, strict=True)
        ]
        hybrid = make(http, [fs("h", searches, fusion=config.method, final_top_k=100)])
        for q in QUERIES:
            expected = fuse_query(lists[q], SOURCES, config)
            got = hits(http, hybrid, q)
            assert [d for d, _ in got] == [d for d, _ in expected], (config, q)
            assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-9)
