"""Facet counting shared by the transports: when the engine counts, and the bounded scan
that counts when it cannot (reads never create indexes, docs/architecture.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from stagewise.domain.filters import values_at
from stagewise.storage.protocols import FacetCounts

FACET_SCAN_LIMIT: Final = 10_000  # points a facet over an unindexed field may scan
FACET_KINDS: Final = frozenset({"keyword", "integer", "bool"})  # index kinds engines facet on


def _facetable(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, float)


def count_values(
    payloads: Iterable[Mapping[str, Any]], key: str, limit: int
) -> list[tuple[Any, int]]:
    """(value, count) of `key` over some payloads, most frequent first (ties by value text).
    Each point counts once per distinct value, as the engines' facets count."""
    counts: Counter[Any] = Counter()
    for payload in payloads:
        seen = {(type(v), v) for v in values_at(payload, key) if _facetable(v)}
        counts.update(v for _, v in seen)
    return sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]


def engine_facet(hits: Iterable[Any]) -> FacetCounts:
    """The engine's exact facet (an index of a FACET_KINDS kind), from its value hits."""
    return FacetCounts([(hit.value, int(hit.count)) for hit in hits], True, None)


def scanned_facet(records: Sequence[Any], more: Any, key: str, limit: int) -> FacetCounts:
    """The facet counted over a scroll of at most FACET_SCAN_LIMIT points; `more`, the
    scroll's next offset, is None when it saw every matching point."""
    ranked = count_values((rec.payload or {} for rec in records), key, limit)
    return FacetCounts(ranked, more is None, len(records))
