"""sort_relevance, sample, group_by, aggregate and json_transform, checked by value."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from stagewise.errors import BudgetExceeded, StageFailed, ValidationFailed
from stagewise.pipeline.registry import get_stage, stage_definitions
from stagewise.pipeline.stage import Budget, Candidate, StageContext, StageResult
from stagewise.pipeline.stages.json_transform import JsonTransform

pytestmark = [pytest.mark.unit]


# ---------------------------------------------------------------------------------------------
# helpers


def cand(
    doc_id: str, score: float = 0.0, scores: dict[str, Any] | None = None, **meta: Any
) -> Candidate:
    return Candidate(
        document_id=doc_id,
        collection_id="col_x",
        score=score,
        doc={"metadata": meta},
        scores=scores or {},
    )


def make_ctx(
    inputs: dict[str, Any] | None = None,
    budget: Budget | None = None,
    context: dict[str, Any] | None = None,
) -> StageContext:
    return StageContext(
        stores=None,
        namespace_id="ns_x",
        collections=[],
        inputs=inputs or {},
        budget=budget or Budget(max_credits=None, max_time_ms=None),
        stage_name="s",
        stage_index=0,
        context=context or {},
    )


def run(
    stage_id: str,
    params: dict[str, Any],
    candidates: list[Candidate],
    ctx: StageContext | None = None,
) -> StageResult:
    cls = get_stage(stage_id)
    assert cls is not None, stage_id
    return cls(cls.Params.model_validate(params)).run(ctx or make_ctx(), candidates)


def ids(result: StageResult | list[Candidate]) -> list[str]:
    cands = result.candidates if isinstance(result, StageResult) else result
    return [c.document_id for c in cands]


class CountingBudget(Budget):
    """A budget that counts check() calls and raises on the `fail_at`-th one."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__(max_credits=None, max_time_ms=None)
        self.calls = 0
        self.fail_at = fail_at

    def check(self, upcoming_credits: float = 0.0) -> None:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise BudgetExceeded("Budget exceeded: Maximum time limit reached")


def test_stages_are_registered_with_their_categories() -> None:
    expected = {
        "sort_relevance": "sort",
        "sample": "reduce",
        "group_by": "reduce",
        "aggregate": "reduce",
        "json_transform": "apply",
    }
    for stage_id, category in expected.items():
        cls = get_stage(stage_id)
        assert cls is not None and cls.category == category
    definitions = {d["stage_id"]: d for d in stage_definitions()}
    assert definitions["sample"]["parameter_schema"]["properties"]["count"]["default"] == 10
    assert (
        definitions["group_by"]["parameter_schema"]["properties"]["output_mode"]["default"] == "all"
    )


# ---------------------------------------------------------------------------------------------
# sort_relevance


def test_sort_relevance_desc_and_asc_keep_ties_in_incoming_order() -> None:
    cands = [cand("a", 0.5), cand("b", 0.9), cand("c", 0.5), cand("d", 0.1)]
    assert ids(run("sort_relevance", {}, cands)) == ["b", "a", "c", "d"]
    assert ids(run("sort_relevance", {"direction": "asc"}, cands)) == ["d", "a", "c", "b"]
    # The SDK's unset direction (None) is the default, desc.
    assert ids(run("sort_relevance", {"direction": None}, cands)) == ["b", "a", "c", "d"]


def _rerank_cands() -> list[Candidate]:
    return [
        cand("a", 0.0, {"rerank": 0.2}),
        cand("b", 0.0, {}),  # missing
        cand("c", 0.0, {"rerank": 0.9}),
        cand("d", 0.0, {"rerank": "high"}),  # not a number: missing
        cand("e", 0.0, {"rerank": 0.5}),
        cand("f", 0.0, {"rerank": True}),  # a bool is not a score
    ]


