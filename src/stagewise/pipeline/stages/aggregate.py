"""aggregate: statistics over the pipeline's documents, globally or per group.

Result rows go to ``metadata["aggregations"]`` (and to the execution's ``facets``): one row
per group, ``{<group alias>: value, ..., <aggregation alias>: result}``; without `group_by`,
one row over all documents (also when there are none). Groups appear in the order their first
document came in unless `sort_by` names an alias to order them by (`sort_order`; rows whose
value is null go last; ties keep the first-seen order); `limit` then keeps the first rows.
Documents missing a group field are grouped under ``None`` for that field. With
`include_documents` the documents pass through unchanged, otherwise the stage outputs none.

Functions (``field`` is required by every function but ``count``; ``field_b`` by
``co_occurrence`` and ``correlation``):

* ``count``: documents; with ``field``, documents whose value is not null.
* ``count_distinct`` / ``collect_distinct``: distinct non-null values, in first-seen order;
  a list value contributes its elements. Identity is type-strict (``5 == 5.0``, ``"5" != 5``).
* ``collect``: every non-null value as is (lists stay lists), in incoming order.
* ``first`` / ``last``: the first / last non-null value in incoming (score) order.
* ``sum``, ``avg``, ``min``, ``max``, ``percentile``, ``stddev``, ``variance``: over the
  finite numbers only (booleans, strings, lists, NaN and infinities are skipped). ``sum`` of
  no numbers is 0 (an int when every number is an int); the others are null without numbers.
  ``percentile`` interpolates linearly between closest ranks (numpy's default), with
  `percentile_value` (default 50); ``stddev``/``variance`` are the population ones.
* ``frequency``: the `top_k` (default 10) most common values (lists contribute their
  elements) as ``[{"value", "count"}]``, most common first, ties in first-seen order.
* ``co_occurrence``: for each document, every pair of a distinct ``field`` value and a distinct
  ``field_b`` value (lists contribute their elements) counts once; the `top_k` most frequent
  pairs as ``[{"value_a", "value_b", "count"}]``, ties in first-seen order.
* ``correlation``: Pearson's r over the documents where both fields are finite numbers; null
  with fewer than two such documents or when either field is constant.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from stagewise.pipeline.docpath import get_field, sort_key
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)
from stagewise.pipeline.stages.group_by import value_key

CHECK_EVERY = 256
DEFAULT_TOP_K = 10
DEFAULT_PERCENTILE = 50.0

AggregationFunction = Literal[
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "first",
    "last",
    "collect",
    "collect_distinct",
    "percentile",
    "stddev",
    "variance",
    "frequency",
    "co_occurrence",
    "correlation",
]
_TWO_FIELDS = ("co_occurrence", "correlation")


class AggregationOperation(StageParams):
    function: AggregationFunction = Field(description="Aggregation function")
    field: str | None = Field(default=None, description="Dot path aggregated (not for count)")
    field_b: str | None = Field(
        default=None, description="Second dot path, for co_occurrence and correlation"
    )
    percentile_value: float | None = Field(
        default=None, ge=0.0, le=100.0, description="Percentile (0-100) for percentile; 50"
    )
    top_k: int | None = Field(
        default=None, ge=1, le=100, description="Entries for frequency and co_occurrence; 10"
    )
    alias: str = Field(description="Name of the result in each row")

    @model_validator(mode="after")
    def _check_fields(self) -> AggregationOperation:
        if self.function != "count" and not self.field:
            raise ValueError(f"aggregation '{self.alias}': {self.function} needs a field")
        if self.function in _TWO_FIELDS and not self.field_b:
            raise ValueError(f"aggregation '{self.alias}': {self.function} needs field_b")
        return self


class GroupByField(StageParams):
    field: str = Field(description="Dot path to group by")
    alias: str | None = Field(
        default=None, description="Name in the rows; defaults to the last path segment"
    )

    @property
    def name(self) -> str:
        return self.alias or self.field.rsplit(".", 1)[-1]


class AggregateParams(StageParams):
    aggregations: list[AggregationOperation] = Field(
        min_length=1, description="Aggregations computed (at least one)"
    )
    group_by: list[GroupByField] | None = Field(
        default=None, description="Fields to group by; None aggregates over all documents"
    )
    sort_by: str | None = Field(default=None, description="Alias the result rows are sorted by")
    sort_order: Literal["asc", "desc"] = Field(default="desc", description="Order for sort_by")
    limit: int | None = Field(default=None, ge=1, le=1000, description="Result rows kept")
    include_documents: bool = Field(
        default=False, description="Pass the documents through (otherwise none are output)"
    )

    @model_validator(mode="after")
    def _check_aliases(self) -> AggregateParams:
        names = [op.alias for op in self.aggregations] + [g.name for g in self.group_by or []]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"aliases must be unique; repeated: {duplicates}")
        if self.sort_by is not None and self.sort_by not in names:
            raise ValueError(f"sort_by '{self.sort_by}' is not one of the aliases {names}")
        return self


# ---------------------------------------------------------------------------------------------
# value helpers


def _finite(value: Any) -> float | int | None:
    """The value when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _elements(value: Any) -> Iterator[Any]:
    """A list's non-null elements, or the value itself when it is not null."""
    if isinstance(value, list):
        yield from (v for v in value if v is not None)
    elif value is not None:
        yield value


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    position = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(position)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = position - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def population_variance(values: list[float]) -> float:
    mean = math.fsum(values) / len(values)
    return math.fsum((v - mean) ** 2 for v in values) / len(values)


