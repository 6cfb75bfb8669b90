"""The Qdrant compilation of a filter agrees with the reference evaluator, document for document.

One set of ~60 random documents is loaded into three Edge shards that differ only in their
payload indexes: the ones `index_requirements` recommends, none at all, and an adversarial set
(indexes that change Qdrant's answers, which the compiler must route around). For random
filter trees (every operator, AND/OR/NOT to depth 3, both case modes) the documents matched by
`matches` must equal those Qdrant returns for `compiled.qdrant`, filtered by
`compiled.residual` in Python.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeVectorParams,
    Point,
    ScrollRequest,
    UpdateOperation,
)

from stagewise.domain.filters import (
    FilterNode,
    GeoPoint,
    Or,
    haversine_m,
    iter_leaves,
    matches,
    parse_filter,
)
from stagewise.ids import point_id
from stagewise.storage.index.qdrant_filter import (
    compile_filter,
    index_requirements,
    payload_index_schema,
)

pytestmark = [pytest.mark.unit]

# ---------------------------------------------------------------------------------------------
# documents

WORDS = [
    "the", "running", "run", "runs", "Runner", "dog", "dogs", "Dog", "quick", "brown", "fox",
    "Foxes", "jumps", "jumping", "lazy", "news", "News", "report", "reports", "apple", "Apple",
    "pie", "café", "don't", "x-ray", "data_set", "42", "généreux", "generously",
]  # fmt: skip
CATEGORIES = ["news", "News", "NEWS", "sports", "tech", "Tech", "news-flash"]
TAGS = ["a", "b", "c", "Alpha", "alpha", "beta", "gamma-ray", ""]
SKUS = ["SKU-1", "sku-1", "SKU-2", "X9"]


def _title(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(1, 5))
    seps = [rng.choice([" ", " ", " ", ", ", "-", "  "]) for _ in words[1:]]
    out = words[0]
    for sep, word in zip(seps, words[1:], strict=True):
        out += sep + word
    return out


def _point(rng: random.Random) -> dict[str, float]:
    return {"lat": round(rng.uniform(-60, 60), 4), "lon": round(rng.uniform(-179, 179), 4)}


def _when(rng: random.Random) -> Any:
    m, d, h, mi = rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59)
    year = rng.choice([2023, 2024, 2024, 2025])
    return rng.choice(
        [
            f"{year}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:00Z",
            f"{year}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:30+02:00",
            f"{year}-{m:02d}-{d:02d}",
            f"{year}-{m:02d}-{d:02d} {h:02d}:{mi:02d}",
            f"{year}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:00.250Z",
        ]
    )


def _maybe(rng: random.Random, value: Any, odd: list[Any], p_normal: float = 0.75) -> Any:
    """`value` most of the time, else an odd alternative; `_MISSING` drops the field."""
    return value if rng.random() < p_normal else rng.choice(odd)


_MISSING = object()


def make_documents(n: int = 60, seed: int = 20240601) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        count = rng.randint(0, 20)
        meta: dict[str, Any] = {
            "category": _maybe(
                rng, rng.choice(CATEGORIES), [_MISSING, None, ["news", "tech"], 7, "", "Sports"]
            ),
            "count": _maybe(
                rng, count, [_MISSING, None, count + 0.5, True, False, "5", [1, 5, 12], 5.0, -3]
            ),
            "score": _maybe(rng, round(rng.uniform(-10, 10), 2), [_MISSING, 3, None, [1.5, -2.0]]),
            "tags": _maybe(
                rng,
                rng.sample(TAGS, rng.randint(0, 4)),
                [_MISSING, [], [None, "a"], [None], "a", None, [["a"]], ["a", 1]],
            ),
            "flag": _maybe(rng, rng.random() < 0.5, [_MISSING, None, 1, 0, "true", [True], [None]]),
            "when": _maybe(rng, _when(rng), [_MISSING, None, 1704067200, [_when(rng), _when(rng)]]),
            "loc": _maybe(
                rng,
                _point(rng),
                [_MISSING, None, [_point(rng), _point(rng)], {"lat": 200.0, "lon": 0.0}, "x"],
            ),
            "notes": _maybe(rng, [_title(rng) for _ in range(rng.randint(1, 3))], [_MISSING, []]),
            "items": _maybe(
                rng,
                [
                    {"sku": rng.choice(SKUS), "qty": rng.randint(0, 5)}
                    for _ in range(rng.randint(1, 3))
                ],
                [_MISSING, {"sku": "SKU-1", "qty": 1}, [{}], [{"sku": None}]],
            ),
            "nested": _maybe(rng, {"level": rng.randint(0, 3)}, [_MISSING, {}, {"level": None}]),
        }
        doc: dict[str, Any] = {
            "title": _maybe(rng, _title(rng), [_MISSING, None, [_title(rng), _title(rng)], 42]),
            "metadata": {k: v for k, v in meta.items() if v is not _MISSING},
            "document_id": f"doc_{i:03d}",
            "collection_id": "col_props",
            "_seq": i + 1,
        }
        docs.append({k: v for k, v in doc.items() if v is not _MISSING})
    return docs


DOCS = make_documents()

# ---------------------------------------------------------------------------------------------
# filters

STRING_FIELDS = [
    "title",
    "metadata.category",
    "metadata.tags",
    "metadata.notes",
    "metadata.items[].sku",
    "document_id",
]
NUMBER_FIELDS = [
    "metadata.count",
    "metadata.score",
    "metadata.items[].qty",
    "_seq",
    "metadata.nested.level",
]
TEXT_FIELDS = ["title", "metadata.notes"]
ALL_FIELDS = [
    *STRING_FIELDS,
    *NUMBER_FIELDS,
    "metadata.flag",
    "metadata.when",
    "metadata.loc",
    "metadata.missing_everywhere",
]

STRING_VALUES = [
    *CATEGORIES,
    *TAGS,
    *SKUS,
    "doc_007",
    "run",
    "Dog",
    "dog",
    "the",
    "s",
    "ws",
    "ne",
    "NE",
    "gam",
    "pie",
    "x",
    "Apple pie",
    "brown fox",
]
REGEXES = ["^a", "s$", "(?i)news", "o.", "^[A-Z]", r"\d", "^$", "ray|pie"]
NUMBERS: list[int | float] = [-3, 0, 1, 2, 3, 5, 5.0, 5.5, 7, 10, 12, 20, -2.5, 3.14, 0.5]
DATETIMES = [
    "2024-01-01T00:00:00Z",
    "2024-06-15",
    "2024-06-15T12:00:00+02:00",
    "2023-12-31 23:59",
    "2025-01-01T00:00:00.250Z",
]

strings = st.sampled_from(STRING_VALUES)
numbers = st.sampled_from(NUMBERS)
scalars = st.one_of(strings, numbers, st.booleans())


@st.composite
def text_queries(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        # a run of words from a real title, so phrases match sometimes
        source = draw(st.sampled_from([d for d in DOCS if isinstance(d.get("title"), str)]))
        words = source["title"].replace(",", " ").split()
        start = draw(st.integers(0, max(0, len(words) - 1)))
        length = draw(st.integers(1, 3))
        return " ".join(words[start : start + length])
    return " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)))


lats = st.floats(-60, 60)
lons = st.floats(-179, 179)


@st.composite
def geo_values(draw: st.DrawFn, op: str) -> dict[str, Any]:
    lat, lon = draw(lats), draw(lons)
    if op == "geo_radius":
        return {"lat": lat, "lon": lon, "radius_m": draw(st.floats(1e5, 8e6))}
    if op == "geo_bounding_box":
        height, width = draw(st.floats(1, 60)), draw(st.floats(1, 120))
        right = lon + width
        if right > 180:  # wrap: a box across the antimeridian
            right -= 360
        return {
            "top_left": {"lat": min(lat + height, 90), "lon": lon},
            "bottom_right": {"lat": lat, "lon": right},
        }
    steps = draw(st.lists(st.integers(0, 12), min_size=3, max_size=6, unique=True))
    radius = draw(st.floats(5, 60))
    points = [
        {
            "lat": max(-89.0, min(89.0, lat + radius * math.sin(k / 2))),
            "lon": max(-179.0, min(179.0, lon + radius * math.cos(k / 2))),
        }
        for k in sorted(steps)
    ]
    assume(len({(p["lat"], p["lon"]) for p in points}) >= 3)
    return {"points": points}


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(["string", "number", "bool", "datetime", "geo", "text", "any", "null"])
    )
    if kind == "string":
        field = draw(st.sampled_from(STRING_FIELDS))
        op = draw(
            st.sampled_from(
                ["eq", "ne", "in", "nin", "contains", "starts_with", "ends_with", "regex", "text"]
            )
        )
        if op in ("in", "nin"):
            value: Any = draw(st.lists(st.one_of(strings, scalars), max_size=4))
        elif op == "regex":
            value = draw(st.sampled_from(REGEXES))
        elif op == "text":
            value = draw(st.sampled_from([v for v in STRING_VALUES if v]))
        else:
            value = draw(strings)
    elif kind == "number":
        field = draw(st.sampled_from(NUMBER_FIELDS))
        op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains"]))
        value = draw(st.lists(numbers, max_size=4)) if op in ("in", "nin") else draw(numbers)
    elif kind == "bool":
        field = "metadata.flag"
        op = draw(st.sampled_from(["eq", "ne", "in", "nin"]))
        value = draw(st.lists(st.one_of(st.booleans(), numbers), min_size=1, max_size=3))
        if op in ("eq", "ne"):
            value = value[0]
    elif kind == "datetime":
        field = draw(st.sampled_from(["metadata.when", "metadata.count"]))
        op = draw(st.sampled_from(["gt", "gte", "lt", "lte"]))
        value = draw(st.sampled_from(DATETIMES))
    elif kind == "geo":
        field = draw(st.sampled_from(["metadata.loc", "metadata.loc", "title"]))
        op = draw(st.sampled_from(["geo_radius", "geo_bounding_box", "geo_polygon"]))
        value = draw(geo_values(op))
    elif kind == "text":
        field = draw(st.sampled_from(TEXT_FIELDS))
        op = draw(st.sampled_from(["words", "phrase"]))
        value = draw(text_queries())
    elif kind == "null":
        field = draw(st.sampled_from(ALL_FIELDS))
        op = draw(st.sampled_from(["exists", "is_null"]))
        flag = draw(st.sampled_from([None, True, False]))
        leaf: dict[str, Any] = {"field": field, "operator": op}
        if flag is not None:
            leaf["value"] = flag
        return leaf
    else:  # cross-type comparisons on any field
        field = draw(st.sampled_from(ALL_FIELDS))
        op = draw(st.sampled_from(["eq", "ne", "gt", "lt", "contains", "starts_with", "in", "nin"]))
        if op in ("in", "nin"):
            value = draw(st.lists(scalars, max_size=4))
        elif op in ("gt", "lt"):
            value = draw(st.one_of(numbers, st.sampled_from(DATETIMES)))
        elif op == "starts_with":
            value = draw(strings)
        else:
            value = draw(scalars)
    if op == "eq" and draw(st.integers(0, 5)) == 0:
        return {field: value}  # shorthand
    leaf = {"field": field, "operator": op, "value": value}
    if draw(st.integers(0, 3)) == 0:
        leaf["case_sensitive"] = draw(st.booleans())  # the SDK's stray key
    return leaf


def groups(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    kids = st.lists(children, min_size=1, max_size=3)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        keys = draw(st.lists(st.sampled_from(["AND", "OR", "NOT"]), min_size=1, max_size=2))
        group: dict[str, Any] = {key: draw(kids) for key in keys}
        if draw(st.booleans()):
            group["case_sensitive"] = False
        return group

    return build()


def trees(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    if depth == 0:
        return leaves()
    return st.one_of(leaves(), groups(trees(depth - 1)))


@st.composite
def filters_with_inputs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A filter three levels deep, some of whose values come from dynamic inputs."""
    raw = draw(groups(trees(2)))
    inputs: dict[str, Any] = {}

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            if "field" in node and "value" in node and draw(st.integers(0, 7)) == 0:
                name = f"p{len(inputs)}"
                inputs[name] = node["value"]
                node["value"] = {"type": "dynamic", "field": f"inputs.{name}"}
            elif "field" not in node:
                for value in node.values():
                    visit(value)

    visit(raw)
    return raw, inputs


