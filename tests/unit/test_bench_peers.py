"""The pure parts of bench/peers.py: recall, medians over rounds, the ratio table. Runs without
the peers installed (their imports are lazy)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from bench import peers
from bench.common import REPO_ROOT

pytestmark = [pytest.mark.unit]


def test_importing_the_bench_does_not_import_the_peers() -> None:
    code = (
        "import sys, bench.peers, bench.peers_engines; "
        "print(sorted(m for m in ('lancedb', 'chromadb', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    assert out.stdout.strip() == "[]"


def test_recall_at_k_counts_overlap_and_short_answers() -> None:
    truth = [list(range(10)), list(range(10, 20))]
    got = [list(range(10)), [10, 11, 12, 99]]  # a perfect answer, then a short one with a miss
    assert peers.recall_at_k(got, truth) == pytest.approx((1.0 + 0.3) / 2)
    assert peers.recall_at_k([list(reversed(range(10)))], [list(range(10))]) == 1.0  # order-free
    assert math.isnan(peers.recall_at_k([], []))


def test_recall_at_k_needs_one_answer_per_query() -> None:
    with pytest.raises(ValueError):
        peers.recall_at_k([[1]], [[1], [2]])


def test_median_rounds_skips_missing_figures() -> None:
    rounds = [{"p50_ms": 1.0, "qps_16": None}, {"p50_ms": 3.0, "qps_16": None}, {"p50_ms": 2.0}]
    assert peers.median_rounds(rounds) == {"p50_ms": 2.0, "qps_16": None}


def test_ratio_table_divides_the_subject_by_each_peer() -> None:
    figures = {
        "stagewise": {"p50_ms": 6.0, "qps_16": 100.0, "recall@10": 1.0, "ingest_docs_per_s": None},
        "chroma": {"p50_ms": 12.0, "qps_16": 50.0, "recall@10": 1.0, "ingest_docs_per_s": 10.0},
        "exact": {"p50_ms": 2.0, "qps_16": None, "recall@10": 1.0},
    }
    table = peers.ratio_table(figures)
    assert set(table) == {"vs chroma", "vs exact"}
    assert table["vs chroma"]["p50_ms"] == 0.5
    assert table["vs chroma"]["qps_16"] == 2.0
    assert table["vs chroma"]["ingest_docs_per_s"] is None  # missing on our side
    assert table["vs exact"]["qps_16"] is None  # missing on theirs
    assert table["vs exact"]["p50_ms"] == 3.0
    assert peers.floor_ratios(figures) == {"stagewise": 3.0, "chroma": 6.0, "exact": 1.0}


def test_markdown_has_a_row_per_engine_and_per_peer() -> None:
    figures = {
        "stagewise": {"p50_ms": 6.0, "recall@10": 0.95},
        "lancedb": {"p50_ms": 3.0, "recall@10": 0.5},
        "exact": {"p50_ms": 1.5, "recall@10": 1.0},
    }
    text = peers.markdown(figures, {"stagewise": "Stagewise"})
    lines = text.splitlines()
    assert lines[2].startswith("| Stagewise | - | - | 6.00 |")
    assert lines[2].endswith("| 0.950 | 4.00x |")
    assert "| lancedb | - | - | 2.00 |" in text
    assert "| exact | - | - | 4.00 |" in text


def test_ready_seconds_adds_what_each_engine_waits_for() -> None:
    stagewise = {"ingest": {"seconds": 10.0}, "ready": {"seconds_waited": 5.5}}
    lance = {"ingest": {"seconds": 1.0, "vector_index_seconds": 9.0, "scalar_index_seconds": 0.5}}
    assert peers.ready_seconds("stagewise", stagewise) == 15.5
    assert peers.ready_seconds("lancedb", lance) == 10.5
    assert peers.ready_seconds("lancedb_refine", lance) is None  # the same table: counted once
    assert peers.ready_seconds("exact", {}) is None