def pearson(pairs: list[tuple[float, float]]) -> float | None:
    if len(pairs) < 2:
        return None
    n = len(pairs)
    mean_a = math.fsum(a for a, _ in pairs) / n
    mean_b = math.fsum(b for _, b in pairs) / n
    cov = math.fsum((a - mean_a) * (b - mean_b) for a, b in pairs)
    var_a = math.fsum((a - mean_a) ** 2 for a, _ in pairs)
    var_b = math.fsum((b - mean_b) ** 2 for _, b in pairs)
    if var_a <= 0.0 or var_b <= 0.0:
        return None
    r = cov / math.sqrt(var_a * var_b)
    return max(-1.0, min(1.0, r))


class _Counter:
    """Counts values by type-strict identity, remembering the first-seen value and order."""

    def __init__(self) -> None:
        self.counts: dict[Any, int] = {}
        self.values: dict[Any, Any] = {}

    def add(self, key: Any, value: Any) -> None:
        if key not in self.counts:
            self.counts[key] = 0
            self.values[key] = value
        self.counts[key] += 1

    def top(self, k: int) -> list[tuple[Any, int]]:
        # Stable sort on count keeps first-seen order among equal counts.
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])[:k]
        return [(self.values[key], count) for key, count in ranked]


# ---------------------------------------------------------------------------------------------
# the stage


