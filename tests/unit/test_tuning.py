"""stagewise.tuning: the split, the grid, the pick and its tie rule, on synthetic lists."""

from __future__ import annotations

import math

import pytest

from stagewise.pipeline.fusion import RankedList, fuse
from stagewise.tuning import (
    FusionConfig,
    baseline_config,
    fuse_query,
    grid,
    split_queries,
    tune,
)

pytestmark = [pytest.mark.unit]

SOURCES = ("good", "noisy")
QUERIES = [f"q{i}" for i in range(40)]


def synthetic() -> tuple[
    dict[str, dict[str, list[tuple[str, float]]]], dict[str, dict[str, float]]
]:
    """`good` ranks the relevant document 1st and a decoy 10th; `noisy` ranks the decoy 1st and
    the relevant document 30th. rrf k=60 with equal weights puts the decoy first (both lists
    found it near the top); turning `noisy` down to 0.25 puts the relevant document first."""
    runs: dict[str, dict[str, list[tuple[str, float]]]] = {}
    qrels: dict[str, dict[str, float]] = {}
    for q in QUERIES:
        rel, decoy = f"{q}-rel", f"{q}-decoy"
        good = [(rel, 1.0)] + [(f"{q}-o{j}", 0.99 - 0.01 * j) for j in range(8)]
        good += [(decoy, 0.9)] + [(f"{q}-o{j}", 0.99 - 0.01 * j) for j in range(8, 20)]
        noisy = [(decoy, 50.0)] + [(f"{q}-j{j}", 49.0 - j) for j in range(28)] + [(rel, 1.0)]
        runs[q] = {"good": good, "noisy": noisy}
        qrels[q] = {rel: 1.0}
    return runs, qrels


def test_split_is_seeded_half_and_half_and_ignores_input_order() -> None:
    tune_q, test_q = split_queries(QUERIES, seed=3)
    assert len(tune_q) == len(test_q) == 20
    assert set(tune_q).isdisjoint(test_q) and set(tune_q) | set(test_q) == set(QUERIES)
    assert split_queries(list(reversed(QUERIES)), seed=3) == (tune_q, test_q)
    assert split_queries(QUERIES, seed=4)[0] != tune_q
    odd_tune, odd_test = split_queries(QUERIES[:7])
    assert len(odd_tune) + len(odd_test) == 7 and abs(len(odd_tune) - len(odd_test)) == 1


def test_grid_covers_each_method_weight_and_top_k() -> None:
    configs = grid(2, rrf_ks=(10, 60), top_ks=(25, 100), weight_steps=(0.5,))
    # 4 depth pairs x 3 weight pairs x (2 rrf + dbsf + weighted)
    assert len(configs) == 4 * 3 * 4 == len(set(configs))
    assert {c.method for c in configs} == {"rrf", "dbsf", "weighted"}
    assert {c.weights for c in configs} == {(1.0, 1.0), (0.5, 1.0), (1.0, 0.5)}
    assert {c.top_ks for c in configs} == {(25, 25), (25, 100), (100, 25), (100, 100)}
    assert baseline_config(2, 100) in configs


def test_the_known_better_fusion_is_picked_and_generalises() -> None:
    runs, qrels = synthetic()
    result = tune(runs, qrels, SOURCES, default_top_k=100, seed=1)
    assert result.baseline == FusionConfig("rrf", (1.0, 1.0), (100, 100), 60)
    # Baseline: decoy 1/70 + 1/61 beats the relevant 1/61 + 1/90, so it ranks 2nd.
    assert result.baseline_test.ndcg == pytest.approx(1 / math.log2(3))
    assert result.pick != result.baseline
    assert result.pick_tune.ndcg == pytest.approx(1.0)
    assert result.pick_test.ndcg == pytest.approx(1.0)
    assert result.pick_test.mrr == pytest.approx(1.0) and result.pick_test.map == pytest.approx(1.0)
    assert result.test_gain == pytest.approx(1.0 - result.baseline_test.ndcg)
    assert result.top[0] == (result.pick, pytest.approx(1.0))
    assert result.searched == len(grid(2))


def test_an_equal_score_never_displaces_the_baseline() -> None:
    # Both sources agree exactly, so every fusion and depth ranks the same way.
    runs = {q: {s: [(f"{q}-a", 2.0), (f"{q}-b", 1.0)] for s in SOURCES} for q in QUERIES[:10]}
    qrels = {q: {f"{q}-b": 1.0} for q in QUERIES[:10]}
    result = tune(runs, qrels, SOURCES, default_top_k=100)
    assert result.pick == result.baseline and result.test_gain == 0.0
    assert result.pick_test == result.baseline_test


def test_first_of_equal_candidates_wins_and_only_a_strict_gain_moves() -> None:
    runs, qrels = synthetic()
    worse = FusionConfig("rrf", (1.0, 1.0), (100, 100), 10)  # the decoy still first
    first = FusionConfig("rrf", (1.0, 0.25), (100, 100), 60)  # relevant first
    second = FusionConfig("rrf", (1.0, 0.25), (100, 100), 20)  # relevant first too
    result = tune(runs, qrels, SOURCES, configs=[worse, first, second])
    assert result.pick == first and result.searched == 4
    assert [c for c, _ in result.top] == [first, second, result.baseline, worse]


def test_fuse_query_cuts_each_source_to_its_top_k_then_fuses_as_the_stage() -> None:
    lists = {
        "good": [("a", 3.0), ("b", 2.0), ("c", 1.0)],
        "noisy": [("c", 9.0), ("d", 8.0)],
    }
    config = FusionConfig("dbsf", (1.0, 0.5), (2, 1))
    expected = fuse(
        [RankedList("good", lists["good"][:2], 1.0), RankedList("noisy", lists["noisy"][:1], 0.5)],
        "dbsf",
    )
    assert fuse_query(lists, SOURCES, config) == expected
    assert "d" not in {k for k, _ in expected}
    # A query one source returned nothing for: the other list, raw scores as the stage does.
    assert fuse_query({"good": lists["good"]}, SOURCES, config)[:2] != []


def test_tune_refuses_one_source_and_too_few_queries() -> None:
    runs, qrels = synthetic()
    with pytest.raises(ValueError, match="two sources"):
        tune(runs, qrels, ("good",))
    with pytest.raises(ValueError, match="two judged queries"):
        tune(runs, {"q0": qrels["q0"]}, SOURCES)
