"""Facet counting shared by the transports: when the engine counts, and the bounded scan
that counts when it cannot (reads never create indexes, docs/architecture.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Final

from stagewise.domain.filters import values_at

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