@pytest.mark.parametrize(
    ("missing", "direction", "expected"),
    [
        ("bottom", "desc", ["c", "e", "a", "b", "d", "f"]),
        ("top", "desc", ["b", "d", "f", "c", "e", "a"]),
        ("preserve", "desc", ["c", "b", "e", "d", "a", "f"]),
        ("bottom", "asc", ["a", "e", "c", "b", "d", "f"]),
        ("preserve", "asc", ["a", "b", "e", "d", "c", "f"]),
    ],
)
def test_sort_relevance_missing_scores(missing: str, direction: str, expected: list[str]) -> None:
    result = run(
        "sort_relevance",
        {"score_field": "scores.rerank", "missing_score": missing, "direction": direction},
        _rerank_cands(),
    )
    assert ids(result) == expected
    assert result.metadata["missing_score_count"] == 3
    assert result.metadata["scored"] == 3


def test_sort_relevance_metadata_field_and_feature_address() -> None:
    cands = [cand("a", 0, year=2001), cand("b", 0, year=2020), cand("c", 0)]
    ctx = make_ctx()
    result = run(
        "sort_relevance",
        {"score_field": "metadata.year", "feature_address": "mixpeek://x@v1/y"},
        cands,
        ctx,
    )
    assert ids(result) == ["b", "a", "c"]
    assert any("feature_address is deprecated" in w for w in ctx.warnings)
    quiet = make_ctx()
    run("sort_relevance", {"feature_address": "null"}, cands, quiet)  # the SDK's unset value
    assert quiet.warnings == []
    with pytest.raises(ValidationError):
        run("sort_relevance", {"missing_score": "middle"}, cands)


# ---------------------------------------------------------------------------------------------
# sample


def hundred() -> list[Candidate]:
    return [cand(f"d{i:03d}", 1.0 - i / 100) for i in range(100)]


def test_sample_seeded_is_reproducible_and_keeps_incoming_order() -> None:
    cands = hundred()
    first = run("sample", {"count": 10, "seed": 42}, cands)
    again = run("sample", {"count": 10, "seed": 42}, cands)
    other = run("sample", {"count": 10, "seed": 43}, cands)
    assert ids(first) == ids(again)
    assert ids(first) != ids(other)
    # Hand-computed: the same draw with random.Random(42), restored to incoming order.
    expected = [f"d{i:03d}" for i in sorted(random.Random(42).sample(range(100), 10))]
    assert ids(first) == expected
    assert first.metadata["seed"] == 42 and first.metadata["seed_generated"] is False


def test_sample_unseeded_reports_a_replayable_seed() -> None:
    cands = hundred()
    result = run("sample", {"count": 7}, cands)
    assert result.metadata["seed_generated"] is True
    replay = run("sample", {"count": 7, "seed": result.metadata["seed"]}, cands)
    assert ids(result) == ids(replay)


def test_sample_count_above_input_returns_everything() -> None:
    cands = hundred()[:5]
    assert ids(run("sample", {"count": 10, "seed": 1}, cands)) == ids(cands)
    for strategy in ("reservoir", "stratified"):
        params = {"count": 10, "strategy": strategy, "stratify_by": "metadata.k"}
        assert ids(run("sample", params, cands)) == ids(cands)
    assert ids(run("sample", {"count": 3}, [])) == []


def test_sample_preserve_top_k() -> None:
    cands = hundred()
    result = run("sample", {"count": 5, "seed": 7, "preserve_top_k": 3}, cands)
    rest = sorted(random.Random(7).sample(range(97), 2))
    assert ids(result) == ["d000", "d001", "d002"] + [f"d{i + 3:03d}" for i in rest]
    assert result.metadata["preserved"] == 3 and result.metadata["sampled"] == 2
    ctx = make_ctx()
    capped = run("sample", {"count": 2, "preserve_top_k": 4, "seed": 1}, cands, ctx)
    assert ids(capped) == ["d000", "d001"]
    assert ctx.warnings


def test_sample_reservoir_reproducible_and_uniform() -> None:
    cands = [cand(f"d{i:02d}") for i in range(20)]
    a = run("sample", {"count": 5, "strategy": "reservoir", "seed": 3}, cands)
    b = run("sample", {"count": 5, "strategy": "reservoir", "seed": 3}, cands)
    assert ids(a) == ids(b) and len(ids(a)) == 5 and ids(a) == sorted(ids(a))
    # Every document has inclusion probability 5/20: 2000 seeded runs -> about 500 each.
    counts: Counter[str] = Counter()
    for seed in range(2000):
        counts.update(
            ids(run("sample", {"count": 5, "strategy": "reservoir", "seed": seed}, cands))
        )
    assert set(counts) == {c.document_id for c in cands}
    assert all(400 < n < 600 for n in counts.values()), counts


