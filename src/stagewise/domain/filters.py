"""Mixpeek LogicalOperator filters: a parsed AST, the parser, and the reference evaluator.

The wire format (what `attribute_filter` stages and `filters` request fields carry)::

    {"AND": [...], "OR": [...], "NOT": [...], "case_sensitive": false}   # a group
    {"field": "metadata.category", "operator": "eq", "value": "news"}    # a leaf
    {"metadata.title": "x"}                                              # shorthand eq

Groups nest freely; several keys in one group are AND-ed; ``NOT`` means none of its children
match. Any object with a ``field`` key is a leaf (the SDK adds a stray ``case_sensitive`` key
to leaves; it is accepted and ignored). A leaf value may be ``{"type": "dynamic", "field":
"inputs.user_id"}``, resolved from the request inputs when parsing.

`matches` is the reference semantics. `stagewise.storage.index.qdrant_filter` compiles a
tree to a Qdrant filter plus a residual evaluated here, and the property suite checks the two
agree document for document. The semantics therefore follow Qdrant's own wherever Qdrant can
evaluate an operator:

* **Paths.** ``a.b.c`` walks nested objects and does not descend into arrays; ``a[].b``
  walks into every element of the array ``a`` (Qdrant's JSON-path syntax). Keys containing
  characters other than letters, digits, ``_`` and ``-`` are written quoted: ``a."b c"``.
* **Arrays.** A comparison matches when *any* value matches: a list field holding
  ``["x", "y"]`` is ``eq "x"``, ``in ["y", "z"]`` and ``starts_with "x"``. Only the outer list
  is expanded (a nested list is one opaque value, as in Qdrant).
* **Missing fields.** Every positive comparison is false on a missing field, on ``null`` and
  on ``[]``. ``ne``/``nin`` are exact negations of ``eq``/``in`` (Qdrant's ``must_not``), so
  they are *true* on a missing field and false on a list holding the value.
* **exists / is_null.** ``exists``: the field is present and neither ``null`` nor ``[]``
  (``NOT is_empty`` in Qdrant; ``[null]`` exists). ``is_null``: the field is present and is
  ``null`` or an array containing ``null`` (Qdrant's ``is_null``); a missing field is *not*
  null. Use ``{"NOT": [{"field": f, "operator": "exists"}]}`` for "missing or null".
  ``value: false`` negates either operator; ``eq null`` means ``is_null`` and ``ne null``
  means ``NOT is_null``.
* **Types.** Equality is type-strict: ``"5"`` never equals ``5`` and ``true`` never equals
  ``1``. Numbers compare numerically (``5 == 5.0``), as IEEE doubles. ``gt/gte/lt/lte``
  take a number or a date-time string: a number compares against numeric values only, a
  date-time against string values that parse as date-times (RFC 3339 recommended; naive
  times are UTC; the formats Qdrant accepts are mirrored by `parse_datetime`).
* **Case.** ``eq/ne/in/nin/contains/starts_with/ends_with/regex`` are case-sensitive unless
  the evaluator (or compiler) is called with ``case_insensitive=True`` (the
  ``attribute_filter`` stage's parameter); the group-level ``case_sensitive`` key of the wire
  format is accepted and ignored, because the SDK always sends its default. ``text``,
  ``phrase`` and ``words`` are always case-insensitive. Case folding is ``str.lower()``.
* **contains.** On a string value: substring. On a list value: the list has an element
  equal to the value. With a non-string argument it is plain (any-element) equality.
* **text** is a case-insensitive substring test. **words**: every word of the query occurs
  in the field as a whole word. **phrase**: the query's words occur consecutively within one
  string value. Both analyse text like the Qdrant full-text index recommended for them (word
  tokenizer splitting on every non-alphanumeric character, lowercase, English Snowball
  stemmer, no stop words), so ``words "running dogs"`` matches ``"the dog runs"``. For
  ``words`` the words of all the strings of a list field are pooled (as Qdrant's index does);
  ``phrase`` must occur within a single string.
* **Geo.** The field holds ``{"lat": .., "lon": ..}`` (or a list of such points; invalid
  points are ignored). ``geo_radius`` uses the haversine distance on a sphere of radius
  6371008.8 m and is strict (``distance < radius_m``); ``geo_bounding_box`` is strict on
  every edge and wraps the antimeridian when ``top_left.lon > bottom_right.lon``;
  ``geo_polygon`` is a planar lon/lat polygon (exterior ring only), boundary excluded.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeAlias, TypeGuard, cast, get_args

import snowballstemmer  # type: ignore[import-untyped]

from stagewise.errors import ValidationFailed

Operator = Literal[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "nin",
    "contains",
    "starts_with",
    "ends_with",
    "regex",
    "exists",
    "is_null",
    "text",
    "phrase",
    "words",
    "geo_radius",
    "geo_bounding_box",
    "geo_polygon",
]
OPERATORS: Final[tuple[str, ...]] = get_args(Operator)
RANGE_OPERATORS: Final = frozenset({"gt", "gte", "lt", "lte"})
STRING_OPERATORS: Final = frozenset({"starts_with", "ends_with", "regex", "text"})
TEXT_OPERATORS: Final = frozenset({"phrase", "words"})
GEO_OPERATORS: Final = frozenset({"geo_radius", "geo_bounding_box", "geo_polygon"})

GROUP_KEYS: Final = ("AND", "OR", "NOT")
MAX_REGEX_LENGTH: Final = 1000
EARTH_RADIUS_M: Final = 6371008.8  # the `geo` crate's mean radius, used by Qdrant

Scalar: TypeAlias = str | int | float | bool


@dataclass(frozen=True, slots=True)
class GeoPoint:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class GeoRadius:
    center: GeoPoint
    radius_m: float


@dataclass(frozen=True, slots=True)
class GeoBoundingBox:
    top_left: GeoPoint
    bottom_right: GeoPoint


@dataclass(frozen=True, slots=True)
class GeoPolygon:
    """The exterior ring, closed: ``points[0] == points[-1]``, at least four points."""

    points: tuple[GeoPoint, ...]


@dataclass(frozen=True, slots=True)
class DateTimeBound:
    """A date-time range bound: normalised RFC 3339 text (UTC, microseconds) and its value."""

    iso: str
    micros: int


LeafValue: TypeAlias = (
    Scalar | tuple[Scalar, ...] | DateTimeBound | GeoRadius | GeoBoundingBox | GeoPolygon | None
)


@dataclass(frozen=True, slots=True)
class Leaf:
    """One comparison. `value` is normalised by `parse_filter`:

    eq/ne/contains: a scalar; in/nin: a tuple of scalars; gt/gte/lt/lte: a number or a
    `DateTimeBound`; starts_with/ends_with/regex/text/phrase/words: a string;
    exists/is_null: None; geo_*: a `GeoRadius`/`GeoBoundingBox`/`GeoPolygon`.
    """

    field: str
    operator: Operator
    value: LeafValue = None


@dataclass(frozen=True, slots=True)
class And:
    """All children match. ``And(())`` is true."""

    children: tuple[FilterNode, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child matches. ``Or(())`` is false."""

    children: tuple[FilterNode, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: FilterNode


FilterNode: TypeAlias = Leaf | And | Or | Not


# ---------------------------------------------------------------------------------------------
# paths


@dataclass(frozen=True, slots=True)
class _Segment:
    key: str
    expand: bool  # `key[]`: walk into the elements of an array


_SEGMENT_RE = re.compile(r'(?:"(?P<quoted>[^"]+)"|(?P<bare>[\w-]+))(?P<expand>\[\])?')


@functools.lru_cache(maxsize=4096)
def parse_path(path: str) -> tuple[_Segment, ...] | None:
    """Split a Qdrant-style JSON path into segments; None when it is not a valid path."""
    segments: list[_Segment] = []
    pos = 0
    while True:
        m = _SEGMENT_RE.match(path, pos)
        if m is None:
            return None
        key = m.group("quoted") if m.group("quoted") is not None else m.group("bare")
        segments.append(_Segment(key, m.group("expand") is not None))
        pos = m.end()
        if pos == len(path):
            return tuple(segments)
        if path[pos] != ".":
            return None
        pos += 1


def _resolve(payload: Mapping[str, Any], field: str) -> list[Any]:
    """The values stored at `field` (before the final array expansion)."""
    segments = parse_path(field)
    if segments is None:
        return []
    current: list[Any] = [payload]
    for seg in segments:
        found: list[Any] = []
        for obj in current:
            if isinstance(obj, Mapping) and seg.key in obj:
                value = obj[seg.key]
                if seg.expand:
                    if isinstance(value, list):
                        found.extend(value)
                else:
                    found.append(value)
        current = found
    return current


def _expand(values: Iterable[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from value
        else:
            yield value


def values_at(payload: Mapping[str, Any], field: str) -> list[Any]:
    """The values a condition on `field` compares: the field's values, one array level
    expanded (what Qdrant's payload indexes and facets count)."""
    return list(_expand(_resolve(payload, field)))


# ---------------------------------------------------------------------------------------------
# text analysis (mirrors the recommended Qdrant full-text index)

# Characters Rust's `char::is_alphanumeric` (and so Qdrant's word tokenizer) accepts beyond
# `str.isalnum()`: Other_Alphabetic marks (Indic vowel signs, Hebrew points, ...), circled
# letters, and letters newer than Python's Unicode database. Hex code points and ranges.
_EXTRA_ALNUM = """
345 363-36F 5B0-5BD 5BF 5C1-5C2 5C4-5C5 5C7 610-61A 64B-657 659-65F 670 6D6-6DC 6E1-6E4
6E7-6E8 6ED 711 730-73F 7A6-7B0 816-817 81B-823 825-827 829-82C 88F 897 8D4-8DF 8E3-8E9
8F0-903 93A-93B 93E-94C 94E-94F 955-957 962-963 981-983 9BE-9C4 9C7-9C8 9CB-9CC 9D7
9E2-9E3 A01-A03 A3E-A42 A47-A48 A4B-A4C A51 A70-A71 A75 A81-A83 ABE-AC5 AC7-AC9 ACB-ACC
AE2-AE3 AFA-AFC B01-B03 B3E-B44 B47-B48 B4B-B4C B56-B57 B62-B63 B82 BBE-BC2 BC6-BC8
BCA-BCC BD7 C00-C04 C3E-C44 C46-C48 C4A-C4C C55-C56 C5C C62-C63 C81-C83 CBE-CC4 CC6-CC8
CCA-CCC CD5-CD6 CDC CE2-CE3 CF3 D00-D03 D3E-D44 D46-D48 D4A-D4C D57 D62-D63 D81-D83
DCF-DD4 DD6 DD8-DDF DF2-DF3 E31 E34-E3A E4D EB1 EB4-EB9 EBB-EBC ECD F71-F83 F8D-F97
F99-FBC 102B-1036 1038 103B-103E 1056-1059 105E-1060 1062-1064 1067-106D 1071-1074
1082-108D 108F 109A-109D 1712-1713 1732-1733 1752-1753 1772-1773 17B6-17C8 1885-1886 18A9
1920-192B 1930-1938 1A17-1A1B 1A55-1A5E 1A61-1A74 1ABF-1AC0 1ACC-1ACE 1B00-1B04 1B35-1B43
1B80-1B82 1BA1-1BA9 1BAC-1BAD 1BE7-1BF1 1C24-1C36 1C89-1C8A 1DD3-1DF4 24B6-24E9 2DE0-2DFF
A674-A67B A69E-A69F A7CB-A7CF A7D2 A7D4 A7DA-A7DC A7F1 A802 A80B A823-A827 A880-A881
A8B4-A8C3 A8C5 A8FF A926-A92A A947-A952 A980-A983 A9B4-A9BF A9E5 AA29-AA36 AA43 AA4C-AA4D
AA7B-AA7D AAB0 AAB2-AAB4 AAB7-AAB8 AABE AAEB-AAEF AAF5 ABE3-ABEA FB1E 10376-1037A
105C0-105F3 10940-10959 10A01-10A03 10A05-10A06 10A0C-10A0F 10D24-10D27 10D40-10D65 10D69
10D6F-10D85 10EAB-10EAC 10EC2-10EC7 10EFA-10EFC 11000-11002 11038-11045 11073-11074
11080-11082 110B0-110B8 110C2 11100-11102 11127-11132 11145-11146 11180-11182 111B3-111BF
111CE-111CF 1122C-11234 11237 1123E-11241 112DF-112E8 11300-11303 1133E-11344 11347-11348
1134B-1134C 11357 11362-11363 11380-11389 1138B 1138E 11390-113B5 113B7-113C0 113C2 113C5
113C7-113CA 113CC-113CD 113D1 113D3 11435-11441 11443-11445 114B0-114C1 115AF-115B5
115B8-115BE 115DC-115DD 11630-1163E 11640 116AB-116B5 116D0-116E3 1171D-1172A 1182C-11838
11930-11935 11937-11938 1193B-1193C 11940 11942 119D1-119D7 119DA-119DF 119E4 11A01-11A0A
11A35-11A39 11A3B-11A3E 11A51-11A5B 11A8A-11A97 11B60-11B67 11BC0-11BE0 11BF0-11BF9
11C2F-11C36 11C38-11C3E 11C92-11CA7 11CA9-11CB6 11D31-11D36 11D3A 11D3C-11D3D 11D3F-11D41
11D43 11D47 11D8A-11D8E 11D90-11D91 11D93-11D96 11DB0-11DDB 11DE0-11DE9 11EF3-11EF6
11F00-11F10 11F12-11F3A 11F3E-11F40 11F50-11F59 1342F 13441-13446 13460-143FA 16100-1612E
16130-16139 16D40-16D6C 16D70-16D79 16EA0-16EB8 16EBB-16ED3 16F4F 16F51-16F87 16F8F-16F92
16FF0-16FF6 187F8-187FF 18CFF 18D09-18D1E 18D80-18DF2 1B132 1B155 1BC9E 1CCF0-1CCF9
1D2C0-1D2D3 1DF25-1DF2A 1E000-1E006 1E008-1E018 1E01B-1E021 1E023-1E024 1E026-1E02A
1E030-1E06D 1E08F 1E4D0-1E4EB 1E4F0-1E4F9 1E5D0-1E5ED 1E5F0-1E5FA 1E6C0-1E6DE 1E6E0-1E6F5
1E6FE-1E6FF 1E947 1F130-1F149 1F150-1F169 1F170-1F189 2B739-2B73F 2CEA2-2CEAD 2EBF0-2EE5D
31350-33479
"""


def _char_class(ranges: str) -> str:
    out = []
    for item in ranges.split():
        lo, _, hi = item.partition("-")
        out.append(re.escape(chr(int(lo, 16))))
        if hi:
            out.append("-" + re.escape(chr(int(hi, 16))))
    return "".join(out)


# runs of alphanumeric characters, as Qdrant's word tokenizer splits text
_WORD_RE = re.compile(r"(?:[^\W_]|[" + _char_class(_EXTRA_ALNUM) + r"])+")
_stem_lock = threading.Lock()
_stemmer = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    with _stem_lock:  # snowballstemmer objects keep per-call state
        return cast(str, _stemmer.stemWord(word))


@functools.lru_cache(maxsize=8192)
def analyze_text(text: str) -> tuple[str, ...]:
    """Tokens as the recommended Qdrant text index sees them: alphanumeric runs, lowercased,
    English-Snowball stemmed. (Qdrant uses rust-stemmers, which matches snowballstemmer 2.x;
    snowballstemmer 3.x stems a few words such as "added" or "biology" differently.)"""
    return tuple(_stem(token.lower()) for token in _WORD_RE.findall(text))


def _contains_run(tokens: Sequence[str], run: Sequence[str]) -> bool:
    n = len(run)
    return any(tuple(tokens[i : i + n]) == tuple(run) for i in range(len(tokens) - n + 1))


# ---------------------------------------------------------------------------------------------
# date-times (mirrors Qdrant's DateTimePayloadType parsing)

_DATETIME_RE = re.compile(
    r"\s*\+?(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:(?P<sep>[Tt ])\s*(?P<h>\d{1,2}):(?P<mi>\d{1,2})"
    r"(?::(?P<s>\d{1,2})(?:\.(?P<f>\d+))?"
    r"(?:\s*(?P<tz>[Zz]|UTC|[+-]\d{2}(?::?\d{2})?)\s*)?)?)?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=65536)
def parse_datetime(text: str) -> int | None:
    """Microseconds since the epoch (UTC), or None when `text` is not a date-time.

    Accepts what Qdrant accepts for payload and range values: RFC 3339 (``T``, ``t`` or a
    space between date and time, ``Z``/``z``/``UTC``/``+HH:MM``/``+HHMM``/``+HH`` offsets),
    naive ``YYYY-MM-DD[ T]HH:MM[:SS[.frac]]`` and ``YYYY-MM-DD``; naive values are UTC and
    fractions beyond microseconds are truncated.
    """
    m = _DATETIME_RE.fullmatch(text)
    if m is None:
        return None
    g = m.groupdict()
    tz = g["tz"]
    if g["sep"] == "t" and not tz:
        return None  # lowercase "t" is RFC 3339 only
    try:
        second = int(g["s"] or 0)
        leap = second == 60
        value = datetime(
            int(g["y"]),
            int(g["mo"]),
            int(g["d"]),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            59 if leap else second,
            int((g["f"] or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if leap:
        value += timedelta(seconds=1)
    if tz and tz not in ("Z", "z", "UTC"):
        digits = tz[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        value -= offset if tz[0] == "+" else -offset
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _datetime_bound(micros: int) -> DateTimeBound:
    value = _EPOCH + timedelta(microseconds=micros)
    return DateTimeBound(value.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), micros)


# ---------------------------------------------------------------------------------------------
# geo


def _as_geo_point(value: Any) -> GeoPoint | None:
    """A payload value as a geo point, or None if it is not a valid one (Qdrant ignores it)."""
    if not isinstance(value, Mapping):
        return None
    lat, lon = value.get("lat"), value.get("lon")
    if not (_is_number(lat) and _is_number(lon)):
        return None
    lat_f, lon_f = float(lat), float(lon)
    if not (-90.0 <= lat_f <= 90.0 and -180.0 <= lon_f <= 180.0):
        return None
    return GeoPoint(lat_f, lon_f)


def haversine_m(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance in metres, computed as the `geo` crate (and so Qdrant) does."""
    theta1 = math.radians(a.lat)
    theta2 = math.radians(b.lat)
    delta_theta = math.radians(b.lat - a.lat)
    delta_lambda = math.radians(b.lon - a.lon)
    h = (
        math.sin(delta_theta / 2.0) ** 2
        + math.cos(theta1) * math.cos(theta2) * math.sin(delta_lambda / 2.0) ** 2
    )
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def _in_box(box: GeoBoundingBox, p: GeoPoint) -> bool:
    tl, br = box.top_left, box.bottom_right
    crosses_antimeridian = tl.lon > br.lon
    lon_ok = (p.lon > tl.lon or p.lon < br.lon) if crosses_antimeridian else tl.lon < p.lon < br.lon
    return lon_ok and br.lat < p.lat < tl.lat


def _on_segment(p: GeoPoint, a: GeoPoint, b: GeoPoint) -> bool:
    cross = (b.lon - a.lon) * (p.lat - a.lat) - (b.lat - a.lat) * (p.lon - a.lon)
    if cross != 0.0:
        return False
    return min(a.lon, b.lon) <= p.lon <= max(a.lon, b.lon) and min(a.lat, b.lat) <= p.lat <= max(
        a.lat, b.lat
    )


def _in_polygon(poly: GeoPolygon, p: GeoPoint) -> bool:
    """Planar point-in-polygon (x = lon, y = lat); points on the boundary are outside."""
    pts = poly.points
    inside = False
    for a, b in itertools.pairwise(pts):
        if _on_segment(p, a, b):
            return False
        if (a.lat > p.lat) != (b.lat > p.lat):
            x = a.lon + (p.lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat)
            if p.lon < x:
                inside = not inside
    return inside


# ---------------------------------------------------------------------------------------------
# evaluation


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fold(text: str, case_insensitive: bool) -> str:
    return text.lower() if case_insensitive else text


def _scalar_eq(stored: Any, wanted: Scalar, case_insensitive: bool) -> bool:
    if isinstance(wanted, bool):
        return isinstance(stored, bool) and stored is wanted
    if isinstance(wanted, str):
        if not isinstance(stored, str):
            return False
        return stored == wanted or (case_insensitive and stored.lower() == wanted.lower())
    return _is_number(stored) and float(stored) == float(wanted)


def _range_ok(op: str, stored: float | int, bound: float | int) -> bool:
    if op == "gt":
        return stored > bound
    if op == "gte":
        return stored >= bound
    if op == "lt":
        return stored < bound
    return stored <= bound


@functools.lru_cache(maxsize=1024)
def _compiled_regex(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE if case_insensitive else 0)


def _is_empty(resolved: list[Any]) -> bool:
    return all(v is None or (isinstance(v, list) and not v) for v in resolved)


def _leaf_matches(leaf: Leaf, payload: Mapping[str, Any], ci: bool) -> bool:
    op, value = leaf.operator, leaf.value
    resolved = _resolve(payload, leaf.field)
    if op == "exists":
        return not _is_empty(resolved)
    if op == "is_null":
        return any(v is None for v in _expand(resolved))
    if op == "ne":
        return not _leaf_matches(Leaf(leaf.field, "eq", value), payload, ci)
    if op == "nin":
        return not _leaf_matches(Leaf(leaf.field, "in", value), payload, ci)
    if op == "contains" and isinstance(value, str):
        wanted = _fold(value, ci)
        for v in resolved:
            if isinstance(v, str) and wanted in _fold(v, ci):
                return True
            if isinstance(v, list) and any(_scalar_eq(e, value, ci) for e in v):
                return True
        return False
    if op == "words":
        assert isinstance(value, str)
        pooled: set[str] = set()
        for v in _expand(resolved):
            if isinstance(v, str):
                pooled.update(analyze_text(v))
        return set(analyze_text(value)) <= pooled

    values = _expand(resolved)
    if op in ("eq", "contains"):
        assert isinstance(value, str | int | float | bool)
        return any(_scalar_eq(v, value, ci) for v in values)
    if op == "in":
        assert isinstance(value, tuple)
        return any(_scalar_eq(v, w, ci) for v in values for w in value)
    if op in RANGE_OPERATORS:
        if isinstance(value, DateTimeBound):
            for v in values:
                micros = parse_datetime(v) if isinstance(v, str) else None
                if micros is not None and _range_ok(op, micros, value.micros):
                    return True
            return False
        assert _is_number(value)
        bound = float(value)
        return any(_is_number(v) and _range_ok(op, float(v), bound) for v in values)
    if op in GEO_OPERATORS:
        for v in values:
            point = _as_geo_point(v)
            if point is None:
                continue
            if isinstance(value, GeoRadius):
                if haversine_m(value.center, point) < value.radius_m:
                    return True
            elif isinstance(value, GeoBoundingBox):
                if _in_box(value, point):
                    return True
            elif isinstance(value, GeoPolygon) and _in_polygon(value, point):
                return True
        return False

    assert isinstance(value, str)
    strings = [v for v in values if isinstance(v, str)]
    if op == "starts_with":
        return any(_fold(s, ci).startswith(_fold(value, ci)) for s in strings)
    if op == "ends_with":
        return any(_fold(s, ci).endswith(_fold(value, ci)) for s in strings)
    if op == "regex":
        pattern = _compiled_regex(value, ci)
        return any(pattern.search(s) is not None for s in strings)
    if op == "text":
        return any(value.lower() in s.lower() for s in strings)
    if op == "phrase":
        run = analyze_text(value)
        return any(_contains_run(analyze_text(s), run) for s in strings)
    raise AssertionError(f"unhandled operator {op!r}")  # pragma: no cover


def matches(
    node: FilterNode, payload: Mapping[str, Any], *, case_insensitive: bool = False
) -> bool:
    """Whether a stored payload satisfies the filter: the reference semantics (module doc)."""
    if isinstance(node, Leaf):
        return _leaf_matches(node, payload, case_insensitive)
    if isinstance(node, And):
        return all(matches(c, payload, case_insensitive=case_insensitive) for c in node.children)
    if isinstance(node, Or):
        return any(matches(c, payload, case_insensitive=case_insensitive) for c in node.children)
    return not matches(node.child, payload, case_insensitive=case_insensitive)


# ---------------------------------------------------------------------------------------------
# construction helpers


def combine_and(*nodes: FilterNode | None) -> FilterNode | None:
    """AND the given filters together, dropping Nones and flattening nested ANDs."""
    children: list[FilterNode] = []
    for node in nodes:
        if node is None:
            continue
        if isinstance(node, And):
            children.extend(node.children)
        else:
            children.append(node)
    if not children:
        return None
    if len(children) == 1:
        return children[0]
    return And(tuple(children))


def _combine_or(nodes: Sequence[FilterNode]) -> FilterNode:
    children: list[FilterNode] = []
    for node in nodes:
        children.extend(node.children if isinstance(node, Or) else (node,))
    return children[0] if len(children) == 1 else Or(tuple(children))


def fields_of(node: FilterNode | None) -> set[str]:
    """Every field path the filter reads."""
    if node is None:
        return set()
    if isinstance(node, Leaf):
        return {node.field}
    if isinstance(node, Not):
        return fields_of(node.child)
    out: set[str] = set()
    for child in node.children:
        out |= fields_of(child)
    return out


def iter_leaves(node: FilterNode | None) -> Iterator[Leaf]:
    if node is None:
        return
    if isinstance(node, Leaf):
        yield node
    elif isinstance(node, Not):
        yield from iter_leaves(node.child)
    else:
        for child in node.children:
            yield from iter_leaves(child)


# ---------------------------------------------------------------------------------------------
# parsing

_LEAF_KEYS: Final = frozenset({"field", "operator", "value", "case_sensitive"})
_OPERATOR_LIST: Final = ", ".join(OPERATORS)


def _fail(message: str, where: str, **details: Any) -> ValidationFailed:
    return ValidationFailed(
        f"Invalid filter at {where}: {message}", code="invalid_filter", **details
    )


def _is_dynamic(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("type") == "dynamic" and "field" in value


def _resolve_dynamic(value: Any, inputs: Mapping[str, Any] | None, where: str) -> Any:
    if isinstance(value, list):
        return [_resolve_dynamic(v, inputs, where) for v in value]
    if not _is_dynamic(value):
        return value
    ref = value["field"]
    if not isinstance(ref, str) or not ref:
        raise _fail("a dynamic value needs a 'field' string such as 'inputs.user_id'", where)
    path = ref[len("inputs.") :] if ref.startswith("inputs.") else ref
    current: Any = inputs
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            raise ValidationFailed(
                f"Filter at {where} refers to input '{ref}', which the request does not provide",
                code="filter_input_missing",
                input=ref,
                location=where,
            )
        current = current[part]
    return current


def _check_scalar(value: Any, field: str, op: str, where: str) -> Scalar:
    if isinstance(value, str | bool):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(f"'{op}' on field '{field}' needs a finite number", where, field=field)
        return value
    raise _fail(
        f"'{op}' on field '{field}' needs a string, number or boolean value, "
        f"got {type(value).__name__}"
        + (" (use 'in' for a list)" if isinstance(value, list) else ""),
        where,
        field=field,
        operator=op,
    )


def _check_string(value: Any, field: str, op: str, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(
            f"'{op}' on field '{field}' needs a string value, got {type(value).__name__}",
            where,
            field=field,
            operator=op,
        )
    return value


def _geo_point(value: Any, field: str, op: str, where: str, what: str) -> GeoPoint:
    if isinstance(value, Mapping):
        lat, lon = value.get("lat"), value.get("lon")
        if _is_number(lat) and _is_number(lon):
            lat_f, lon_f = float(lat), float(lon)
            if -90.0 <= lat_f <= 90.0 and -180.0 <= lon_f <= 180.0:
                return GeoPoint(lat_f, lon_f)
            raise _fail(
                f"'{op}' on field '{field}': {what} is out of range "
                "(lat must be within [-90, 90], lon within [-180, 180])",
                where,
                field=field,
                operator=op,
            )
    raise _fail(
        f"'{op}' on field '{field}': {what} must be an object {{\"lat\": number, \"lon\": number}}",
        where,
        field=field,
        operator=op,
    )


def _geo_value(
    value: Any, field: str, op: str, where: str
) -> GeoRadius | GeoBoundingBox | GeoPolygon:
    if op == "geo_radius":
        if not isinstance(value, Mapping):
            raise _fail(
                f'\'geo_radius\' on field \'{field}\' needs {{"lat", "lon", "radius_m"}}',
                where,
                field=field,
                operator=op,
            )
        center = _geo_point(value.get("center", value), field, op, where, "the center")
        radius = value.get("radius_m")
        if not _is_number(radius) or not math.isfinite(radius) or radius <= 0:
            raise _fail(
                f"'geo_radius' on field '{field}' needs a positive 'radius_m' in metres",
                where,
                field=field,
                operator=op,
            )
        return GeoRadius(center, float(radius))
    if op == "geo_bounding_box":
        if not isinstance(value, Mapping):
            raise _fail(
                f"'geo_bounding_box' on field '{field}' needs "
                '{"top_left": {"lat", "lon"}, "bottom_right": {"lat", "lon"}}',
                where,
                field=field,
                operator=op,
            )
        return GeoBoundingBox(
            _geo_point(value.get("top_left"), field, op, where, "'top_left'"),
            _geo_point(value.get("bottom_right"), field, op, where, "'bottom_right'"),
        )
    raw = value.get("points") if isinstance(value, Mapping) else value
    if not isinstance(raw, list):
        raise _fail(
            f'\'geo_polygon\' on field \'{field}\' needs {{"points": [{{"lat", "lon"}}, ...]}}',
            where,
            field=field,
            operator=op,
        )
    points = [_geo_point(p, field, op, where, f"point {i}") for i, p in enumerate(raw)]
    if points and points[0] != points[-1]:
        points.append(points[0])
    if len(set(points)) < 3:
        raise _fail(
            f"'geo_polygon' on field '{field}' needs at least 3 distinct points",
            where,
            field=field,
            operator=op,
        )
    return GeoPolygon(tuple(points))


def _leaf_value(field: str, op: str, value: Any, where: str) -> LeafValue:
    if op in ("eq", "ne", "contains"):
        return _check_scalar(value, field, op, where)
    if op in ("in", "nin"):
        if not isinstance(value, list | tuple):
            raise _fail(
                f"'{op}' on field '{field}' needs a list of values, got {type(value).__name__}",
                where,
                field=field,
                operator=op,
            )
        if len(value) > LIMITS.max_in_values:
            raise _fail(
                f"'{op}' on field '{field}' has {len(value)} values; the limit is "
                f"{LIMITS.max_in_values}",
                where,
                field=field,
                operator=op,
                limit=LIMITS.max_in_values,
            )
        out: list[Scalar] = []
        for v in value:
            s = _check_scalar(v, field, op, where)
            if not any(type(s) is type(o) and s == o for o in out):
                out.append(s)
        return tuple(out)
    if op in RANGE_OPERATORS:
        if _is_number(value) and math.isfinite(value):
            return value
        if isinstance(value, str):
            micros = parse_datetime(value)
            if micros is not None:
                return _datetime_bound(micros)
        raise _fail(
            f"'{op}' on field '{field}' needs a number or an RFC 3339 date-time, got {value!r}",
            where,
            field=field,
            operator=op,
        )
    if op in STRING_OPERATORS:
        text = _check_string(value, field, op, where)
        if op == "regex":
            if len(text) > MAX_REGEX_LENGTH:
                raise _fail(
                    f"'regex' on field '{field}' is longer than {MAX_REGEX_LENGTH} characters",
                    where,
                    field=field,
                )
            try:
                re.compile(text)
            except re.error as exc:
                raise _fail(
                    f"'regex' on field '{field}' is not a valid regular expression: {exc}",
                    where,
                    field=field,
                ) from exc
        if op == "text" and not text:
            raise _fail(f"'text' on field '{field}' needs a non-empty string", where, field=field)
        return text
    if op in TEXT_OPERATORS:
        text = _check_string(value, field, op, where)
        if not analyze_text(text):
            raise _fail(
                f"'{op}' on field '{field}' needs at least one word, got {text!r}",
                where,
                field=field,
                operator=op,
            )
        return text
    if op in GEO_OPERATORS:
        return _geo_value(value, field, op, where)
    raise AssertionError(op)  # pragma: no cover


def _parse_leaf(obj: Mapping[str, Any], inputs: Mapping[str, Any] | None, where: str) -> FilterNode:
    extra = sorted(str(k) for k in obj if k not in _LEAF_KEYS)
    field = obj.get("field")
    if not isinstance(field, str) or not field:
        raise _fail("a condition needs a non-empty 'field' string", where)
    if extra:
        raise _fail(
            f"unexpected keys {extra} in the condition on field '{field}' "
            "(a condition has 'field', 'operator' and 'value')",
            where,
            field=field,
        )
    if parse_path(field) is None:
        raise _fail(
            f"'{field}' is not a valid field path (use dots between keys, quote keys with "
            'other characters than letters, digits, "_" and "-", e.g. metadata."my key")',
            where,
            field=field,
        )
    raw_op = obj.get("operator")
    op_name = "eq" if raw_op is None else raw_op
    if not isinstance(op_name, str) or op_name.strip().lower() not in OPERATORS:
        raise _fail(
            f"unknown operator {raw_op!r} on field '{field}'; valid operators: {_OPERATOR_LIST}",
            where,
            field=field,
            operator=raw_op,
            valid_operators=list(OPERATORS),
        )
    op = cast(Operator, op_name.strip().lower())
    value = _resolve_dynamic(obj.get("value"), inputs, where)
    return _make_leaf(field, op, value, where)


def _make_leaf(field: str, op: Operator, value: Any, where: str) -> FilterNode:
    if op in ("exists", "is_null"):
        if value is None or value is True:
            return Leaf(field, op)
        if value is False:
            return Not(Leaf(field, op))
        raise _fail(
            f"'{op}' on field '{field}' takes no value (or true/false), got {value!r}",
            where,
            field=field,
            operator=op,
        )
    if value is None:
        if op == "eq":
            return Leaf(field, "is_null")
        if op == "ne":
            return Not(Leaf(field, "is_null"))
        raise _fail(f"'{op}' on field '{field}' needs a value", where, field=field, operator=op)
    return Leaf(field, op, _leaf_value(field, op, value, where))


def _parse_node(obj: Any, inputs: Mapping[str, Any] | None, where: str) -> FilterNode | None:
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        raise _fail(f"expected an object, got {type(obj).__name__}", where)
    if "field" in obj:
        return _parse_leaf(obj, inputs, where)
    parts: list[FilterNode] = []
    for key, raw in obj.items():
        if key == "case_sensitive":
            if raw is not None and not isinstance(raw, bool):
                raise _fail("'case_sensitive' must be a boolean", where)
            continue
        if key in GROUP_KEYS:
            if raw is None:
                continue
            if not isinstance(raw, list):
                raise _fail(f"'{key}' must be a list of conditions", f"{where}.{key}")
            children = [
                child
                for i, item in enumerate(raw)
                if (child := _parse_node(item, inputs, f"{where}.{key}[{i}]")) is not None
            ]
            if not children:
                continue
            if key == "AND":
                parts.extend(children)
            elif key == "OR":
                parts.append(_combine_or(children))
            else:
                parts.append(Not(_combine_or(children)))
            continue
        if not isinstance(key, str) or not key:
            raise _fail(f"invalid key {key!r}", where)
        # shorthand {"metadata.title": "x"}: equality
        sub = f"{where}.{key}"
        if parse_path(key) is None:
            raise _fail(f"'{key}' is neither AND/OR/NOT nor a valid field path", sub, field=key)
        value = _resolve_dynamic(raw, inputs, sub)
        if isinstance(value, Mapping | list):
            raise _fail(
                f"shorthand condition on '{key}' needs a scalar value; use "
                '{"field": ..., "operator": ..., "value": ...} for other operators',
                sub,
                field=key,
            )
        parts.append(_make_leaf(key, "eq", value, sub))
    return combine_and(*parts)


@dataclass
class FilterLimits:
    """Bounds on one filter, so that no request makes the server parse or evaluate without
    end (an `in` of 100,000 values ran past 300 s). Set once per process from the settings."""

    max_depth: int = 10  # AND/OR/NOT groups inside each other
    max_conditions: int = 256  # leaves in the whole tree
    max_in_values: int = 1024  # values of one in/nin


LIMITS = FilterLimits()


def _check_size(obj: Any, where: str) -> None:
    """Depth and condition count of a filter as written, checked without recursion."""
    conditions = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            if "field" in node:
                conditions += 1
                if conditions > LIMITS.max_conditions:
                    raise _fail(
                        f"more than {LIMITS.max_conditions} conditions",
                        where,
                        limit=LIMITS.max_conditions,
                    )
                continue
            if depth >= LIMITS.max_depth:
                raise _fail(
                    f"groups nest deeper than {LIMITS.max_depth} levels",
                    where,
                    limit=LIMITS.max_depth,
                )
            # shorthand {"metadata.x": value} entries are conditions too
            shorthand = [k for k in node if k not in GROUP_KEYS and k != "case_sensitive"]
            conditions += len(shorthand)
            if conditions > LIMITS.max_conditions:
                raise _fail(
                    f"more than {LIMITS.max_conditions} conditions",
                    where,
                    limit=LIMITS.max_conditions,
                )
            stack.extend((node[k], depth + 1) for k in GROUP_KEYS if k in node)
        elif isinstance(node, list):
            stack.extend((v, depth) for v in node)


def parse_filter(
    obj: Any, inputs: Mapping[str, Any] | None = None, *, where: str = "filters"
) -> FilterNode | None:
    """Parse a Mixpeek LogicalOperator filter. None (or an empty filter) parses to None.

    Raises `ValidationFailed` (code ``invalid_filter``) for malformed input, naming the
    offending field and location; ``filter_input_missing`` when a dynamic value refers to an
    input that `inputs` does not provide.
    """
    _check_size(obj, where)
    return _parse_node(obj, inputs, where)
