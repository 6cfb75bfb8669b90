"""Fusion: hand-computed values, and the Qdrant engine's own Rrf/Dbsf as the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeVectorParams,
    Fusion,
    Point,
    Prefetch,
    Query,
    QueryBatchRequest,
    QueryRequest,
    TextQuery,
    UpdateOperation,
)

from stagewise.ids import point_id
from stagewise.pipeline.fusion import RankedList, fuse
from stagewise.storage.index.layout import bm25_text_index

pytestmark = [pytest.mark.unit]

A = RankedList("a", [("x", 0.9), ("y", 0.5), ("z", 0.1)])
B = RankedList("b", [("y", 3.0), ("w", 2.0)], weight=0.5)


def test_rrf_by_hand() -> None:
    got = dict(fuse([A, B], "rrf"))
    assert got["y"] == pytest.approx(1 / 62 + 0.5 / 61)
    assert got["x"] == pytest.approx(1 / 61)
    assert got["w"] == pytest.approx(0.5 / 62)
    assert [k for k, _ in fuse([A, B], "rrf")] == ["y", "x", "z", "w"]


def test_weighted_and_max_by_hand() -> None:
    assert dict(fuse([A, B], "weighted"))["y"] == pytest.approx(0.5 + 1.5)
    assert dict(fuse([A, B], "max"))["y"] == pytest.approx(1.5)
    assert dict(fuse([A, B], "max"))["x"] == pytest.approx(0.9)


def test_ties_break_by_key() -> None:
    tie = RankedList("t", [("b", 1.0), ("a", 1.0)])
    assert [k for k, _ in fuse([tie], "weighted")] == ["a", "b"]


WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "omicron",
]


@pytest.fixture(scope="module")
def shard(tmp_path_factory: pytest.TempPathFactory) -> EdgeShard:
    path: Path = tmp_path_factory.mktemp("fusion") / "shard"
    s = EdgeShard.create(str(path), EdgeConfig(vectors={"v": EdgeVectorParams(8, Distance.Cosine)}))
    s.update(UpdateOperation.create_field_index("_text", bm25_text_index()))
    rng = np.random.default_rng(3)
    points = []
    for i in range(300):
        text = " ".join(rng.choice(WORDS, size=6))
        points.append(
            Point(
                point_id(f"d{i}"),
                {"v": rng.normal(size=8).tolist()},
                {"document_id": f"d{i}", "_text": text},
            )
        )
    s.update(UpdateOperation.upsert_points(points))
    return s


# The engine counts ranks from 0 (1 / (k + rank0)); ours count from 1 (1 / (60 + rank)), as the
# contract says. So the engine's k=61 is our k=60.
@pytest.mark.parametrize(("method", "engine"), [("rrf", Fusion.Rrf(k=61)), ("dbsf", Fusion.Dbsf())])
def test_matches_the_engine(shard: EdgeShard, method: str, engine: object) -> None:
    rng = np.random.default_rng(11)
    for _ in range(10):
        vector = rng.normal(size=8).tolist()
        text = " ".join(rng.choice(WORDS, size=2))
        dense_q = Query.Nearest(vector, using="v")
        text_q = TextQuery("_text", text)
        dense, lexical = shard.query_batch(
            QueryBatchRequest(
                [
                    QueryRequest(limit=30, query=dense_q, with_payload=True),
                    QueryRequest(limit=30, query=text_q, with_payload=True),
                ]
            )
        )
        lists = [
            RankedList(name, [(p.payload["document_id"], p.score) for p in hits])
            for name, hits in (("dense", dense), ("bm25", lexical))
        ]
        ours = fuse(lists, method)  # type: ignore[arg-type]
        theirs = shard.query(
            QueryRequest(
                limit=60,
                query=engine,
                with_payload=True,
                prefetches=[Prefetch(limit=30, query=dense_q), Prefetch(limit=30, query=text_q)],
            )
        )
        engine_scores = {p.payload["document_id"]: p.score for p in theirs}
        assert set(engine_scores) == {k for k, _ in ours}
        for key, score in ours:
            assert engine_scores[key] == pytest.approx(score, rel=1e-4, abs=1e-6)