# ---------------------------------------------------------------------------------------------
# shards


@dataclass
class Shard:
    shard: EdgeShard
    indexes: dict[str, str]


def _catalog() -> FilterNode:
    """Every operator on every field it is meant for: what `index_requirements` sees."""
    raw: list[dict[str, Any]] = []
    for f in STRING_FIELDS:
        raw += [
            {"field": f, "operator": op, "value": "x"}
            for op in ("eq", "starts_with", "contains", "ends_with", "regex", "text")
        ]
        raw.append({"field": f, "operator": "in", "value": ["x", "y"]})
    for f in NUMBER_FIELDS:
        raw += [{"field": f, "operator": op, "value": 1} for op in ("eq", "gt", "lte")]
    raw += [{"field": "metadata.when", "operator": "gte", "value": DATETIMES[0]}]
    radius = {"lat": 0, "lon": 0, "radius_m": 1}
    raw += [{"field": "metadata.loc", "operator": "geo_radius", "value": radius}]
    for f in TEXT_FIELDS:
        raw += [{"field": f, "operator": op, "value": "dog"} for op in ("words", "phrase")]
    node = parse_filter({"AND": raw})
    assert node is not None
    return node


RECOMMENDED = index_requirements(_catalog())
ADVERSARIAL = {
    "metadata.count": "integer",  # answers 5 for 5.0, ignores floats in ranges
    "metadata.score": "datetime",  # answers numeric ranges with date-times
    "metadata.when": "float",  # fails every date-time range
    "metadata.category": "text",
    "metadata.tags": "keyword",
    "metadata.flag": "bool",
    "metadata.loc": "geo",
    "metadata.items[].qty": "float",
}


