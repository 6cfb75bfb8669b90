"""group_by: group documents by a field value and keep the best few of each group.

* Identity of values is type-strict: ``5`` and ``5.0`` are one group, ``"5"`` and ``5`` are
  two, ``True`` and ``1`` are two; lists and objects are compared by their JSON text. Documents
  without the field (or with null) form one group whose key is ``None``.
* Within a group the members are sorted by `score`, highest first (NaN counts as lowest); equal
  scores keep their incoming order. Only the first `max_per_group` members are kept.
* Groups are ordered by their best member: the higher best score first, and on equal best
  scores the group whose best member came first upstream.
* ``output_mode``: ``first`` returns the best member of each group; ``all`` returns the kept
  members group after group, each with ``_group = {"key", "size", "rank_in_group"}`` (``size``
  is the number of input documents in the group, before `max_per_group`; ``rank_in_group`` is
  1-based); ``flatten`` returns the same documents as ``all`` without the ``_group`` field.

The ``_group`` field is set on copies of the candidates, so earlier stages' outputs (which
templates can read) are left untouched.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, ClassVar, Literal

from pydantic import Field

from stagewise.pipeline.docpath import get_field
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)

GROUP_SIZES_REPORTED = 50


def value_key(value: Any) -> tuple[str, Any]:
    """Hashable, type-strict identity of a field value ("5" != 5, True != 1, 5 == 5.0)."""
    if value is None:
        return ("z", None)
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        number = float(value)
        return ("nan", None) if math.isnan(number) else ("n", number)
    if isinstance(value, str):
        return ("s", value)
    return ("j", json.dumps(value, sort_keys=True, default=str))


def score_of(c: Candidate) -> float:
    """The candidate's score for ordering; NaN orders last."""
    return -math.inf if math.isnan(c.score) else c.score


class GroupByParams(StageParams):
    group_by_field: str = Field(
        default="source_object_id", description="Dot path whose value groups the documents"
    )
    max_per_group: int = Field(
        default=10, ge=1, le=1000, description="Documents kept per group, best scores first"
    )
    output_mode: Literal["first", "all", "flatten"] = Field(
        default="all",
        description="'first': the best document per group; 'all': the kept documents with "
        "_group metadata; 'flatten': the kept documents without it",
    )


@dataclasses.dataclass
class _Group:
    key: Any
    members: list[tuple[int, Candidate]] = dataclasses.field(default_factory=list)


@register
class GroupBy(Stage):
    stage_id: ClassVar[str] = "group_by"
    category: ClassVar[Category] = "reduce"
    description: ClassVar[str] = (
        "Group documents by a field value, keep the highest-scoring documents of each group, "
        "and order the groups by their best document"
    )
    icon: ClassVar[str] = "group"
    Params = GroupByParams
    credits_per_document: ClassVar[float] = 0.0001

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: GroupByParams = self.params  # type: ignore[assignment]
        ctx.budget.check()
        groups: dict[tuple[str, Any], _Group] = {}
        for i, c in enumerate(candidates):
            if i % 256 == 0:
                ctx.budget.check()
            value = get_field(c, p.group_by_field)
            group = groups.get(value_key(value))
            if group is None:
                group = groups[value_key(value)] = _Group(key=value)
            group.members.append((i, c))
        # (group, kept members, incoming index of the best member)
        ordered_groups: list[tuple[_Group, list[Candidate], int]] = []
        for n, group in enumerate(groups.values()):
            if n % 256 == 0:
                ctx.budget.check()
            # Stable sort: equal scores keep incoming order (members are in incoming order).
            ranked = sorted(group.members, key=lambda m: -score_of(m[1]))
            top = ranked[: p.max_per_group]
            ordered_groups.append((group, [c for _, c in top], top[0][0]))
        # Best member first; among equal best scores, the earliest best member upstream.
        ordered_groups.sort(key=lambda g: (-score_of(g[1][0]), g[2]))

        out: list[Candidate] = []
        for group, kept, _ in ordered_groups:
            if p.output_mode == "first":
                out.append(kept[0])
            elif p.output_mode == "flatten":
                out.extend(kept)
            else:
                size = len(group.members)
                for rank, c in enumerate(kept, start=1):
                    info = {"key": group.key, "size": size, "rank_in_group": rank}
                    out.append(dataclasses.replace(c, doc={**c.doc, "_group": info}))
        null_group = groups.get(value_key(None))
        return StageResult(
            out,
            metadata={
                "group_by_field": p.group_by_field,
                "output_mode": p.output_mode,
                "max_per_group": p.max_per_group,
                "group_count": len(ordered_groups),
                "group_sizes": [
                    {"key": g.key, "size": len(g.members), "kept": len(kept)}
                    for g, kept, _ in ordered_groups[:GROUP_SIZES_REPORTED]
                ],
                "missing_field_count": len(null_group.members) if null_group else 0,
                "truncated": sum(len(g.members) - len(kept) for g, kept, _ in ordered_groups),
            },
        )