def _strata(sizes: dict[str, int]) -> list[Candidate]:
    out: list[Candidate] = []
    # Interleave strata so order restoration is visible.
    labels = [label for label, n in sizes.items() for _ in range(n)]
    random.Random(0).shuffle(labels)
    for i, label in enumerate(labels):
        out.append(cand(f"d{i:03d}", 0.0, cat=None if label == "<none>" else label))
    return out


def _per_stratum(result: StageResult) -> dict[Any, int]:
    return dict(Counter(c.doc["metadata"]["cat"] for c in result.candidates))


def test_sample_stratified_minimum_then_proportional() -> None:
    cands = _strata({"A": 90, "B": 8, "C": 2})
    params = {"count": 10, "strategy": "stratified", "stratify_by": "metadata.cat", "seed": 5}
    result = run("sample", params, cands)
    # min 1 each, then the 7 left go to A (targets 9 / 0.8 / 0.2).
    assert _per_stratum(result) == {"A": 8, "B": 1, "C": 1}
    assert ids(result) == sorted(ids(result))
    assert ids(result) == ids(run("sample", params, cands))
    two = run("sample", {**params, "min_per_stratum": 2}, cands)
    assert _per_stratum(two) == {"A": 6, "B": 2, "C": 2}
    meta = {s["value"]: (s["available"], s["selected"]) for s in two.metadata["strata"]}
    assert meta == {"A": (90, 6), "B": (8, 2), "C": (2, 2)}


def test_sample_stratified_proportional_and_null_stratum() -> None:
    cands = _strata({"A": 50, "B": 30, "<none>": 20})
    params = {"count": 10, "strategy": "stratified", "stratify_by": "metadata.cat", "seed": 9}
    assert _per_stratum(run("sample", {**params, "min_per_stratum": 0}, cands)) == {
        "A": 5,
        "B": 3,
        None: 2,
    }


def test_sample_stratified_minimums_above_quota() -> None:
    cands = _strata({"A": 4, "B": 2, "C": 3, "D": 1})
    ctx = make_ctx()
    params = {"count": 3, "strategy": "stratified", "stratify_by": "metadata.cat", "seed": 2}
    result = run("sample", params, cands, ctx)
    # Larger strata first: A (4), C (3), B (2).
    assert _per_stratum(result) == {"A": 1, "C": 1, "B": 1}
    assert any("min_per_stratum" in w for w in ctx.warnings)


def test_sample_stratified_requires_stratify_by() -> None:
    with pytest.raises(ValidationError, match="stratify_by"):
        run("sample", {"strategy": "stratified"}, [])
    with pytest.raises(ValidationError, match="stratify_by"):
        run("sample", {"strategy": "stratified", "stratify_by": "null"}, [])
    with pytest.raises(ValidationError):
        run("sample", {"count": 0}, [])


# ---------------------------------------------------------------------------------------------
# group_by


def _grouped() -> list[Candidate]:
    return [
        cand("a", 0.5, src="X"),
        cand("b", 0.9, src="Y"),
        cand("c", 0.7, src="X"),
        cand("d", 0.6),  # no src: the null group
        cand("e", 0.9, src="Y"),
        cand("f", 0.7, src="X"),
        cand("g", 0.2),
    ]


def test_group_by_first_one_per_group_by_best_member() -> None:
    result = run("group_by", {"group_by_field": "metadata.src", "output_mode": "first"}, _grouped())
    assert ids(result) == ["b", "c", "d"]
    assert result.metadata["group_count"] == 3
    assert result.metadata["group_sizes"] == [
        {"key": "Y", "size": 2, "kept": 2},
        {"key": "X", "size": 3, "kept": 3},
        {"key": None, "size": 2, "kept": 2},
    ]
    assert result.metadata["missing_field_count"] == 2