def _build(path: Path, indexes: dict[str, str]) -> EdgeShard:
    shard = EdgeShard.create(
        str(path), EdgeConfig(vectors={"v": EdgeVectorParams(size=4, distance=Distance.Cosine)})
    )
    for field, kind in indexes.items():
        shard.update(UpdateOperation.create_field_index(field, payload_index_schema(kind)))
    rng = random.Random(7)
    points = [
        Point(point_id(doc["document_id"]), {"v": [rng.random() + 0.01 for _ in range(4)]}, doc)
        for doc in DOCS
    ]
    shard.update(UpdateOperation.upsert_points(points))
    return shard


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Shard]]:
    root = tmp_path_factory.mktemp("filter-props")
    built = {
        "recommended": Shard(_build(root / "recommended", RECOMMENDED), RECOMMENDED),
        "unindexed": Shard(_build(root / "unindexed", {}), {}),
        "adversarial": Shard(_build(root / "adversarial", ADVERSARIAL), ADVERSARIAL),
    }
    yield built
    for s in built.values():
        s.shard.close()


def engine_ids(s: Shard, node: FilterNode, ci: bool) -> set[str]:
    compiled = compile_filter(node, case_insensitive=ci, indexes=s.indexes)
    records, next_offset = s.shard.scroll(
        ScrollRequest(limit=len(DOCS) + 10, filter=compiled.qdrant, with_payload=True)
    )
    assert next_offset is None
    out = set()
    for rec in records:
        payload = rec.payload or {}
        if compiled.residual is None or matches(compiled.residual, payload, case_insensitive=ci):
            out.add(payload["document_id"])
    return out