@register
class Aggregate(Stage):
    stage_id: ClassVar[str] = "aggregate"
    category: ClassVar[Category] = "reduce"
    description: ClassVar[str] = (
        "Compute statistics (count, sum, avg, percentiles, frequencies, correlation...) over "
        "the documents, globally or per group; results go to the stage metadata"
    )
    icon: ClassVar[str] = "sigma"
    Params = AggregateParams
    credits_per_document: ClassVar[float] = 0.0001

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: AggregateParams = self.params  # type: ignore[assignment]
        ctx.budget.check()
        group_fields = p.group_by or []
        groups: dict[tuple[Any, ...], tuple[list[Any], list[Candidate]]] = {}
        if not group_fields:
            groups[()] = ([], candidates)
        else:
            for i, c in enumerate(candidates):
                if i % CHECK_EVERY == 0:
                    ctx.budget.check()
                values = [get_field(c, g.field) for g in group_fields]
                key = tuple(value_key(v) for v in values)
                groups.setdefault(key, (values, []))[1].append(c)

        rows: list[dict[str, Any]] = []
        for values, members in groups.values():
            row: dict[str, Any] = {g.name: v for g, v in zip(group_fields, values, strict=True)}
            for op in p.aggregations:
                row[op.alias] = self.compute(ctx, op, members)
            rows.append(row)
        groups_total = len(rows)
        if p.sort_by is not None:
            alias = p.sort_by
            present = [r for r in rows if r.get(alias) is not None]
            absent = [r for r in rows if r.get(alias) is None]
            present.sort(key=lambda r: sort_key(r[alias]), reverse=p.sort_order == "desc")
            rows = present + absent
        if p.limit is not None and group_fields:
            rows = rows[: p.limit]
        return StageResult(
            list(candidates) if p.include_documents else [],
            metadata={
                "aggregations": rows,
                "group_count": groups_total,
                "input_count": len(candidates),
                "include_documents": p.include_documents,
            },
            facets=rows,
        )

    # -- one aggregation over one group ----------------------------------------------------------

    @staticmethod
    def _values(ctx: StageContext, members: list[Candidate], path: str) -> Iterator[Any]:
        for i, c in enumerate(members):
            if i % CHECK_EVERY == 0:
                ctx.budget.check()
            yield get_field(c, path)

    def compute(self, ctx: StageContext, op: AggregationOperation, members: list[Candidate]) -> Any:
        fn = op.function
        if fn == "count" and not op.field:
            return len(members)
        path = op.field or ""
        if fn in _TWO_FIELDS:
            return self._two_fields(ctx, op, members)
        if fn == "count":
            return sum(1 for v in self._values(ctx, members, path) if v is not None)
        if fn in ("count_distinct", "collect_distinct"):
            distinct: dict[Any, Any] = {}
            for value in self._values(ctx, members, path):
                for element in _elements(value):
                    distinct.setdefault(value_key(element), element)
            return len(distinct) if fn == "count_distinct" else list(distinct.values())
        if fn == "collect":
            return [v for v in self._values(ctx, members, path) if v is not None]
        if fn == "first":
            return next((v for v in self._values(ctx, members, path) if v is not None), None)
        if fn == "last":
            found = None
            for value in self._values(ctx, members, path):
                if value is not None:
                    found = value
            return found
        if fn == "frequency":
            counter = _Counter()
            for value in self._values(ctx, members, path):
                for element in _elements(value):
                    counter.add(value_key(element), element)
            return [{"value": v, "count": n} for v, n in counter.top(op.top_k or DEFAULT_TOP_K)]
        numbers = [n for v in self._values(ctx, members, path) if (n := _finite(v)) is not None]
        return self._numeric(ctx, op, numbers)

    @staticmethod
    def _numeric(ctx: StageContext, op: AggregationOperation, numbers: list[float | int]) -> Any:
        fn = op.function
        if fn == "sum":
            if all(isinstance(n, int) for n in numbers):
                return sum(numbers)
            return math.fsum(numbers)
        if not numbers:
            return None
        ctx.budget.check()
        floats = [float(n) for n in numbers]
        if fn == "avg":
            return math.fsum(floats) / len(floats)
        if fn == "min":
            return min(numbers)
        if fn == "max":
            return max(numbers)
        if fn == "percentile":
            q = DEFAULT_PERCENTILE if op.percentile_value is None else op.percentile_value
            return percentile(sorted(floats), q)
        if fn == "variance":
            return population_variance(floats)
        if fn == "stddev":
            return math.sqrt(population_variance(floats))
        raise AssertionError(f"unhandled aggregation function {fn}")

    def _two_fields(
        self, ctx: StageContext, op: AggregationOperation, members: list[Candidate]
    ) -> Any:
        path_a, path_b = op.field or "", op.field_b or ""
        if op.function == "correlation":
            pairs: list[tuple[float, float]] = []
            for i, c in enumerate(members):
                if i % CHECK_EVERY == 0:
                    ctx.budget.check()
                a, b = _finite(get_field(c, path_a)), _finite(get_field(c, path_b))
                if a is not None and b is not None:
                    pairs.append((float(a), float(b)))
            return pearson(pairs)
        counter = _Counter()
        for i, c in enumerate(members):
            if i % CHECK_EVERY == 0:
                ctx.budget.check()
            left = {value_key(v): v for v in _elements(get_field(c, path_a))}
            right = {value_key(v): v for v in _elements(get_field(c, path_b))}
            for ka, va in left.items():
                for kb, vb in right.items():
                    counter.add((ka, kb), (va, vb))
        return [
            {"value_a": pair[0], "value_b": pair[1], "count": n}
            for pair, n in counter.top(op.top_k or DEFAULT_TOP_K)
        ]
