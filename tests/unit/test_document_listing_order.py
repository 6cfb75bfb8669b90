"""A sorted document listing keeps only the page it returns (a heap), in the order a full
sort of the collection gives: values by `sort_key`, ties and missing values by insertion."""

from __future__ import annotations

import random
from typing import Any

import pytest

from stagewise.domain.records import DocumentRecord
from stagewise.pipeline.docpath import sort_key
from stagewise.services.document_listing import _first_in_order, document_view
from stagewise.storage.payload import get_path


def _docs() -> list[DocumentRecord]:
    rng = random.Random(3)
    values: list[Any] = [None, 1, 1, 2.5, -3, "b", "a", True, [1], 7, 7, 7]
    docs = []
    for seq in rng.sample(range(1, 200), 60):
        meta = {"year": rng.choice(values)} if rng.random() < 0.85 else {}
        docs.append(
            DocumentRecord(
                document_id=f"d{seq}", collection_id="c", namespace_id="n", metadata=meta, seq=seq
            )
        )
    return docs


def _full_sort(docs: list[DocumentRecord], field: str, descending: bool) -> list[str]:
    """What the listing did before: sort everything (stable, by seq first)."""
    docs = sorted(docs, key=lambda d: d.seq)
    present = [d for d in docs if get_path(document_view(d), field) is not None]
    missing = [d for d in docs if get_path(document_view(d), field) is None]
    present.sort(key=lambda d: sort_key(get_path(document_view(d), field)), reverse=descending)
    return [d.document_id for d in present + missing]


@pytest.mark.parametrize("descending", [False, True])
def test_heap_page_equals_the_full_sort(descending: bool) -> None:
    docs = _docs()
    want = _full_sort(docs, "metadata.year", descending)
    for count in (1, 5, 17, 60, 100):
        got = _first_in_order(iter(docs), "metadata.year", descending, count)
        assert [d.document_id for d in got] == want[:count], count
    by_seq = _first_in_order(iter(docs), None, False, 10)
    assert [d.seq for d in by_seq] == sorted(d.seq for d in docs)[:10]