def reference_ids(node: FilterNode, ci: bool) -> set[str]:
    return {d["document_id"] for d in DOCS if matches(node, d, case_insensitive=ci)}


# ---------------------------------------------------------------------------------------------
# tests


def test_recommended_indexes() -> None:
    assert RECOMMENDED["title"] == "text"
    assert RECOMMENDED["metadata.notes"] == "text"
    assert RECOMMENDED["metadata.category"] == "keyword"
    assert RECOMMENDED["metadata.count"] == "float"
    assert RECOMMENDED["metadata.when"] == "datetime"
    assert RECOMMENDED["metadata.loc"] == "geo"
    assert "integer" not in RECOMMENDED.values()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=filters_with_inputs(), ci=st.booleans())
def test_compiled_filter_matches_reference(
    shards: dict[str, Shard], case: tuple[dict[str, Any], dict[str, Any]], ci: bool
) -> None:
    raw, inputs = case
    node = parse_filter(raw, inputs)
    assert node is not None
    expected = reference_ids(node, ci)
    share = len(expected) / len(DOCS)
    event("matches " + ("none" if not expected else "all" if share == 1 else "some"))
    compiled = compile_filter(node, case_insensitive=ci, indexes=RECOMMENDED)
    event(
        "split "
        + ("exact" if compiled.exact else "qdrant+residual" if compiled.qdrant else "residual")
    )
    for name, s in shards.items():
        got = engine_ids(s, node, ci)
        assert got == expected, (
            f"{name}: qdrant+residual disagrees with the reference\n"
            f"only engine: {sorted(got - expected)}\nonly reference: {sorted(expected - got)}"
        )


