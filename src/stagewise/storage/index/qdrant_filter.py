"""Compile a parsed filter (`stagewise.domain.filters`) to a Qdrant filter plus a residual.

One compiler serves both transports: it decides what Qdrant evaluates, and a `FilterModels`
(`filter_models.py`) spells it in qdrant_edge classes (the default, the embedded shards) or
in qdrant_client models (a Qdrant server, `remote_filter.CLIENT_MODELS`). The index quirks
below were measured on Qdrant Edge 0.9, which shares the server's segment code; the remote
transport is checked against the same reference by `stagewise.testing.search_index`.

`compile_filter` splits a tree into the part Qdrant evaluates *exactly* as the reference
evaluator `stagewise.domain.filters.matches` does, and a residual to run in Python over the
payloads Qdrant returns. ``qdrant AND residual`` is equivalent to the original filter. AND
groups split child by child; an OR or NOT with any residual child goes residual whole. A
residual leaf (or OR) may still contribute a *prefilter* to the Qdrant part: a necessary
condition, e.g. ``MatchSubstring(v)`` for ``ends_with v``. That keeps the split exact while
narrowing what Python has to look at.

What Qdrant evaluates (and the payload index each condition wants, see `index_requirements`):

===========================  ==================================================  ==========
operator                     Qdrant condition                                    index
===========================  ==================================================  ==========
eq/ne/in/nin (string)        MatchValue / MatchAny (``must_not`` for ne/nin)     keyword
eq/ne/in/nin (number)        RangeFloat(gte=v, lte=v) (so 5 matches 5.0)         float
gt/gte/lt/lte (number)       RangeFloat                                          float
gt/gte/lt/lte (date-time)    RangeDateTime (bound normalised to UTC RFC 3339)    datetime
starts_with                  MatchPrefix                                         keyword
contains (number)            as eq                                               float
exists / is_null             NOT IsEmpty / IsNull                                -
words / phrase               MatchText / MatchPhrase, only on a text-indexed     text
                             field (`payload_index_schema("text")`)
geo_radius / _bounding_box   GeoRadius / GeoBoundingBox / GeoPolygon; exact      geo
/ _polygon                   only with a geo index (else a prefilter)
===========================  ==================================================  ==========

What goes residual: ``regex``; ``text`` (case-insensitive substring); ``ends_with`` and
``contains`` with a string (prefiltered by MatchSubstring when case-sensitive; Qdrant cannot
tell a list from a string, so ``contains`` cannot be exact); every string comparison when
``case_insensitive``; boolean equality (qdrant-edge 0.9's ``MatchValue(True)`` becomes the
integer 1: it matches ``1`` and never ``true``); ``words``/``phrase`` on a field without a
text index (Qdrant's unindexed MatchText neither stems nor pools list elements); and any
comparison whose field carries an index that changes Qdrant's answer (below).

Index quirks of Qdrant Edge 0.9 (checked empirically; the property suite covers them):

* An *integer* index answers ``MatchValue(5)`` for a stored ``5.0`` and ignores floats in
  ranges; a *datetime* index answers numeric ranges with date-times and ignores numbers; a
  *float* index makes every RangeDateTime fail. Numeric conditions are therefore residual on
  integer/datetime-indexed fields, date-time ranges on float-indexed ones, and
  `index_requirements` never asks for an integer index, nor for float and datetime on the
  same field. Keyword, bool, geo and text indexes change no answer.
* Without a text index, MatchText/MatchPhrase tokenise (lowercase, no stemming) each array
  element separately; they are *not* substring matches.
* Geo conditions are exact only on a geo-indexed field: unindexed, Qdrant does not validate
  stored points and matches out-of-range ones such as ``{"lat": 200, "lon": 0}``.
* ``Filter(should=[])`` matches everything, so an empty OR compiles to ``HasId(set())``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from qdrant_edge import (
    PayloadSchemaType,
    SnowballLanguage,
    SnowballParams,
    TextIndexParams,
    TokenizerType,
)

from stagewise.domain.filters import (
    And,
    DateTimeBound,
    FilterNode,
    GeoBoundingBox,
    GeoPolygon,
    GeoRadius,
    Leaf,
    Not,
    Or,
    Scalar,
    combine_and,
    fields_of,
)
from stagewise.storage.index.filter_models import EDGE_MODELS, FilterModels

IndexKind = Literal["keyword", "integer", "float", "bool", "geo", "datetime", "text"]
INDEX_KINDS: Final[tuple[str, ...]] = (
    "keyword",
    "integer",
    "float",
    "bool",
    "geo",
    "datetime",
    "text",
)

Condition: TypeAlias = Any  # built by a FilterModels: qdrant_edge or qdrant_client classes
_Needs: TypeAlias = frozenset[tuple[str, str]]
_NONE: Final[_Needs] = frozenset()

# index kinds under which a family of conditions is still answered exactly (None: no index)
_NUMERIC_OK: Final = frozenset({None, "keyword", "float", "bool", "geo", "text"})
_DATETIME_OK: Final = frozenset({None, "keyword", "datetime", "bool", "geo", "text"})
_STRING_OK: Final = frozenset({None, *INDEX_KINDS})


@dataclass(frozen=True)
class CompiledFilter:
    """`qdrant` AND `residual` is equivalent to the compiled filter (either may be None).

    `unindexed`: fields that the Qdrant part filters on without a payload index of the kind
    their condition needs. Qdrant then cannot estimate the filter's cardinality, and a
    filtered HNSW search over built segments loses most of its hits (recall 0.27 for a 10%
    filter at 100k, ACORN included); such searches must run exactly."""

    qdrant: Any  # a Filter of the FilterModels' API, or None
    residual: FilterNode | None
    unindexed: frozenset[str] = frozenset()

    @property
    def exact(self) -> bool:
        """True when Qdrant alone answers the filter."""
        return self.residual is None


@dataclass(frozen=True)
class _Part:
    exact: Condition | None  # equivalent to the node, if Qdrant can say it
    prefilter: Condition | None = None  # else: implied by the node (a superset), if any
    needs: _Needs = _NONE  # indexes the chosen condition wants: (field, kind)


def _residual(prefilter: Condition | None = None, needs: _Needs = _NONE) -> _Part:
    return _Part(None, prefilter, needs if prefilter is not None else _NONE)


def normalize_index_kind(kind: object) -> str:
    """'keyword', 'PayloadSchemaType.Keyword', PayloadSchemaType.Keyword -> 'keyword'."""
    return str(kind).rsplit(".", 1)[-1].strip().lower()


def _number_eq(m: FilterModels, key: str, value: int | float) -> Condition:
    v = float(value)
    return m.range_float(key, {"gte": v, "lte": v})


def _compile_in(
    m: FilterModels, key: str, values: tuple[Scalar, ...], ci: bool, kind: str | None
) -> tuple[Condition | None, _Needs]:
    if not values:
        return m.match_any(key, []), _NONE
    strings = [v for v in values if isinstance(v, str)]
    numbers = [v for v in values if not isinstance(v, str | bool)]
    if any(isinstance(v, bool) for v in values):
        return None, _NONE
    if strings and (ci or kind not in _STRING_OK):
        return None, _NONE
    if numbers and kind not in _NUMERIC_OK:
        return None, _NONE
    conds: list[Condition] = []
    needs: set[tuple[str, str]] = set()
    if strings:
        conds.append(
            m.match_value(key, strings[0]) if len(strings) == 1 else m.match_any(key, strings)
        )
        needs.add((key, "keyword"))
    for n in dict.fromkeys(float(x) for x in numbers):
        conds.append(_number_eq(m, key, n))
        needs.add((key, "float"))
    cond = conds[0] if len(conds) == 1 else m.filter(should=conds)
    return cond, frozenset(needs)


def _compile_leaf(leaf: Leaf, ci: bool, indexes: Mapping[str, str], m: FilterModels) -> _Part:
    key, op, value = leaf.field, leaf.operator, leaf.value
    kind = indexes.get(key)
    if op == "exists":
        return _Part(m.filter(must_not=[m.is_empty(key)]))
    if op == "is_null":
        return _Part(m.is_null(key))
    if op in ("ne", "nin"):
        positive = _compile_leaf(Leaf(key, "eq" if op == "ne" else "in", value), ci, indexes, m)
        if positive.exact is None:
            return _residual()
        return _Part(m.filter(must_not=[positive.exact]), needs=positive.needs)
    if op in ("eq", "contains") and not isinstance(value, str):
        if isinstance(value, bool) or kind not in _NUMERIC_OK:
            return _residual()
        assert isinstance(value, int | float)
        return _Part(_number_eq(m, key, value), needs=frozenset({(key, "float")}))
    if op == "in":
        assert isinstance(value, tuple)
        cond, needs = _compile_in(m, key, value, ci, kind)
        return _Part(cond, needs=needs) if cond is not None else _residual()
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, DateTimeBound):
            if kind not in _DATETIME_OK:
                return _residual()
            rng_dt = m.range_datetime(key, op, value)
            return _Part(rng_dt, needs=frozenset({(key, "datetime")}))
        assert isinstance(value, int | float)
        if kind not in _NUMERIC_OK:
            return _residual()
        rng = m.range_float(key, {op: float(value)})
        return _Part(rng, needs=frozenset({(key, "float")}))
    if op in ("geo_radius", "geo_bounding_box", "geo_polygon"):
        if isinstance(value, GeoRadius):
            geo = m.geo_radius(key, value.center, value.radius_m)
        elif isinstance(value, GeoBoundingBox):
            geo = m.geo_bounding_box(key, value.top_left, value.bottom_right)
        else:
            assert isinstance(value, GeoPolygon)
            geo = m.geo_polygon(key, value.points)
        needs = frozenset({(key, "geo")})
        if kind == "geo":
            return _Part(geo, needs=needs)
        # Unindexed, Qdrant also matches out-of-range points ({"lat": 200, ...}), which a geo
        # index (and the evaluator) rejects: a superset, so a prefilter.
        return _residual(geo, needs)

    assert isinstance(value, str)
    if op in ("words", "phrase"):
        if kind != "text":
            return _residual()
        match = m.match_text(key, value) if op == "words" else m.match_phrase(key, value)
        return _Part(match, needs=frozenset({(key, "text")}))
    string_ok = not ci and kind in _STRING_OK
    keyword = frozenset({(key, "keyword")})
    if op == "eq":
        if not string_ok:
            return _residual()
        return _Part(m.match_value(key, value), needs=keyword)
    if op == "starts_with":
        if not string_ok:
            return _residual()
        return _Part(m.match_prefix(key, value), needs=keyword)
    if op in ("contains", "ends_with"):
        if not string_ok or not value:
            return _residual()
        return _residual(m.match_substring(key, value), keyword)
    # regex, text
    return _residual()


def _compile(node: FilterNode, ci: bool, indexes: Mapping[str, str], m: FilterModels) -> _Part:
    if isinstance(node, Leaf):
        return _compile_leaf(node, ci, indexes, m)
    if isinstance(node, Not):
        inner = _compile(node.child, ci, indexes, m)
        if inner.exact is None:
            return _residual()
        return _Part(m.filter(must_not=[inner.exact]), needs=inner.needs)
    parts = [_compile(child, ci, indexes, m) for child in node.children]
    needs = frozenset().union(*(p.needs for p in parts))
    if isinstance(node, Or):
        if not parts:
            return _Part(m.has_ids(()))  # empty OR: false
        if all(p.exact is not None for p in parts):
            return _Part(_should(m, [p.exact for p in parts]), needs=needs)
        supersets = [p.exact if p.exact is not None else p.prefilter for p in parts]
        if all(s is not None for s in supersets):
            return _residual(_should(m, supersets), needs)
        return _residual()
    # And
    if all(p.exact is not None for p in parts):
        return _Part(_must(m, [p.exact for p in parts]), needs=needs)
    implied = [p.exact if p.exact is not None else p.prefilter for p in parts]
    kept = [c for c in implied if c is not None]
    return _residual(_must(m, kept) if kept else None, needs)


def _should(m: FilterModels, conds: Iterable[Condition | None]) -> Condition:
    items = [c for c in conds if c is not None]
    return items[0] if len(items) == 1 else m.filter(should=items)


def _must(m: FilterModels, conds: Iterable[Condition | None]) -> Condition:
    items = [c for c in conds if c is not None]
    return items[0] if len(items) == 1 else m.filter(must=items)


def _unindexed(node: FilterNode, part: _Part, indexes: Mapping[str, str]) -> set[str]:
    """Fields of an exactly compiled part lacking the payload index its conditions want (a
    field with no wanted kind, as under exists/is_null, wants an index of any kind)."""
    wanted: dict[str, set[str]] = {}
    for field, kind in part.needs:
        wanted.setdefault(field, set()).add(kind)
    out = set()
    for field in fields_of(node):
        have = indexes.get(field)
        if have is None or not wanted.get(field, set()) <= {have}:
            out.add(field)
    return out


def _top_level(
    node: FilterNode, ci: bool, indexes: Mapping[str, str], m: FilterModels
) -> tuple[list[Condition], list[FilterNode], set[tuple[str, str]], set[str]]:
    """Split the top-level AND: Qdrant conditions, residual children, index needs, and the
    fields of the exact conditions that lack their index."""
    children = node.children if isinstance(node, And) else (node,)
    conds: list[Condition] = []
    residual: list[FilterNode] = []
    needs: set[tuple[str, str]] = set()
    unindexed: set[str] = set()
    for child in children:
        part = _compile(child, ci, indexes, m)
        if part.exact is not None:
            conds.append(part.exact)
            unindexed |= _unindexed(child, part, indexes)
        else:
            residual.append(child)
            if part.prefilter is not None:
                conds.append(part.prefilter)
        needs |= part.needs
    return conds, residual, needs, unindexed


def _normalized(indexes: Mapping[str, object] | None) -> dict[str, str]:
    return {k: normalize_index_kind(v) for k, v in (indexes or {}).items()}


def compile_filter(
    node: FilterNode | None,
    *,
    case_insensitive: bool = False,
    indexes: Mapping[str, object] | None = None,
    models: FilterModels = EDGE_MODELS,
) -> CompiledFilter:
    """Split `node` into a Qdrant filter and a Python residual (see the module doc).

    `indexes` maps field paths to the payload index kinds that exist on the shard
    (``'keyword'``, ``'text'``, ... or `PayloadSchemaType` values). Indexes matter for
    correctness, not just speed: ``words``/``phrase`` compile to Qdrant only on fields with a
    text index built by `payload_index_schema("text")`, and some index kinds change what a
    range answers (module doc). Without `indexes` everything else compiles as if unindexed.
    `models` builds the conditions: qdrant_edge classes unless told otherwise.
    """
    if node is None:
        return CompiledFilter(None, None)
    m = models
    conds, residual, _, unindexed = _top_level(node, case_insensitive, _normalized(indexes), m)
    qdrant: Any
    if not conds:
        qdrant = None
    elif len(conds) == 1 and m.is_filter(conds[0]):
        qdrant = conds[0]
    else:
        qdrant = m.filter(must=conds)
    return CompiledFilter(qdrant, combine_and(*residual), frozenset(unindexed))


# Index kinds whose values give HNSW filter-aware links (measured; see dense_filter_path).
LINKED_KINDS: Final = frozenset({"keyword", "integer", "bool", "uuid"})


def dense_filter_path(
    node: FilterNode | None,
    compiled: CompiledFilter | None,
    kinds: Mapping[str, str],
    *,
    exhaustive: bool,
    late_indexes: bool,
) -> tuple[str | None, tuple[str, ...]]:
    """How a filtered dense search must run to stay correct, and the fields lacking the index
    their condition needs. Measured at 100k, 10% filters, HNSW built (docs/architecture.md):
    keyword or integer indexes built before the graph give it filter-aware links (recall
    0.99+ as is); a float index does not (an equality kept 0.25 of its hits, ACORN 0.997),
    nor does an index added after the build (`late_indexes`); without any index the planner
    cannot even estimate the filter (recall 0.27, ACORN too) and only an exact scan is right
    (1.0, ~70 ms). `exhaustive`: every search is a full scan anyway (no HNSW yet)."""
    if compiled is None or node is None:
        return None, ()
    unindexed = tuple(sorted(compiled.unindexed)) if compiled.residual is None else ()
    if exhaustive or unindexed:
        return "exact", unindexed
    if compiled.residual is not None or late_indexes:
        return "acorn", ()
    if any(normalize_index_kind(kinds.get(f)) not in LINKED_KINDS for f in fields_of(node)):
        return "acorn", ()
    return "indexed", ()


def index_requirements(
    node: FilterNode | None, *, case_insensitive: bool = False
) -> dict[str, str]:
    """Payload indexes to create so that `compile_filter` pushes the most work to Qdrant.

    Field -> ``'keyword'|'float'|'datetime'|'geo'|'text'``. ``'text'`` is needed for
    correctness-preserving pushdown of ``words``/``phrase`` (create it with
    `payload_index_schema`); the others only speed Qdrant up. One index per field: text wins,
    then geo, then keyword; a field wanting both float and datetime gets none (each breaks the
    other's ranges). Integer indexes are never recommended (they change numeric answers).
    """
    if node is None:
        return {}
    assume_text = {(leaf_field): "text" for leaf_field in _text_fields(node)}
    _, _, needs, _ = _top_level(node, case_insensitive, assume_text, EDGE_MODELS)
    by_field: dict[str, set[str]] = {}
    for f, kind in needs:
        by_field.setdefault(f, set()).add(kind)
    out: dict[str, str] = {}
    for f, kinds in sorted(by_field.items()):
        for preferred in ("text", "geo", "keyword"):
            if preferred in kinds:
                out[f] = preferred
                break
        else:
            if kinds == {"float"}:
                out[f] = "float"
            elif kinds == {"datetime"}:
                out[f] = "datetime"
    return out


def _text_fields(node: FilterNode) -> set[str]:
    if isinstance(node, Leaf):
        return {node.field} if node.operator in ("words", "phrase") else set()
    if isinstance(node, Not):
        return _text_fields(node.child)
    out: set[str] = set()
    for child in node.children:
        out |= _text_fields(child)
    return out


def payload_index_schema(kind: str) -> PayloadSchemaType | TextIndexParams:
    """The Qdrant index definition for a kind; the text index is the one the evaluator
    mirrors (word tokenizer, lowercase, English Snowball stemmer, no stop words, phrases)."""
    kind = normalize_index_kind(kind)
    if kind == "text":
        return TextIndexParams(
            tokenizer=TokenizerType.Word,
            lowercase=True,
            phrase_matching=True,
            stemmer=SnowballParams(SnowballLanguage.English),
        )
    schemas = {
        "keyword": PayloadSchemaType.Keyword,
        "integer": PayloadSchemaType.Integer,
        "float": PayloadSchemaType.Float,
        "bool": PayloadSchemaType.Bool,
        "geo": PayloadSchemaType.Geo,
        "datetime": PayloadSchemaType.Datetime,
    }
    if kind not in schemas:
        raise ValueError(f"unknown payload index kind {kind!r}; expected one of {INDEX_KINDS}")
    return schemas[kind]
