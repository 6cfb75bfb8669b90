"""Filtered dense search stays correct once the background HNSW build has swapped in, whatever
the filter's origin: a retriever's templated (or literal) pre-filter, an execute-time filter on
a field without a payload index, an execute-time templated filter.

The scenario is bench/filter_recall.py's, at 100,000 clustered 384-d vectors in a BYO
collection, `metadata.cat` and `metadata.shard` each 10% a value. The retrievers are created
before the data, as a user would, so the payload indexes they ask for exist from the start; the
server's index builder builds HNSW by itself once every point is in (a lower threshold starts
it mid-ingest and leaves the rest to exact scan until a later round). Each of 100 queries near a
cluster centre is scored against exact numpy search over the rows that match; `pytest -s`
prints the recall and latency figures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from bench import filter_recall as fr
from bench.generate import Dataset, Spec
from bench.measure import ADMIN_KEY  # the key bench.measure.Client sends
from numpy.typing import NDArray

from tests.support.server import start_server

pytestmark = [pytest.mark.api, pytest.mark.slow]

N = 100_000
QUERIES = 100


@dataclass
class Loaded:
    base_url: str
    collection_id: str
    retriever_ids: dict[str, str]
    vectors: NDArray[np.float32]
    queries: NDArray[np.float32]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    t0 = time.monotonic()
    ds = Dataset(Spec(N))
    vectors = np.asarray(ds.vectors(tmp_path_factory.mktemp("vectors")))
    queries, _, _ = ds.queries(QUERIES, seed=1)
    handle = start_server(
        tmp_path_factory.mktemp("data"),
        admin_key=ADMIN_KEY,
        embedder="hash",
        index_build_min_points=N,
        index_build_poll_s=0.5,
    )
    try:
        collection_id, rids = fr.load(handle.base_url, vectors)
        ingested = time.monotonic()
        build = fr.wait_built(handle.base_url, collection_id, timeout=300)
        print(
            f"\n[filter recall] {N:,} points in {ingested - t0:.0f} s; HNSW swapped in "
            f"{time.monotonic() - ingested:.0f} s later: {build['build']}"
        )
        yield Loaded(handle.base_url, collection_id, rids, vectors, queries)
    finally:
        handle.stop()


def _served_by_an_index(loaded: Loaded, filters: list[Any], warnings: list[list[str]]) -> None:
    """metadata.cat has the payload index the pre-filters asked for, created before the
    build: the search runs on it ("indexed", or "acorn" where the index kind gives HNSW no
    filter-aware links, as a float index: what an integer input gets), never by exact scan."""
    for report, warned in zip(filters, warnings, strict=True):
        assert report["unindexed_fields"] == [], report
        assert report["paths"] in (
            {loaded.collection_id: ["indexed"]},
            {loaded.collection_id: ["acorn"]},
        ), report
        assert warned == []


def _ran_exactly(loaded: Loaded, filters: list[Any], warnings: list[list[str]]) -> None:
    """metadata.shard is in no stage filter, so it has no payload index: an exact scan, said
    in the stage metadata and in a warning."""
    for report, warned in zip(filters, warnings, strict=True):
        assert report == {
            "paths": {loaded.collection_id: ["exact"]},
            "unindexed_fields": ["metadata.shard"],
        }
        assert any("metadata.shard" in w for w in warned), warned


EXPECTED_PATH = {
    "a": _served_by_an_index,
    "a_literal": _served_by_an_index,
    "b": _ran_exactly,
    "c": _served_by_an_index,
}


@pytest.mark.parametrize("scenario", fr.SCENARIOS, ids=[sc.key for sc in fr.SCENARIOS])
def test_a_filtered_search_keeps_recall_after_the_hnsw_build(
    loaded: Loaded, scenario: fr.Scenario
) -> None:
    out = fr.run_scenario(
        loaded.base_url, loaded.retriever_ids, scenario, loaded.vectors, loaded.queries
    )
    s = out.summary()
    print(
        f"[filter recall] {scenario.label}: recall@10 {s['recall@10']:.3f} "
        f"(min {s['recall@10_min']}), {s['short_pages']} short pages, "
        f"p50 {s['wall_ms']['p50']:.1f} ms, p99 {s['wall_ms']['p99']:.1f} ms, paths {s['paths']}"
    )
    for q, (asked, got) in enumerate(out.values):
        assert got == [asked] * len(got), f"query {q} filtered {scenario.field} == {asked}: {got}"
    assert s["recall@10"] >= fr.MIN_RECALL, s
    short = [q for q, (_, got) in enumerate(out.values) if len(got) < fr.K]
    assert not short, f"queries {short} returned fewer than {fr.K} documents"
    EXPECTED_PATH[scenario.key](loaded, out.filters, out.warnings)
