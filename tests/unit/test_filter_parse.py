"""Parsing Mixpeek LogicalOperator filters: structure, shorthand, dynamic values, errors."""

from __future__ import annotations

from typing import Any

import pytest

from stagewise.domain.filters import (
    OPERATORS,
    And,
    DateTimeBound,
    GeoPoint,
    GeoPolygon,
    GeoRadius,
    Leaf,
    Not,
    Or,
    combine_and,
    fields_of,
    parse_datetime,
    parse_filter,
)
from stagewise.errors import ValidationFailed

pytestmark = [pytest.mark.unit]


def leaf(field: str, op: str = "eq", value: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"field": field, "operator": op}
    if value is not None:
        out["value"] = value
    return out


# ---------------------------------------------------------------------------------------------
# structure


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"AND": []},
        {"AND": [], "OR": [], "NOT": [], "case_sensitive": False},
        {"AND": [{"OR": []}, {}]},
        {"AND": None, "case_sensitive": True},
    ],
)
def test_empty_filters_parse_to_none(raw: Any) -> None:
    assert parse_filter(raw) is None


def test_a_leaf_at_the_top() -> None:
    assert parse_filter(leaf("metadata.category", "eq", "news")) == Leaf(
        "metadata.category", "eq", "news"
    )


def test_group_keys_are_anded_and_not_means_none_match() -> None:
    node = parse_filter(
        {
            "AND": [leaf("a", "eq", 1)],
            "OR": [leaf("b", "eq", 2), leaf("c", "eq", 3)],
            "NOT": [leaf("d", "eq", 4), leaf("e", "eq", 5)],
            "metadata.title": "x",
        }
    )
    assert node == And(
        (
            Leaf("a", "eq", 1),
            Or((Leaf("b", "eq", 2), Leaf("c", "eq", 3))),
            Not(Or((Leaf("d", "eq", 4), Leaf("e", "eq", 5)))),
            Leaf("metadata.title", "eq", "x"),
        )
    )


def test_nested_groups_flatten_where_equivalent() -> None:
    node = parse_filter(
        {"AND": [{"AND": [leaf("a", "eq", 1), leaf("b", "eq", 2)]}, {"OR": [leaf("c", "eq", 3)]}]}
    )
    assert node == And((Leaf("a", "eq", 1), Leaf("b", "eq", 2), Leaf("c", "eq", 3)))
    assert parse_filter({"NOT": [leaf("a", "eq", 1)]}) == Not(Leaf("a", "eq", 1))
    assert parse_filter({"OR": [{"OR": [leaf("a", "eq", 1)]}, leaf("b", "eq", 2)]}) == Or(
        (Leaf("a", "eq", 1), Leaf("b", "eq", 2))
    )


def test_shorthand_is_equality() -> None:
    assert parse_filter({"metadata.title": "x"}) == Leaf("metadata.title", "eq", "x")
    assert parse_filter({"a": 1, "b": True}) == And((Leaf("a", "eq", 1), Leaf("b", "eq", True)))
    assert parse_filter({"a": None}) == Leaf("a", "is_null")


@pytest.mark.parametrize("value", [[1, 2], {"b": 1}])
def test_shorthand_needs_a_scalar(value: Any) -> None:
    with pytest.raises(ValidationFailed, match="shorthand condition on 'a'"):
        parse_filter({"a": value})


def test_the_sdks_stray_case_sensitive_key_on_leaves_is_accepted() -> None:
    raw = {"field": "metadata.x", "operator": "eq", "value": "A", "case_sensitive": False}
    assert parse_filter(raw) == Leaf("metadata.x", "eq", "A")
    raw["case_sensitive"] = True
    assert parse_filter({"AND": [raw], "case_sensitive": False}) == Leaf("metadata.x", "eq", "A")


def test_operator_defaults_to_eq_and_is_case_insensitive() -> None:
    assert parse_filter({"field": "a", "value": 1}) == Leaf("a", "eq", 1)
    assert parse_filter({"field": "a", "operator": " GTE ", "value": 1}) == Leaf("a", "gte", 1)


def test_null_comparisons() -> None:
    assert parse_filter({"field": "a", "operator": "eq", "value": None}) == Leaf("a", "is_null")
    assert parse_filter({"field": "a", "operator": "ne", "value": None}) == Not(
        Leaf("a", "is_null")
    )
    assert parse_filter(leaf("a", "exists")) == Leaf("a", "exists")
    assert parse_filter({"field": "a", "operator": "exists", "value": True}) == Leaf("a", "exists")
    assert parse_filter({"field": "a", "operator": "exists", "value": False}) == Not(
        Leaf("a", "exists")
    )
    assert parse_filter({"field": "a", "operator": "is_null", "value": False}) == Not(
        Leaf("a", "is_null")
    )