@settings(max_examples=60, deadline=None)
@given(leaf=leaves(), ci=st.booleans())
def test_single_leaves_match_reference(
    shards: dict[str, Shard], leaf: dict[str, Any], ci: bool
) -> None:
    node = parse_filter(leaf)
    assert node is not None
    expected = reference_ids(node, ci)
    for name, s in shards.items():
        assert engine_ids(s, node, ci) == expected, name


EXACT_LEAVES: list[dict[str, Any]] = [
    {"field": "metadata.category", "operator": "eq", "value": "news"},
    {"field": "metadata.category", "operator": "ne", "value": "news"},
    {"field": "metadata.tags", "operator": "in", "value": ["a", "b"]},
    {"field": "metadata.tags", "operator": "nin", "value": ["a", 3]},
    {"field": "metadata.count", "operator": "eq", "value": 5},
    {"field": "metadata.count", "operator": "gte", "value": 5},
    {"field": "metadata.when", "operator": "lt", "value": "2024-06-01"},
    {"field": "title", "operator": "starts_with", "value": "the"},
    {"field": "metadata.count", "operator": "contains", "value": 5},
    {"field": "metadata.loc", "operator": "exists"},
    {"field": "metadata.loc", "operator": "is_null"},
    {"field": "title", "operator": "words", "value": "running dogs"},
    {"field": "title", "operator": "phrase", "value": "brown fox"},
    {
        "field": "metadata.loc",
        "operator": "geo_radius",
        "value": {"lat": 0, "lon": 0, "radius_m": 5e6},
    },
]
RESIDUAL_LEAVES: list[dict[str, Any]] = [
    {"field": "title", "operator": "regex", "value": "^a"},
    {"field": "title", "operator": "ends_with", "value": "s"},
    {"field": "title", "operator": "text", "value": "dog"},
    {"field": "metadata.tags", "operator": "contains", "value": "a"},
    {"field": "metadata.flag", "operator": "eq", "value": True},
]


@pytest.mark.parametrize("leaf", EXACT_LEAVES, ids=lambda d: f"{d['field']}-{d['operator']}")
def test_exact_operators_need_no_residual(leaf: dict[str, Any]) -> None:
    node = parse_filter(leaf)
    compiled = compile_filter(node, indexes=RECOMMENDED)
    assert compiled.residual is None and compiled.qdrant is not None


@pytest.mark.parametrize("leaf", RESIDUAL_LEAVES, ids=lambda d: f"{d['field']}-{d['operator']}")
def test_residual_operators_stay_in_python(leaf: dict[str, Any]) -> None:
    node = parse_filter(leaf)
    compiled = compile_filter(node, indexes=RECOMMENDED)
    assert compiled.residual == node