def test_group_by_all_annotates_and_limits() -> None:
    cands = _grouped()
    result = run("group_by", {"group_by_field": "metadata.src", "max_per_group": 2}, cands)
    assert ids(result) == ["b", "e", "c", "f", "d", "g"]
    groups = {c.document_id: c.doc["_group"] for c in result.candidates}
    assert groups["c"] == {"key": "X", "size": 3, "rank_in_group": 1}
    assert groups["f"] == {"key": "X", "size": 3, "rank_in_group": 2}
    assert groups["g"] == {"key": None, "size": 2, "rank_in_group": 2}
    assert result.metadata["truncated"] == 1
    assert all("_group" not in c.doc for c in cands)  # inputs are not modified
    flat = run("group_by", {"group_by_field": "metadata.src", "output_mode": "flatten"}, cands)
    assert ids(flat) == ["b", "e", "c", "f", "a", "d", "g"]
    assert all("_group" not in c.doc for c in flat.candidates)


def test_group_by_ties_between_groups_and_type_strict_keys() -> None:
    cands = [
        cand("q1", 0.8, k="Q"),
        cand("p1", 0.8, k="P"),
        cand("n1", 0.5, k=5),
        cand("n2", 0.4, k=5.0),
        cand("s1", 0.3, k="5"),
    ]
    result = run("group_by", {"group_by_field": "metadata.k", "output_mode": "first"}, cands)
    assert ids(result) == ["q1", "p1", "n1", "s1"]
    with pytest.raises(ValidationError):
        run("group_by", {"max_per_group": 0}, cands)


# ---------------------------------------------------------------------------------------------
# aggregate

PRICES: list[Any] = [10.0, 25.5, 3, "n/a", None, 99.9, 42, 7.25, True, float("nan"), 18, 60.0]
CATS = ["A", "B", "A", "C", "B", "A", "C", "A", "B", "A", "C", "B"]
TAGS: list[Any] = [
    ["red", "big"],
    ["blue"],
    ["red"],
    [],
    ["red", "blue"],
    "green",
    None,
    ["big", "big"],
    ["blue"],
    ["red"],
    ["green"],
    ["big"],
]
RATING = [1.0, 2.5, 0.5, 4.0, None, 9.0, 4.5, 1.5, 3.0, 2.0, 2.0, 6.0]


def shop() -> list[Candidate]:
    out = []
    for i in range(12):
        meta: dict[str, Any] = {"category": CATS[i], "tags": TAGS[i], "rating": RATING[i]}
        if PRICES[i] is not None:
            meta["price"] = PRICES[i]
        out.append(cand(f"d{i:02d}", 1.0 - i / 20, **meta))
    return out


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def numeric_prices(indices: range | list[int] = range(12)) -> list[float]:
    return [float(PRICES[i]) for i in indices if is_number(PRICES[i])]


def test_aggregate_global_statistics_match_numpy() -> None:
    ops = [
        {"function": "count", "alias": "n"},
        {"function": "count", "field": "metadata.price", "alias": "n_price"},
        {"function": "sum", "field": "metadata.price", "alias": "total"},
        {"function": "avg", "field": "metadata.price", "alias": "mean"},
        {"function": "min", "field": "metadata.price", "alias": "lo"},
        {"function": "max", "field": "metadata.price", "alias": "hi"},
        {
            "function": "percentile",
            "field": "metadata.price",
            "percentile_value": 90,
            "alias": "p90",
        },
        {"function": "percentile", "field": "metadata.price", "alias": "median"},
        {"function": "stddev", "field": "metadata.price", "alias": "sd"},
        {"function": "variance", "field": "metadata.price", "alias": "var"},
        {
            "function": "correlation",
            "field": "metadata.price",
            "field_b": "metadata.rating",
            "alias": "r",
        },
    ]
    result = run("aggregate", {"aggregations": ops}, shop())
    assert result.candidates == []
    [row] = result.metadata["aggregations"]
    assert result.facets == [row]
    prices = numeric_prices()
    assert prices == [10.0, 25.5, 3.0, 99.9, 42.0, 7.25, 18.0, 60.0]
    assert row["n"] == 12
    assert row["n_price"] == 11  # every present value, numeric or not
    assert row["total"] == pytest.approx(sum(prices))
    assert row["mean"] == pytest.approx(statistics.fmean(prices))
    assert row["lo"] == 3 and row["hi"] == 99.9
    assert row["p90"] == pytest.approx(float(np.percentile(prices, 90)))
    assert row["median"] == pytest.approx(statistics.median(prices))
    assert row["sd"] == pytest.approx(float(np.std(prices)))
    assert row["var"] == pytest.approx(statistics.pvariance(prices))
    pairs = [
        (float(PRICES[i]), RATING[i])
        for i in range(12)
        if is_number(PRICES[i]) and RATING[i] is not None
    ]
    a, b = zip(*pairs, strict=True)
    assert row["r"] == pytest.approx(float(np.corrcoef(a, b)[0, 1]))


