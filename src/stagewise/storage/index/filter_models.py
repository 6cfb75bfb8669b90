"""The classes a compiled filter is made of, one set per Qdrant API.

`qdrant_filter.compile_filter` decides *what* Qdrant evaluates; a `FilterModels` says *how*
it is spelled: `EDGE_MODELS` builds `qdrant_edge` conditions (the embedded shards),
`storage.index.remote_filter.CLIENT_MODELS` builds `qdrant_client.models` ones (a Qdrant
server). One translation, so both transports split every filter the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from qdrant_edge import (
    FieldCondition,
    Filter,
    HasIdCondition,
    IsEmptyCondition,
    IsNullCondition,
    MatchAny,
    MatchPhrase,
    MatchPrefix,
    MatchSubstring,
    MatchText,
    MatchValue,
    RangeDateTime,
    RangeFloat,
)
from qdrant_edge import GeoBoundingBox as QGeoBoundingBox
from qdrant_edge import GeoPoint as QGeoPoint
from qdrant_edge import GeoPolygon as QGeoPolygon
from qdrant_edge import GeoRadius as QGeoRadius

from stagewise.domain.filters import DateTimeBound, GeoPoint


class FilterModels(Protocol):
    """Builds the conditions of one Qdrant API. Conditions are opaque to the compiler."""

    def filter(
        self,
        *,
        must: list[Any] | None = None,
        should: list[Any] | None = None,
        must_not: list[Any] | None = None,
    ) -> Any: ...
    def is_filter(self, condition: Any) -> bool: ...
    def has_ids(self, point_ids: Iterable[str]) -> Any: ...
    def is_empty(self, key: str) -> Any: ...
    def is_null(self, key: str) -> Any: ...
    def match_value(self, key: str, value: str) -> Any: ...
    def match_any(self, key: str, values: Sequence[str]) -> Any: ...
    def match_prefix(self, key: str, prefix: str) -> Any: ...
    def match_substring(self, key: str, text: str) -> Any: ...
    def match_text(self, key: str, text: str) -> Any: ...
    def match_phrase(self, key: str, text: str) -> Any: ...
    # one or two bounds: gt/gte/lt/lte -> value
    def range_float(self, key: str, bounds: dict[str, float]) -> Any: ...
    def range_datetime(self, key: str, op: str, bound: DateTimeBound) -> Any: ...
    def geo_radius(self, key: str, center: GeoPoint, radius_m: float) -> Any: ...
    def geo_bounding_box(self, key: str, top_left: GeoPoint, bottom_right: GeoPoint) -> Any: ...
    def geo_polygon(self, key: str, points: Sequence[GeoPoint]) -> Any: ...


def _edge_point(p: GeoPoint) -> QGeoPoint:
    return QGeoPoint(lon=p.lon, lat=p.lat)


class EdgeFilterModels:
    """qdrant_edge conditions (the embedded shards)."""

    def filter(
        self,
        *,
        must: list[Any] | None = None,
        should: list[Any] | None = None,
        must_not: list[Any] | None = None,
    ) -> Filter:
        # The compiler passes lists; no copies on the embedded hot path.
        return Filter(must, should, must_not)

    def is_filter(self, condition: Any) -> bool:
        return isinstance(condition, Filter)

    def has_ids(self, point_ids: Iterable[str]) -> HasIdCondition:
        return HasIdCondition(set(point_ids))

    def is_empty(self, key: str) -> IsEmptyCondition:
        return IsEmptyCondition(key)

    def is_null(self, key: str) -> IsNullCondition:
        return IsNullCondition(key)

    def match_value(self, key: str, value: str) -> FieldCondition:
        return FieldCondition(key, match=MatchValue(value))

    def match_any(self, key: str, values: Sequence[str]) -> FieldCondition:
        return FieldCondition(key, match=MatchAny(list(values)))

    def match_prefix(self, key: str, prefix: str) -> FieldCondition:
        return FieldCondition(key, match=MatchPrefix(prefix))

    def match_substring(self, key: str, text: str) -> FieldCondition:
        return FieldCondition(key, match=MatchSubstring(text))

    def match_text(self, key: str, text: str) -> FieldCondition:
        return FieldCondition(key, match=MatchText(text))

    def match_phrase(self, key: str, text: str) -> FieldCondition:
        return FieldCondition(key, match=MatchPhrase(text))

    def range_float(self, key: str, bounds: dict[str, float]) -> FieldCondition:
        return FieldCondition(key, range=RangeFloat(**bounds))

    def range_datetime(self, key: str, op: str, bound: DateTimeBound) -> FieldCondition:
        return FieldCondition(key, range=RangeDateTime(**{op: bound.iso}))

    def geo_radius(self, key: str, center: GeoPoint, radius_m: float) -> FieldCondition:
        return FieldCondition(key, geo_radius=QGeoRadius(_edge_point(center), radius_m))

    def geo_bounding_box(
        self, key: str, top_left: GeoPoint, bottom_right: GeoPoint
    ) -> FieldCondition:
        box = QGeoBoundingBox(_edge_point(top_left), _edge_point(bottom_right))
        return FieldCondition(key, geo_bounding_box=box)

    def geo_polygon(self, key: str, points: Sequence[GeoPoint]) -> FieldCondition:
        polygon = QGeoPolygon([_edge_point(p) for p in points])
        return FieldCondition(key, geo_polygon=polygon)


EDGE_MODELS = EdgeFilterModels()
