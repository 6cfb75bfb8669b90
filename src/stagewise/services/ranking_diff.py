"""How one ranked list differs from another: moved, new and gone hits, by document."""

from __future__ import annotations

from typing import Any

CHANGES = ("up", "down", "same", "new", "gone")


def _key(hit: dict[str, Any]) -> tuple[str, str]:
    # The same document id may live in two collections of one retriever: both make the key.
    return str(hit.get("collection_id") or ""), str(hit.get("document_id") or "")


def _ranks(hits: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, Any]]:
    out: dict[tuple[str, str], tuple[int, Any]] = {}
    for rank, hit in enumerate(hits, start=1):
        out.setdefault(_key(hit), (rank, hit.get("score")))
    return out


def ranking_diff(
    original: list[dict[str, Any]], replayed: list[dict[str, Any]], depth: int
) -> dict[str, Any]:
    """Compare the top `depth` of two ranked lists (1-based ranks).

    A hit in the replayed top `depth` that the original top `depth` lacked is new; one that
    left it is gone. Either may still sit deeper in the other list: its rank there is given,
    so "gone" can read "fell from 3 to 140". `rank_delta` is positive when a hit moved up.
    Rows: the replayed top `depth` in order, then the gone hits by their original rank."""
    before, after = _ranks(original), _ranks(replayed)
    top_before = {k for k, (rank, _) in before.items() if rank <= depth}
    top_after = {k for k, (rank, _) in after.items() if rank <= depth}
    rows: list[dict[str, Any]] = []
    summary = dict.fromkeys(("moved_up", "moved_down", "unchanged", "new", "gone"), 0)

    def row(key: tuple[str, str], change: str) -> dict[str, Any]:
        old_rank, old_score = before.get(key, (None, None))
        new_rank, new_score = after.get(key, (None, None))
        delta = old_rank - new_rank if old_rank is not None and new_rank is not None else None
        return {
            "collection_id": key[0],
            "document_id": key[1],
            "change": change,
            "original_rank": old_rank,
            "replayed_rank": new_rank,
            "rank_delta": delta,
            "original_score": old_score,
            "replayed_score": new_score,
        }

    for key in sorted(top_after, key=lambda k: after[k][0]):
        if key not in top_before:
            change, counter = "new", "new"
        else:
            delta = before[key][0] - after[key][0]
            change, counter = (
                ("up", "moved_up")
                if delta > 0
                else ("down", "moved_down")
                if delta < 0
                else ("same", "unchanged")
            )
        summary[counter] += 1
        rows.append(row(key, change))
    for key in sorted(top_before - top_after, key=lambda k: before[k][0]):
        summary["gone"] += 1
        rows.append(row(key, "gone"))
    return {"depth": depth, "summary": summary, "rows": rows}
