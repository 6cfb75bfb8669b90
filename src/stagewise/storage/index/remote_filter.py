"""qdrant_client spellings of what the embedded layout spells in qdrant_edge: filter
conditions (`CLIENT_MODELS`, for `qdrant_filter.compile_filter`) and payload index schemas
(`client_index_schema`, the counterpart of `qdrant_filter.payload_index_schema`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from qdrant_client import models

from stagewise.domain.filters import DateTimeBound, GeoPoint
from stagewise.storage.index.qdrant_filter import INDEX_KINDS, normalize_index_kind

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _point(p: GeoPoint) -> models.GeoPoint:
    return models.GeoPoint(lon=p.lon, lat=p.lat)


def _field(key: str, **condition: Any) -> models.FieldCondition:
    return models.FieldCondition(key=key, **condition)


class ClientFilterModels:
    """qdrant_client.models conditions (a Qdrant server, or qdrant-client's local mode)."""

    def filter(
        self,
        *,
        must: list[Any] | None = None,
        should: list[Any] | None = None,
        must_not: list[Any] | None = None,
    ) -> models.Filter:
        return models.Filter(must=must, should=should, must_not=must_not)

    def is_filter(self, condition: Any) -> bool:
        return isinstance(condition, models.Filter)

    def has_ids(self, point_ids: Iterable[str]) -> models.HasIdCondition:
        return models.HasIdCondition(has_id=list(point_ids))

    def is_empty(self, key: str) -> models.IsEmptyCondition:
        return models.IsEmptyCondition(is_empty=models.PayloadField(key=key))

    def is_null(self, key: str) -> models.IsNullCondition:
        return models.IsNullCondition(is_null=models.PayloadField(key=key))

    def match_value(self, key: str, value: str) -> models.FieldCondition:
        return _field(key, match=models.MatchValue(value=value))

    def match_any(self, key: str, values: Sequence[str]) -> models.FieldCondition:
        return _field(key, match=models.MatchAny(any=list(values)))

    def match_prefix(self, key: str, prefix: str) -> models.FieldCondition:
        return _field(key, match=models.MatchPrefix(prefix=prefix))

    def match_substring(self, key: str, text: str) -> models.FieldCondition:
        return _field(key, match=models.MatchSubstring(substring=text))

    def match_text(self, key: str, text: str) -> models.FieldCondition:
        return _field(key, match=models.MatchText(text=text))

    def match_phrase(self, key: str, text: str) -> models.FieldCondition:
        return _field(key, match=models.MatchPhrase(phrase=text))

    def range_float(self, key: str, bounds: dict[str, float]) -> models.FieldCondition:
        return _field(key, range=models.Range(**bounds))

    def range_datetime(self, key: str, op: str, bound: DateTimeBound) -> models.FieldCondition:
        # From the exact microseconds, not by re-parsing the text.
        when = _EPOCH + timedelta(microseconds=bound.micros)
        return _field(key, range=models.DatetimeRange(**{op: when}))

    def geo_radius(self, key: str, center: GeoPoint, radius_m: float) -> models.FieldCondition:
        return _field(key, geo_radius=models.GeoRadius(center=_point(center), radius=radius_m))

    def geo_bounding_box(
        self, key: str, top_left: GeoPoint, bottom_right: GeoPoint
    ) -> models.FieldCondition:
        box = models.GeoBoundingBox(top_left=_point(top_left), bottom_right=_point(bottom_right))
        return _field(key, geo_bounding_box=box)

    def geo_polygon(self, key: str, points: Sequence[GeoPoint]) -> models.FieldCondition:
        ring = models.GeoLineString(points=[_point(p) for p in points])
        return _field(key, geo_polygon=models.GeoPolygon(exterior=ring))


CLIENT_MODELS = ClientFilterModels()

_SCHEMAS = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "integer": models.PayloadSchemaType.INTEGER,
    "float": models.PayloadSchemaType.FLOAT,
    "bool": models.PayloadSchemaType.BOOL,
    "geo": models.PayloadSchemaType.GEO,
    "datetime": models.PayloadSchemaType.DATETIME,
}


def client_index_schema(kind: str) -> models.PayloadSchemaType | models.TextIndexParams:
    """`payload_index_schema(kind)` in qdrant_client models: the same text index (word
    tokenizer, lowercase, English Snowball stemmer, no stop words, phrases)."""
    kind = normalize_index_kind(kind)
    if kind == "text":
        return models.TextIndexParams(
            type=models.TextIndexType.TEXT,
            tokenizer=models.TokenizerType.WORD,
            lowercase=True,
            phrase_matching=True,
            stemmer=models.SnowballParams(
                type=models.Snowball.SNOWBALL, language=models.SnowballLanguage.ENGLISH
            ),
        )
    if kind not in _SCHEMAS:
        raise ValueError(f"unknown payload index kind {kind!r}; expected one of {INDEX_KINDS}")
    return _SCHEMAS[kind]