def test_values_are_normalised() -> None:
    assert parse_filter(leaf("a", "in", ["x", "x", 1, 1.0, True])) == Leaf(
        "a", "in", ("x", 1, 1.0, True)
    )
    node = parse_filter(leaf("a", "gt", "2024-01-02T03:04:05+01:00"))
    assert node == Leaf("a", "gt", DateTimeBound("2024-01-02T02:04:05.000000Z", 1704161045000000))
    assert parse_filter(leaf("a", "lt", 2.5)) == Leaf("a", "lt", 2.5)


def test_paths() -> None:
    for path in ["a", "metadata.a.b", "items[].sku", 'metadata."a b".c', "é-x_1.y"]:
        assert parse_filter({"field": path, "value": 1}) == Leaf(path, "eq", 1)
    assert fields_of(parse_filter({"OR": [{"a.b": 1}, {"NOT": [{"c": 2}]}]})) == {"a.b", "c"}


# ---------------------------------------------------------------------------------------------
# dynamic values


def test_dynamic_values_resolve_from_inputs() -> None:
    inputs = {"user_id": "u1", "nested": {"ids": ["a", "b"]}, "n": 0}
    raw = {
        "AND": [
            {"field": "metadata.owner", "value": {"type": "dynamic", "field": "inputs.user_id"}},
            {
                "field": "metadata.tag",
                "operator": "in",
                "value": {"type": "dynamic", "field": "inputs.nested.ids"},
            },
            {"field": "metadata.n", "operator": "gte", "value": {"type": "dynamic", "field": "n"}},
            {"metadata.short": {"type": "dynamic", "field": "inputs.user_id"}},
            {
                "field": "metadata.x",
                "operator": "in",
                "value": [{"type": "dynamic", "field": "inputs.user_id"}, "literal"],
            },
        ]
    }
    assert parse_filter(raw, inputs) == And(
        (
            Leaf("metadata.owner", "eq", "u1"),
            Leaf("metadata.tag", "in", ("a", "b")),
            Leaf("metadata.n", "gte", 0),
            Leaf("metadata.short", "eq", "u1"),
            Leaf("metadata.x", "in", ("u1", "literal")),
        )
    )


@pytest.mark.parametrize("inputs", [None, {}, {"user": {}}])
def test_a_missing_dynamic_input_is_a_clear_error(inputs: Any) -> None:
    raw = {"AND": [{"field": "owner", "value": {"type": "dynamic", "field": "inputs.user.id"}}]}
    with pytest.raises(ValidationFailed) as info:
        parse_filter(raw, inputs)
    err = info.value
    assert err.code == "filter_input_missing"
    assert err.status == 422
    assert "inputs.user.id" in err.message and "filters.AND[0]" in err.message
    assert err.details["input"] == "inputs.user.id"


# ---------------------------------------------------------------------------------------------
# errors