def test_case_insensitive_string_comparisons_go_residual() -> None:
    node = parse_filter({"metadata.category": "news"})
    assert compile_filter(node).exact
    compiled = compile_filter(node, case_insensitive=True)
    assert compiled.residual == node and compiled.qdrant is None


def test_or_with_a_residual_child_goes_residual_whole_but_keeps_a_prefilter() -> None:
    node = parse_filter(
        {
            "AND": [{"metadata.category": "news"}],
            "OR": [
                {"field": "title", "operator": "ends_with", "value": "s"},
                {"field": "metadata.count", "operator": "gt", "value": 3},
            ],
        }
    )
    compiled = compile_filter(node)
    assert isinstance(compiled.residual, Or)
    assert [leaf.operator for leaf in iter_leaves(compiled.residual)] == ["ends_with", "gt"]
    # the category test and the OR's prefilter (MatchSubstring or the range)
    assert compiled.qdrant is not None and len(compiled.qdrant.must or []) == 2


def test_words_without_a_text_index_stay_residual() -> None:
    node = parse_filter({"field": "title", "operator": "words", "value": "dog"})
    assert compile_filter(node).residual == node
    assert compile_filter(node, indexes={"title": "keyword"}).residual == node
    assert compile_filter(node, indexes={"title": "PayloadSchemaType.Text"}).exact


MORE_LEAVES: list[dict[str, Any]] = [
    {"field": "metadata.items[].sku", "operator": "eq", "value": "SKU-1"},
    {
        "field": "metadata.loc",
        "operator": "geo_bounding_box",
        "value": {"top_left": {"lat": 50, "lon": 150}, "bottom_right": {"lat": -50, "lon": -150}},
    },
    {
        "field": "metadata.loc",
        "operator": "geo_polygon",
        "value": {
            "points": [{"lat": -40, "lon": -100}, {"lat": 40, "lon": -100}, {"lat": 0, "lon": 100}]
        },
    },
    {"field": "metadata.notes", "operator": "phrase", "value": "the dog"},
    {"field": "metadata.tags", "operator": "exists", "value": False},
    {"field": "metadata.count", "operator": "lt", "value": 5.5},
    {"field": "metadata.score", "operator": "gt", "value": 0},
    {"field": "metadata.score", "operator": "lte", "value": 2.5},
    {"field": "metadata.when", "operator": "gte", "value": "2024-06-15T12:00:00+02:00"},
]


def test_every_operator_on_every_shard(shards: dict[str, Shard]) -> None:
    from stagewise.domain.filters import OPERATORS

    cases = EXACT_LEAVES + RESIDUAL_LEAVES + MORE_LEAVES
    assert {c["operator"] for c in cases} == set(OPERATORS)
    for case in cases:
        node = parse_filter(case)
        assert node is not None
        for ci in (False, True):
            expected = reference_ids(node, ci)
            for name, s in shards.items():
                assert engine_ids(s, node, ci) == expected, (name, case, ci)


# ---------------------------------------------------------------------------------------------
# the reference semantics itself (residual-only operators never meet Qdrant above)

P: dict[str, Any] = {
    "title": "The quick brown Fox jumps",
    "n": 5,
    "f": 5.0,
    "s5": "5",
    "flag": True,
    "one": 1,
    "nil": None,
    "empty": [],
    "nils": [None],
    "obj": {},
    "tags": ["a", "Beta", "gamma-ray"],
    "notes": ["quick brown", "fox jumps", "the runners running"],
    "when": "2024-01-02T00:00:00+02:00",
    "loc": {"lat": 10.0, "lon": 179.5},
    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 7}],
    "meta": {"deep": {"x": "y"}, "a b": 3},
}

