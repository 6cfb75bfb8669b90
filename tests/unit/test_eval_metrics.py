"""nDCG@k and Recall@k against values worked out by hand (log2 discounts written out)."""

from __future__ import annotations

import pytest

from stagewise.eval_metrics import dcg, evaluate, ndcg_at_k, recall_at_k

pytestmark = [pytest.mark.unit]

LOG2_3 = 1.584962500721156  # log2(3): the discount at rank 2
LOG2_5 = 2.321928094887362  # log2(5): rank 4


def test_dcg_discounts_rank_i_by_log2_of_i_plus_1() -> None:
    # ranks 1, 2, 3 divide by log2(2) = 1, log2(3), log2(4) = 2
    assert dcg([3, 2, 1]) == pytest.approx(3 + 2 / LOG2_3 + 1 / 2)
    assert dcg([]) == 0


def test_graded_ndcg_uses_the_ideal_order_of_the_qrels() -> None:
    judged = {"a": 3, "b": 2, "c": 1}
    # b (2) at rank 1, an unjudged doc at 2, a (3) at 3, c (1) at 4
    got = 2 / 1 + 0 + 3 / 2 + 1 / LOG2_5  # 3.930677
    ideal = 3 / 1 + 2 / LOG2_3 + 1 / 2  # 4.761860
    assert ndcg_at_k(["b", "x", "a", "c"], judged, 10) == pytest.approx(got / ideal)
    assert ndcg_at_k(["b", "x", "a", "c"], judged, 10) == pytest.approx(0.82545, abs=1e-5)
    assert ndcg_at_k(["a", "b", "c"], judged, 10) == pytest.approx(1.0)


def test_ndcg_cuts_both_the_run_and_the_ideal_at_k() -> None:
    judged = {"a": 1, "b": 1, "c": 1}
    # @2: the run finds a at rank 2 only; the ideal is two relevant docs at ranks 1 and 2.
    assert ndcg_at_k(["x", "a", "b"], judged, 2) == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))
    # A relevant doc judged but never retrieved still counts in the ideal.
    assert ndcg_at_k(["a"], judged, 10) == pytest.approx(1 / (1 + 1 / LOG2_3 + 1 / 2))


def test_duplicates_count_once_and_non_positive_grades_are_not_relevant() -> None:
    judged = {"a": 1, "b": 0, "c": -1}
    assert ndcg_at_k(["a", "a"], {"a": 1, "d": 1}, 10) == pytest.approx(1 / (1 + 1 / LOG2_3))
    assert ndcg_at_k(["b", "c", "a"], judged, 10) == pytest.approx(0.5)  # a at rank 3: 1/2
    assert recall_at_k(["b", "c"], judged, 100) == 0.0
    assert ndcg_at_k(["x"], judged, 10) == 0.0  # relevant judged, none retrieved
    assert ndcg_at_k(["a"], {"a": 0}, 10) is None  # no relevant judgment: no figure
    assert recall_at_k(["a"], {}, 100) is None


def test_recall_at_k_counts_relevant_docs_in_the_top_k() -> None:
    judged = {"a": 3, "b": 2, "c": 1}
    assert recall_at_k(["b", "x", "a", "c"], judged, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["b", "x", "a", "c"], judged, 100) == 1.0
    assert recall_at_k([], judged, 100) == 0.0


def test_evaluate_means_over_queries_with_a_relevant_judgment() -> None:
    qrels = {
        "q1": {"a": 1},  # found at rank 1: nDCG 1, recall 1
        "q2": {"b": 1, "c": 1},  # c at rank 2 only: nDCG (1/log2 3)/(1 + 1/log2 3), recall 1/2
        "q3": {"d": 0},  # nothing relevant: left out of the means
        "q4": {"e": 2},  # not run at all: 0 and 0
    }
    runs = {"q1": ["a", "z"], "q2": ["x", "c"], "q3": ["d"]}
    result = evaluate(runs, qrels, 10, 100)
    assert [s.query_id for s in result.queries] == ["q1", "q2", "q4"]
    q2 = (1 / LOG2_3) / (1 + 1 / LOG2_3)  # 0.386853
    assert result.ndcg == pytest.approx((1 + q2 + 0) / 3)
    assert result.recall == pytest.approx((1 + 0.5 + 0) / 3)
    assert result.queries[2].returned == 0