def test_unknown_operator_names_the_field_and_lists_valid_ones() -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_filter({"OR": [leaf("metadata.x", "equals", 1)]})
    err = info.value
    assert err.code == "invalid_filter"
    assert "'metadata.x'" in err.message and "'equals'" in err.message
    assert "filters.OR[0]" in err.message
    for op in OPERATORS:
        assert op in err.message
    assert err.details["valid_operators"] == list(OPERATORS)
    assert err.details["field"] == "metadata.x"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ([leaf("a", "eq", 1)], "expected an object"),
        ({"AND": leaf("a", "eq", 1)}, "'AND' must be a list"),
        ({"AND": ["x"]}, "expected an object"),
        ({"case_sensitive": "no"}, "'case_sensitive' must be a boolean"),
        ({"field": "", "value": 1}, "non-empty 'field'"),
        ({"field": 3, "value": 1}, "non-empty 'field'"),
        ({"field": "a", "value": 1, "op": "eq"}, "unexpected keys ['op']"),
        ({"field": "a b", "value": 1}, "not a valid field path"),
        ({"field": "a..b", "value": 1}, "not a valid field path"),
        ({"field": "a.", "value": 1}, "not a valid field path"),
        ({"a b": 1}, "neither AND/OR/NOT nor a valid field path"),
        ({"field": "a", "operator": 3, "value": 1}, "unknown operator 3"),
        (leaf("a", "eq", [1]), "use 'in' for a list"),
        (leaf("a", "eq", {"x": 1}), "needs a string, number or boolean"),
        (leaf("a", "eq", float("nan")), "finite number"),
        (leaf("a", "contains"), "needs a value"),
        (leaf("a", "in", "x"), "needs a list of values"),
        (leaf("a", "in", [[1]]), "needs a string, number or boolean"),
        (leaf("a", "in", [None]), "needs a string, number or boolean"),
        (leaf("a", "gt", True), "needs a number or an RFC 3339 date-time"),
        (leaf("a", "gt", "yesterday"), "needs a number or an RFC 3339 date-time"),
        (leaf("a", "lte", float("inf")), "needs a number or an RFC 3339 date-time"),
        (leaf("a", "starts_with", 5), "needs a string value"),
        (leaf("a", "regex", "("), "not a valid regular expression"),
        (leaf("a", "regex", "a" * 1001), "longer than 1000"),
        (leaf("a", "text", ""), "non-empty string"),
        (leaf("a", "words", "  ,; "), "at least one word"),
        (leaf("a", "phrase", "!!"), "at least one word"),
        (leaf("a", "exists", "yes"), "takes no value"),
        (leaf("g", "geo_radius", {"lat": 1, "lon": 2}), "positive 'radius_m'"),
        (leaf("g", "geo_radius", {"lat": 1, "lon": 2, "radius_m": -5}), "positive 'radius_m'"),
        (leaf("g", "geo_radius", {"lat": 91, "lon": 2, "radius_m": 5}), "out of range"),
        (leaf("g", "geo_radius", {"lat": "1", "lon": 2, "radius_m": 5}), '{"lat": number'),
        (leaf("g", "geo_radius", [1, 2]), "needs {"),
        (leaf("g", "geo_bounding_box", {"top_left": {"lat": 1, "lon": 2}}), "'bottom_right'"),
        (
            leaf("g", "geo_bounding_box", {"top_left": {"lat": 1, "lon": 200}, "bottom_right": {}}),
            "out of range",
        ),
        (leaf("g", "geo_polygon", {"points": [{"lat": 1, "lon": 2}] * 3}), "3 distinct points"),
        (leaf("g", "geo_polygon", {"pts": []}), "needs {"),
    ],
)
def test_malformed_filters(raw: Any, fragment: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_filter(raw)
    assert fragment in info.value.message
    assert info.value.status == 422


def test_geo_values() -> None:
    assert parse_filter(leaf("g", "geo_radius", {"lat": 1, "lon": 2, "radius_m": 10})) == Leaf(
        "g", "geo_radius", GeoRadius(GeoPoint(1.0, 2.0), 10.0)
    )
    triangle = [{"lat": 0, "lon": 0}, {"lat": 0, "lon": 1}, {"lat": 1, "lon": 0}]
    closed = GeoPolygon(
        (GeoPoint(0.0, 0.0), GeoPoint(0.0, 1.0), GeoPoint(1.0, 0.0), GeoPoint(0.0, 0.0))
    )
    assert parse_filter(leaf("g", "geo_polygon", {"points": triangle})) == Leaf(
        "g", "geo_polygon", closed
    )
    assert parse_filter(leaf("g", "geo_polygon", [*triangle, triangle[0]])) == Leaf(
        "g", "geo_polygon", closed
    )


# ---------------------------------------------------------------------------------------------
# helpers


def test_combine_and() -> None:
    a, b, c = Leaf("a", "eq", 1), Leaf("b", "eq", 2), Leaf("c", "eq", 3)
    assert combine_and() is None
    assert combine_and(None, a, None) == a
    assert combine_and(And((a, b)), c) == And((a, b, c))
    assert combine_and(Or((a, b)), None, c) == And((Or((a, b)), c))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", 1704164645000000),
        ("2024-01-02 03:04:05+01:00", 1704161045000000),
        ("2024-01-02T03:04:05.1234567", 1704164645123456),
        ("2024-01-02", 1704153600000000),
        ("2024-01-02 03:04", 1704164640000000),
        ("2024-01-02T03:04Z", None),
        ("2024-02-30", None),
        ("20240102", None),
        ("not a date", None),
    ],
)
def test_parse_datetime(text: str, expected: int | None) -> None:
    assert parse_datetime(text) == expected