SEMANTICS: list[tuple[dict[str, Any], bool, bool]] = [
    # (filter, case_insensitive, expected)
    ({"field": "missing", "operator": "eq", "value": 1}, False, False),
    ({"field": "missing", "operator": "ne", "value": 1}, False, True),
    ({"field": "missing", "operator": "nin", "value": [1]}, False, True),
    ({"field": "missing", "operator": "gt", "value": 0}, False, False),
    ({"field": "missing", "operator": "exists"}, False, False),
    ({"field": "missing", "operator": "is_null"}, False, False),
    ({"field": "nil", "operator": "exists"}, False, False),
    ({"field": "nil", "operator": "is_null"}, False, True),
    ({"field": "nil", "operator": "ne", "value": "x"}, False, True),
    ({"nil": None}, False, True),
    ({"field": "empty", "operator": "exists"}, False, False),
    ({"field": "empty", "operator": "is_null"}, False, False),
    ({"field": "nils", "operator": "exists"}, False, True),
    ({"field": "nils", "operator": "is_null"}, False, True),
    ({"field": "obj", "operator": "exists"}, False, True),
    ({"field": "title", "operator": "exists", "value": False}, False, False),
    ({"field": "tags", "operator": "eq", "value": "a"}, False, True),
    ({"field": "tags", "operator": "ne", "value": "a"}, False, False),
    ({"field": "tags", "operator": "in", "value": ["x", "Beta"]}, False, True),
    ({"field": "tags", "operator": "nin", "value": ["x", "Beta"]}, False, False),
    ({"field": "tags", "operator": "eq", "value": "beta"}, False, False),
    ({"field": "tags", "operator": "eq", "value": "beta"}, True, True),
    ({"field": "tags", "operator": "contains", "value": "gamma-ray"}, False, True),
    ({"field": "tags", "operator": "contains", "value": "gam"}, False, False),
    ({"field": "title", "operator": "contains", "value": "brown F"}, False, True),
    ({"field": "title", "operator": "contains", "value": "brown f"}, False, False),
    ({"field": "title", "operator": "contains", "value": "brown f"}, True, True),
    ({"field": "tags", "operator": "starts_with", "value": "gam"}, False, True),
    ({"field": "tags", "operator": "ends_with", "value": "ray"}, False, True),
    ({"field": "title", "operator": "ends_with", "value": "JUMPS"}, True, True),
    ({"field": "title", "operator": "regex", "value": "^the"}, False, False),
    ({"field": "title", "operator": "regex", "value": "^the"}, True, True),
    ({"field": "title", "operator": "text", "value": "BROWN fox"}, False, True),
    ({"field": "n", "operator": "eq", "value": 5.0}, False, True),
    ({"field": "f", "operator": "eq", "value": 5}, False, True),
    ({"field": "s5", "operator": "eq", "value": 5}, False, False),
    ({"field": "n", "operator": "eq", "value": "5"}, False, False),
    ({"field": "flag", "operator": "eq", "value": 1}, False, False),
    ({"field": "one", "operator": "eq", "value": True}, False, False),
    ({"field": "flag", "operator": "eq", "value": True}, False, True),
    ({"field": "flag", "operator": "in", "value": [1, "true"]}, False, False),
    ({"field": "n", "operator": "contains", "value": 5}, False, True),
    ({"field": "s5", "operator": "gt", "value": 1}, False, False),
    ({"field": "when", "operator": "lt", "value": "2024-01-02"}, False, True),
    ({"field": "when", "operator": "gte", "value": "2024-01-01T22:00:00Z"}, False, True),
    ({"field": "when", "operator": "gt", "value": "2024-01-01T22:00:00Z"}, False, False),
    ({"field": "n", "operator": "gt", "value": "2000-01-01"}, False, False),
    ({"field": "title", "operator": "words", "value": "jumping foxes"}, False, True),
    ({"field": "title", "operator": "words", "value": "fox cat"}, False, False),
    ({"field": "notes", "operator": "words", "value": "quick jumps"}, False, True),
    ({"field": "notes", "operator": "phrase", "value": "fox jump"}, False, True),
    ({"field": "notes", "operator": "phrase", "value": "brown fox"}, False, False),
    ({"field": "notes", "operator": "phrase", "value": "runner runs"}, False, True),
    ({"field": "title", "operator": "phrase", "value": "fox brown"}, False, False),
    ({"field": "items[].sku", "operator": "eq", "value": "B-2"}, False, True),
    ({"field": "items.sku", "operator": "eq", "value": "B-2"}, False, False),
    ({"field": "items[].qty", "operator": "gt", "value": 6}, False, True),
    ({"field": "meta.deep.x", "operator": "eq", "value": "y"}, False, True),
    ({"field": 'meta."a b"', "operator": "eq", "value": 3}, False, True),
    (
        {
            "field": "loc",
            "operator": "geo_radius",
            "value": {"lat": 10, "lon": -179.5, "radius_m": 2e5},
        },
        False,
        True,
    ),
    (
        {
            "field": "loc",
            "operator": "geo_bounding_box",
            "value": {"top_left": {"lat": 20, "lon": 170}, "bottom_right": {"lat": 0, "lon": -170}},
        },
        False,
        True,
    ),
    (
        {
            "field": "loc",
            "operator": "geo_bounding_box",
            "value": {"top_left": {"lat": 20, "lon": -170}, "bottom_right": {"lat": 0, "lon": 170}},
        },
        False,
        False,
    ),
    (
        {
            "field": "loc",
            "operator": "geo_polygon",
            "value": {
                "points": [
                    {"lat": 0, "lon": 170},
                    {"lat": 20, "lon": 170},
                    {"lat": 20, "lon": 180},
                    {"lat": 0, "lon": 180},
                ]
            },
        },
        False,
        True,
    ),
    ({"NOT": [{"tags": "a"}, {"n": 6}]}, False, False),
    ({"NOT": [{"tags": "x"}, {"n": 6}]}, False, True),
    ({"OR": [{"tags": "x"}, {"n": 5}], "AND": [{"flag": True}]}, False, True),
]


