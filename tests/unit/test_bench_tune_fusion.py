"""bench/tune_fusion.py: qrels re-keyed to document ids, and the report of a real tune."""

from __future__ import annotations

import pytest
from bench.quality import EvalSet
from bench.tune_fusion import format_table, qrels_by_document_id, summarise

from stagewise.tuning import tune

pytestmark = [pytest.mark.unit]


def test_qrels_are_keyed_by_document_id_and_unretrieved_judgments_still_count() -> None:
    ev = EvalSet(
        "toy",
        docs=[("1", "a"), ("2", "b"), ("3", "c")],
        queries=[("q1", "x")],
        qrels={"q1": {"1": 2, "3": 1}, "q9": {"2": 1}},
    )
    qrels = qrels_by_document_id(ev, {"doc_a": "1", "doc_b": "2"})
    # Only the queries run; "3" was never retrieved but stays judged (it counts in the IDCG).
    assert qrels == {"q1": {"doc_a": 2.0, "beir:3": 1.0}}


def test_summary_and_table_report_the_pick_against_the_baseline() -> None:
    queries = [f"q{i}" for i in range(6)]
    runs = {
        q: {"bm25": [(f"{q}-x", 9.0), (f"{q}-r", 1.0)], "dense": [(f"{q}-r", 0.9)]} for q in queries
    }
    qrels = {q: {f"{q}-r": 1.0} for q in queries}
    result = tune(runs, qrels, ("bm25", "dense"))
    summary = summarise(result)
    assert summary["baseline"] == "rrf k=60 (bm25 w=1 top_k=100, dense w=1 top_k=100)"
    assert summary["picked_baseline"] is (result.pick == result.baseline)
    assert summary["test_gain_ndcg@10"] == round(result.test_gain, 4)
    row = format_table({"toy": summary}).splitlines()[2]
    assert row.startswith(f"| toy | {result.baseline_test.ndcg:.4f} | {summary['pick']} |")
    assert row.endswith("| not runnable / not runnable |")
