"""The ranking diff on hand-made lists, its expected rows worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from stagewise.services.ranking_diff import ranking_diff

pytestmark = [pytest.mark.unit]


def hits(*ids: str, collection: str = "col_a") -> list[dict[str, Any]]:
    return [
        {"document_id": d, "collection_id": collection, "score": 1.0 - i / 10}
        for i, d in enumerate(ids)
    ]


def test_moves_new_and_gone_within_the_depth() -> None:
    before = hits("a", "b", "c", "d", "e")
    after = hits("c", "a", "x", "b", "e", "d")
    diff = ranking_diff(before, after, depth=4)
    table = [
        (r["document_id"], r["change"], r["original_rank"], r["replayed_rank"], r["rank_delta"])
        for r in diff["rows"]
    ]
    assert table == [
        ("c", "up", 3, 1, 2),
        ("a", "down", 1, 2, -1),
        ("x", "new", None, 3, None),
        ("b", "down", 2, 4, -2),
        # d was 4th, now 6th: out of the top 4, its deeper rank still shown
        ("d", "gone", 4, 6, -2),
    ]
    assert diff["summary"] == {"moved_up": 1, "moved_down": 2, "unchanged": 0, "new": 1, "gone": 1}
    assert diff["rows"][0]["original_score"] == pytest.approx(0.8)
    assert diff["rows"][0]["replayed_score"] == pytest.approx(1.0)


def test_a_hit_entering_the_depth_from_below_is_new_with_its_old_rank() -> None:
    diff = ranking_diff(hits("a", "b", "c"), hits("c", "a", "b"), depth=2)
    assert [(r["document_id"], r["change"], r["original_rank"]) for r in diff["rows"]] == [
        ("c", "new", 3),
        ("a", "down", 1),
        ("b", "gone", 2),
    ]


def test_same_id_in_two_collections_are_two_hits() -> None:
    before = hits("a", collection="col_a") + hits("a", collection="col_b")
    after = list(reversed(before))
    diff = ranking_diff(before, after, depth=10)
    assert [(r["collection_id"], r["change"], r["rank_delta"]) for r in diff["rows"]] == [
        ("col_b", "up", 1),
        ("col_a", "down", -1),
    ]


def test_identical_and_empty_lists() -> None:
    same = ranking_diff(hits("a", "b"), hits("a", "b"), depth=100)
    assert same["summary"] == {"moved_up": 0, "moved_down": 0, "unchanged": 2, "new": 0, "gone": 0}
    gone = ranking_diff(hits("a"), [], depth=5)
    assert [(r["change"], r["replayed_rank"]) for r in gone["rows"]] == [("gone", None)]