@pytest.mark.parametrize(("raw", "ci", "expected"), SEMANTICS)
def test_reference_semantics(raw: dict[str, Any], ci: bool, expected: bool) -> None:
    node = parse_filter(raw)
    assert node is not None
    assert matches(node, P, case_insensitive=ci) is expected


@pytest.mark.parametrize("indexed", [True, False])
def test_geo_radius_boundary_agrees_with_qdrant(tmp_path: Path, indexed: bool) -> None:
    """Radii a hair above and below each point's distance: the haversine constants match."""
    rng = random.Random(3)
    points = [{"lat": rng.uniform(-70, 70), "lon": rng.uniform(-179, 179)} for _ in range(30)]
    docs = [{"document_id": f"g{i}", "loc": p} for i, p in enumerate(points)]
    shard = EdgeShard.create(
        str(tmp_path / "geo"),
        EdgeConfig(vectors={"v": EdgeVectorParams(size=4, distance=Distance.Cosine)}),
    )
    try:
        if indexed:
            shard.update(UpdateOperation.create_field_index("loc", payload_index_schema("geo")))
        shard.update(
            UpdateOperation.upsert_points(
                [Point(point_id(d["document_id"]), {"v": [1.0, 0, 0, 0]}, d) for d in docs]
            )
        )
        center = {"lat": 12.5, "lon": -33.25}
        indexes = {"loc": "geo"} if indexed else {}
        for p in points[:10]:
            d = haversine_m(GeoPoint(center["lat"], center["lon"]), GeoPoint(p["lat"], p["lon"]))
            for radius in (d * (1 + 1e-9), d * (1 - 1e-9)):
                raw = {
                    "field": "loc",
                    "operator": "geo_radius",
                    "value": {**center, "radius_m": radius},
                }
                node = parse_filter(raw)
                assert node is not None
                compiled = compile_filter(node, indexes=indexes)
                records, _ = shard.scroll(
                    ScrollRequest(limit=100, filter=compiled.qdrant, with_payload=True)
                )
                engine = {r.payload["document_id"] for r in records if r.payload}
                if indexed:
                    assert compiled.exact
                reference = {doc["document_id"] for doc in docs if matches(node, doc)}
                assert engine >= reference
                if compiled.exact:
                    assert engine == reference
    finally:
        shard.close()