def test_aggregate_categorical_functions() -> None:
    ops = [
        {"function": "count_distinct", "field": "metadata.category", "alias": "cats"},
        {"function": "count_distinct", "field": "metadata.tags", "alias": "n_tags"},
        {"function": "collect_distinct", "field": "metadata.tags", "alias": "tags"},
        {"function": "collect", "field": "metadata.category", "alias": "all_cats"},
        {"function": "first", "field": "metadata.price", "alias": "first_price"},
        {"function": "last", "field": "metadata.rating", "alias": "last_rating"},
        {"function": "frequency", "field": "metadata.tags", "top_k": 3, "alias": "freq"},
        {
            "function": "co_occurrence",
            "field": "metadata.category",
            "field_b": "metadata.tags",
            "top_k": 2,
            "alias": "pairs",
        },
    ]
    [row] = run("aggregate", {"aggregations": ops}, shop()).metadata["aggregations"]
    assert row["cats"] == 3
    assert row["n_tags"] == 4
    assert row["tags"] == ["red", "big", "blue", "green"]
    assert row["all_cats"] == CATS
    assert row["first_price"] == 10.0 and row["last_rating"] == 6.0
    # red: 4 docs; big: 4 occurrences (d07 has it twice); blue: 3; green: 2. Ties: first seen.
    assert row["freq"] == [
        {"value": "red", "count": 4},
        {"value": "big", "count": 4},
        {"value": "blue", "count": 3},
    ]
    # (A, red): d00, d02, d09; (B, blue): d01, d04, d08 -> tie, (A, red) seen first.
    assert row["pairs"] == [
        {"value_a": "A", "value_b": "red", "count": 3},
        {"value_a": "B", "value_b": "blue", "count": 3},
    ]


def test_aggregate_group_by_sort_and_limit() -> None:
    params = {
        "aggregations": [
            {"function": "count", "alias": "n"},
            {"function": "avg", "field": "metadata.price", "alias": "mean_price"},
        ],
        "group_by": [{"field": "metadata.category"}],
        "sort_by": "mean_price",
        "sort_order": "desc",
        "limit": 2,
        "include_documents": True,
    }
    cands = shop()
    result = run("aggregate", params, cands)
    assert result.candidates == cands
    rows = result.metadata["aggregations"]
    means = {
        cat: statistics.fmean(numeric_prices([i for i in range(12) if CATS[i] == cat]))
        for cat in "ABC"
    }
    top2 = sorted(means, key=lambda k: -means[k])[:2]
    assert [r["category"] for r in rows] == top2
    for r in rows:
        assert r["n"] == CATS.count(r["category"])
        assert r["mean_price"] == pytest.approx(means[r["category"]])
    assert result.metadata["group_count"] == 3
    # Without sort_by, groups come in first-seen order; asc on a count.
    asc = run("aggregate", {**params, "sort_by": "n", "sort_order": "asc", "limit": None}, cands)
    assert [(r["category"], r["n"]) for r in asc.metadata["aggregations"]] == [
        ("C", 3),
        ("B", 4),
        ("A", 5),
    ]
    plain = run("aggregate", {**params, "sort_by": None, "limit": None}, cands)
    assert [r["category"] for r in plain.metadata["aggregations"]] == ["A", "B", "C"]


