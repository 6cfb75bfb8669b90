"""The two transports answer the same searches over the same data alike.

Three hundred documents go into an embedded Qdrant Edge shard and into the Qdrant transport
over qdrant-client's local mode, both searching exhaustively (the shard has no HNSW yet, the
transport runs with exact=True). The text is Cranfield's (the BEIR copy in shared/eval) when
it is there, else generated; the dense vectors are deterministic random ones. Dense, BM25,
hybrid (our fusion over the two), filtered and faceted answers must agree: the same top 10,
ties aside, and scores within SCORE_TOLERANCE (BM25 is computed by both engines from live
statistics, storage/index/bm25.py).
"""

from __future__ import annotations

import itertools
import json
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from stagewise.domain.filters import FilterNode, parse_filter
from stagewise.pipeline.fusion import FusionMethod, RankedList, fuse
from stagewise.storage.index.bm25 import ENGLISH_STOPWORDS
from stagewise.storage.index.edge import EdgeSearchIndex
from stagewise.storage.index.remote import QdrantSearchIndex
from stagewise.storage.protocols import SearchIndex, SearchRequest
from stagewise.testing.search_index_data import TEXT_VECTOR, make_collection, point, unit

pytestmark = pytest.mark.unit

N_DOCS = 300
N_QUERIES = 25
SCORE_TOLERANCE = 1e-4
CATEGORIES = ["aero", "heat", "structures", "flow", "misc"]
TAGS = ["wing", "shock", "boundary", "plate", "nozzle"]
REPO = Path(__file__).resolve().parents[2]


def _eval_dir() -> Path:
    env = os.environ.get("STAGEWISE_EVAL_DIR")
    return Path(env) if env else (REPO / ".." / "shared" / "eval").resolve()


_WORDS = (
    "wing wings flow flows flowing shock shocks boundary layer layers heat heated heating "
    "plate plates nozzle nozzles pressure pressures turbulent turbulence laminar supersonic "
    "subsonic the of and in on a to is with for by model models measured measurement"
)


def _generated(rng: random.Random) -> tuple[list[str], list[str]]:
    words = _WORDS.split()
    docs = [" ".join(rng.choices(words, k=rng.randint(5, 40))) for _ in range(N_DOCS)]
    queries = [" ".join(rng.choices(words, k=rng.randint(2, 5))) for _ in range(N_QUERIES)]
    return docs, queries


def _corpus() -> tuple[str, list[str], list[str]]:
    root = _eval_dir() / "cranfield"
    if (root / "corpus.jsonl").is_file() and (root / "queries.jsonl").is_file():
        with (root / "corpus.jsonl").open() as f:
            rows = [json.loads(line) for _, line in zip(range(N_DOCS), f, strict=False)]
        with (root / "queries.jsonl").open() as f:
            queries = [
                json.loads(line)["text"] for _, line in zip(range(N_QUERIES), f, strict=False)
            ]
        return "cranfield", [f"{r['title']} {r['text']}" for r in rows], queries
    docs, queries = _generated(random.Random(7))
    return "generated", docs, queries


@dataclass
class Pair:
    edge: SearchIndex
    remote: SearchIndex
    cid: str
    queries: list[str]
    vectors: list[list[float]]
    source: str

    def both(self, requests: list[SearchRequest]) -> tuple[list[Any], list[Any]]:
        return self.edge.search(self.cid, requests), self.remote.search(self.cid, requests)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    source, texts, queries = _corpus()
    rng = random.Random(2024)
    col = make_collection()
    points = [
        point(
            f"doc-{i:04d}",
            i + 1,
            {
                "metadata": {
                    "category": CATEGORIES[i % 5],
                    "year": 1950 + (i * 7) % 40,
                    "tags": rng.sample(TAGS, rng.randint(0, 3)),
                }
            },
            {TEXT_VECTOR: unit(rng)},
            text=text,
        )
        for i, text in enumerate(texts)
    ]
    edge = EdgeSearchIndex(tmp_path_factory.mktemp("congruence") / "index")
    remote = QdrantSearchIndex(QdrantClient(":memory:"), exact=True)
    for ix in (edge, remote):
        ix.ensure_collection(col)
        ix.upsert(col.collection_id, points)
        ix.ensure_payload_index(col.collection_id, "metadata.category", "keyword")
        ix.ensure_payload_index(col.collection_id, "metadata.year", "float")
    # No HNSW on the shard: its searches are exhaustive, as the transport's exact ones.
    assert edge.unindexed_points(col.collection_id) == N_DOCS
    vectors = [unit(rng) for _ in range(N_QUERIES)]
    yield Pair(edge, remote, col.collection_id, queries, vectors, source)
    edge.close()
    remote.close()


def _flt(raw: dict[str, Any]) -> FilterNode:
    node = parse_filter(raw)
    assert node is not None
    return node


FILTERS = {
    "keyword": {"metadata.category": "heat"},
    "range": {"field": "metadata.year", "operator": "gte", "value": 1975},
    "residual": {"field": "metadata.tags", "operator": "contains", "value": "wing"},
    "or-residual": {
        "OR": [
            {"field": "text", "operator": "ends_with", "value": "."},
            {"metadata.category": "misc"},
        ]
    },
}


def assert_same_top(
    edge: Sequence[tuple[str, float]], remote: Sequence[tuple[str, float]], tol: float
) -> float:
    """The same ranked list ties aside: scores of common ids within `tol`, ids missing from
    one side tied with that side's last score, and no pair ordered differently unless
    tied. Returns the largest score difference."""
    e, r = dict(edge), dict(remote)
    assert len(edge) == len(remote)
    worst = max((abs(e[k] - r[k]) for k in e.keys() & r.keys()), default=0.0)
    assert worst <= tol, worst
    for only, side in ((e.keys() - r.keys(), edge), (r.keys() - e.keys(), remote)):
        for key in only:
            assert abs(dict(side)[key] - side[-1][1]) <= tol, (key, side[-1])
    common = [k for k, _ in edge if k in r]
    ranks = {k: i for i, (k, _) in enumerate(remote)}
    for a, b in itertools.pairwise(common):
        if e[a] - e[b] > tol:
            assert ranks[a] < ranks[b], (a, b)
    return worst


def _pairs(hits: Sequence[Any]) -> list[tuple[str, float]]:
    return [(h.document_id, h.score) for h in hits]


def test_corpus_is_loaded(pair: Pair) -> None:
    assert pair.edge.count(pair.cid) == pair.remote.count(pair.cid) == N_DOCS
    assert pair.edge.max_seq(pair.cid) == pair.remote.max_seq(pair.cid) == N_DOCS


@pytest.mark.parametrize("filter_name", [None, *FILTERS])
def test_dense_top10(pair: Pair, filter_name: str | None) -> None:
    flt = _flt(FILTERS[filter_name]) if filter_name else None
    requests = [
        SearchRequest(limit=10, vector_name=TEXT_VECTOR, vector=v, filter=flt) for v in pair.vectors
    ]
    for e, r in zip(*pair.both(requests), strict=True):
        assert len(e.hits) == 10
        assert_same_top(_pairs(e.hits), _pairs(r.hits), SCORE_TOLERANCE)
        assert [h.payload for h in e.hits] == [h.payload for h in r.hits]


@pytest.mark.parametrize("filter_name", [None, *FILTERS])
def test_bm25_top10_and_scores(pair: Pair, filter_name: str | None) -> None:
    flt = _flt(FILTERS[filter_name]) if filter_name else None
    requests = [SearchRequest(limit=10, text=q, filter=flt) for q in pair.queries]
    worst = 0.0
    found = 0
    for e, r in zip(*pair.both(requests), strict=True):
        worst = max(worst, assert_same_top(_pairs(e.hits), _pairs(r.hits), SCORE_TOLERANCE))
        found += len(e.hits)
        assert (e.filter_path, r.filter_path) == (("exact", "exact") if flt else (None, None))
    assert found > N_QUERIES  # the queries do find something
    print(f"{pair.source}: BM25 max abs difference {worst:.2e}")


@pytest.mark.parametrize("method", ["rrf", "dbsf"])
def test_hybrid_fusion(pair: Pair, method: FusionMethod) -> None:
    requests = []
    for q, v in zip(pair.queries, pair.vectors, strict=True):
        requests += [
            SearchRequest(limit=50, vector_name=TEXT_VECTOR, vector=v),
            SearchRequest(limit=50, text=q),
        ]
    edge, remote = pair.both(requests)
    for i in range(0, len(requests), 2):
        fused = [
            fuse(
                [
                    RankedList("dense", _pairs(answers[i].hits)),
                    RankedList("bm25", _pairs(answers[i + 1].hits)),
                ],
                method,
            )[:10]
            for answers in (edge, remote)
        ]
        assert_same_top(fused[0], fused[1], 1e-3)


@pytest.mark.parametrize("filter_name", [None, *FILTERS])
def test_counts_ids_and_facets(pair: Pair, filter_name: str | None) -> None:
    flt = _flt(FILTERS[filter_name]) if filter_name else None
    e, r = pair.edge, pair.remote
    assert e.count(pair.cid, flt) == r.count(pair.cid, flt)
    assert sorted(e.filter_ids(pair.cid, flt)) == sorted(r.filter_ids(pair.cid, flt))
    for key in ("metadata.category", "metadata.tags", "metadata.year"):
        fe, fr = e.facet(pair.cid, key, 5, flt), r.facet(pair.cid, key, 5, flt)
        assert (fe.values, fe.exact, fe.scanned) == (fr.values, fr.exact, fr.scanned), key


def test_stop_words_are_the_embedded_index_ones(tmp_path: Path) -> None:
    """Our English stop word list is exactly what the embedded text index drops, among the
    words it could hold: each listed word finds nothing, each near miss finds its document."""
    near_misses = ["would", "could", "also", "us", "said", "cannot", "every", "shall", "yes"]
    col = make_collection(vectors=False)
    edge = EdgeSearchIndex(tmp_path / "index")
    remote = QdrantSearchIndex(QdrantClient(":memory:"))
    try:
        for ix in (edge, remote):
            ix.ensure_collection(col)
            text = " ".join(sorted(ENGLISH_STOPWORDS)) + " zebra " + " ".join(near_misses)
            ix.upsert(col.collection_id, [point("all", 1, {}, text=text)])
            words = sorted(ENGLISH_STOPWORDS) + near_misses
            answers = ix.search(col.collection_id, [SearchRequest(limit=1, text=w) for w in words])
            found = {w for w, a in zip(words, answers, strict=True) if a.hits}
            assert found == set(near_misses), type(ix).__name__
    finally:
        edge.close()
        remote.close()