def test_aggregate_missing_group_field_and_empty_input() -> None:
    cands = [cand("a", 1, k="x"), cand("b", 1), cand("c", 1, k="x")]
    params = {
        "aggregations": [{"function": "count", "alias": "n"}],
        "group_by": [{"field": "metadata.k", "alias": "key"}],
    }
    rows = run("aggregate", params, cands).metadata["aggregations"]
    assert rows == [{"key": "x", "n": 2}, {"key": None, "n": 1}]
    assert run("aggregate", params, []).metadata["aggregations"] == []
    ops = [
        {"function": "count", "alias": "n"},
        {"function": "sum", "field": "metadata.v", "alias": "s"},
        {"function": "avg", "field": "metadata.v", "alias": "m"},
        {"function": "frequency", "field": "metadata.v", "alias": "f"},
        {"function": "correlation", "field": "metadata.v", "field_b": "score", "alias": "r"},
    ]
    empty = run("aggregate", {"aggregations": ops}, [])
    assert empty.metadata["aggregations"] == [{"n": 0, "s": 0, "m": None, "f": [], "r": None}]


@pytest.mark.parametrize(
    "params",
    [
        {"aggregations": []},
        {"aggregations": [{"function": "median", "field": "score", "alias": "m"}]},
        {"aggregations": [{"function": "sum", "alias": "s"}]},
        {"aggregations": [{"function": "correlation", "field": "score", "alias": "r"}]},
        {
            "aggregations": [
                {"function": "percentile", "field": "score", "percentile_value": 101, "alias": "p"}
            ]
        },
        {
            "aggregations": [
                {"function": "count", "alias": "n"},
                {"function": "count", "alias": "n"},
            ]
        },
        {"aggregations": [{"function": "count", "alias": "n"}], "sort_by": "other"},
        {"aggregations": [{"function": "count", "alias": "n"}], "sort_order": "up"},
        {"aggregations": [{"function": "count", "alias": "n"}], "surprise": 1},
    ],
)
def test_aggregate_rejects_invalid_parameters(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        run("aggregate", params, [])


# ---------------------------------------------------------------------------------------------
# json_transform

TEMPLATE = (
    '{"id": "{{ DOC.document_id }}", "title": {{ DOC.metadata.title | tojson }}, '
    '"q": {{ INPUT.query | tojson }}, "alias": {{ context.prev | length }}, '
    '"rank": {{ DOC.score * 10 }}}'
)


def test_json_transform_renders_documents() -> None:
    cands = [
        cand("a", 0.5, {"rerank": 1.0}, title='Say "hi" <b>'),
        cand("b", 0.25, title="Two"),
    ]
    ctx = make_ctx(inputs={"query": "cats"}, context={"prev": [1, 2, 3]})
    result = run("json_transform", {"template": TEMPLATE}, cands, ctx)
    assert [c.doc for c in result.candidates] == [
        {"id": "a", "title": 'Say "hi" <b>', "q": "cats", "alias": 3, "rank": 5.0},
        {"id": "b", "title": "Two", "q": "cats", "alias": 3, "rank": 2.5},
    ]
    first = result.candidates[0]
    assert (first.document_id, first.collection_id, first.score) == ("a", "col_x", 0.5)
    assert first.scores == {"rerank": 1.0}
    assert result.metadata == {"transformed": 2, "dropped": 0}
    assert cands[0].doc == {"metadata": {"title": 'Say "hi" <b>'}}  # input untouched


def test_json_transform_default_template() -> None:
    c = Candidate(document_id="d1", collection_id="col_x", score=0.75, doc={"content": "hello"})
    result = run("json_transform", {}, [c])
    assert result.candidates[0].doc == {"id": "d1", "content": "hello", "score": 0.75}


def test_json_transform_drops_failures() -> None:
    cands = [cand("ok", 1, title="T"), cand("missing", 1), cand("ok2", 1, title="U")]
    ctx = make_ctx(inputs={"query": "q"}, context={"prev": []})
    result = run("json_transform", {"template": TEMPLATE}, cands, ctx)
    assert ids(result) == ["ok", "ok2"]
    assert result.metadata["dropped"] == 1
    assert result.metadata["first_error_document_id"] == "missing"
    assert result.metadata["first_error"].startswith("render failed: ")
    assert ctx.warnings
    not_object = run("json_transform", {"template": "[{{ DOC.score }}]"}, cands)
    assert not_object.candidates == [] and not_object.metadata["dropped"] == 3
    assert "not an object" in not_object.metadata["first_error"]
    bad_json = run("json_transform", {"template": '{"a": {{ DOC.document_id }}}'}, cands)
    assert bad_json.metadata["dropped"] == 3
    assert "not valid JSON" in bad_json.metadata["first_error"]


def test_json_transform_sandbox_escape_is_dropped() -> None:
    for template in (
        '{"x": "{{ \'\'.__class__.__mro__ }}"}',
        '{"x": "{{ DOC.metadata.__class__.__subclasses__() }}"}',
    ):
        result = run("json_transform", {"template": template}, [cand("a", 1, t=1)])
        assert result.candidates == []
        assert result.metadata["dropped"] == 1
        assert "SecurityError" in result.metadata["first_error"]


def test_json_transform_fail_on_error_and_syntax_check() -> None:
    with pytest.raises(StageFailed, match="missing"):
        run("json_transform", {"template": TEMPLATE, "fail_on_error": True}, [cand("missing", 1)])
    params = JsonTransform.Params.model_validate({"template": '{"a": {{ DOC.x '})
    with pytest.raises(ValidationFailed) as err:
        JsonTransform.check_templates(params)
    assert err.value.code == "invalid_template"
    JsonTransform.check_templates(JsonTransform.Params.model_validate({"template": TEMPLATE}))
    with pytest.raises(ValidationFailed):
        JsonTransform(params).run(make_ctx(), [cand("a", 1)])


# ---------------------------------------------------------------------------------------------
# budgets


def ten_thousand() -> list[Candidate]:
    return [cand(f"d{i:05d}", 1 / (i + 1), cat=f"c{i % 37}", v=i) for i in range(10_000)]


AGGREGATE_BIG = {
    "aggregations": [
        {"function": "avg", "field": "metadata.v", "alias": "m"},
        {"function": "frequency", "field": "metadata.cat", "alias": "f"},
    ],
    "group_by": [{"field": "metadata.cat"}],
}
SAMPLE_BIG = {"count": 100, "strategy": "stratified", "stratify_by": "metadata.cat", "seed": 1}


@pytest.mark.parametrize(
    ("stage_id", "params"),
    [
        ("aggregate", AGGREGATE_BIG),
        ("sample", SAMPLE_BIG),
        ("sample", {"count": 100, "strategy": "reservoir"}),
        ("group_by", {"group_by_field": "metadata.cat"}),
        ("sort_relevance", {}),
        ("json_transform", {"template": '{"a": 1}'}),
    ],
)
def test_time_budget_is_enforced(stage_id: str, params: dict[str, Any]) -> None:
    cands = ten_thousand()
    with pytest.raises(BudgetExceeded):
        run(stage_id, params, cands, make_ctx(budget=Budget(max_credits=None, max_time_ms=0)))
    # The checks happen inside the loops, not only once: a budget that runs out on its
    # third check stops the stage part-way, and a full run checks many times.
    with pytest.raises(BudgetExceeded):
        run(stage_id, params, cands, make_ctx(budget=CountingBudget(fail_at=3)))
    counting = CountingBudget()
    run(stage_id, params, cands, make_ctx(budget=counting))
    assert counting.calls >= 10_000 // 256


def test_aggregate_big_run_values() -> None:
    rows = run("aggregate", AGGREGATE_BIG, ten_thousand()).metadata["aggregations"]
    assert len(rows) == 37
    first = rows[0]
    values = [i for i in range(10_000) if i % 37 == 0]
    assert first["cat"] == "c0" and first["m"] == pytest.approx(statistics.fmean(values))
    assert first["f"] == [{"value": "c0", "count": len(values)}]
