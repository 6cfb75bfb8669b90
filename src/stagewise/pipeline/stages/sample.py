"""sample: keep `count` documents chosen at random (uniform, stratified, or reservoir).

* The output is at most `count` documents and keeps their incoming relative order. With
  `count` at least the number of documents, every document is returned unchanged.
* `preserve_top_k`: the first k incoming documents are kept as they are (k is capped at
  `count`, with a warning when it is larger) and the rest of the quota is sampled from the
  documents after them.
* Randomness comes from ``random.Random(seed)``: the same seed and input give the same output.
  Without a seed one is drawn, used, and reported as ``metadata["seed"]`` (with
  ``seed_generated: true``) so the run can be replayed.
* ``random``: a uniform sample without replacement. ``reservoir``: Algorithm R over the
  documents in incoming order (also uniform; a different draw from ``random`` for a seed).
* ``stratified``: strata are the values of `stratify_by` (type-strict identity as in
  group_by; documents without the field form one null stratum). Each stratum first gets
  ``min(min_per_stratum, its size)`` documents; the rest of the quota goes one at a time to
  the stratum furthest below its proportional share ``quota * size / total`` (ties: larger
  stratum, then the one seen first). When the minimums alone exceed the quota, they are
  handed out round by round, larger strata first, and a warning says min_per_stratum could
  not be honoured. The documents of each stratum are then drawn uniformly.
"""

from __future__ import annotations

import heapq
import random
import secrets
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

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
from stagewise.pipeline.stages.group_by import value_key

CHECK_EVERY = 256
STRATA_REPORTED = 50


class SampleParams(StageParams):
    count: int = Field(default=10, ge=1, le=1000, description="Documents to keep")
    strategy: Literal["random", "stratified", "reservoir"] = Field(
        default="random", description="'random', 'stratified' (needs stratify_by), 'reservoir'"
    )
    stratify_by: str | None = Field(
        default=None, description="Dot path whose values are the strata (stratified only)"
    )
    min_per_stratum: int = Field(
        default=1, ge=0, description="Documents guaranteed to each stratum (stratified only)"
    )
    seed: int | None = Field(
        default=None, description="Seed for a reproducible sample; None draws one and reports it"
    )
    preserve_top_k: int = Field(
        default=0, ge=0, description="Keep the first k documents as they are; sample the rest"
    )

    @model_validator(mode="after")
    def _check_stratify(self) -> SampleParams:
        if self.strategy == "stratified" and not self.stratify_by:
            raise ValueError("stratify_by is required when strategy is 'stratified'")
        return self


@register
class Sample(Stage):
    stage_id: ClassVar[str] = "sample"
    category: ClassVar[Category] = "reduce"
    description: ClassVar[str] = (
        "Keep a random subset of the documents (uniform, stratified by a field, or reservoir), "
        "reproducible with a seed, optionally keeping the top documents"
    )
    icon: ClassVar[str] = "dices"
    Params = SampleParams
    credits_per_document: ClassVar[float] = 0.0001

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: SampleParams = self.params  # type: ignore[assignment]
        ctx.budget.check()
        seed_generated = p.seed is None
        seed = secrets.randbelow(2**31) if p.seed is None else p.seed
        rng = random.Random(seed)
        metadata: dict[str, Any] = {
            "strategy": p.strategy,
            "seed": seed,
            "seed_generated": seed_generated,
            "input_count": len(candidates),
        }
        if p.preserve_top_k > p.count:
            ctx.warnings.append(
                f"sample: preserve_top_k ({p.preserve_top_k}) is larger than count ({p.count}); "
                f"only the first {p.count} documents are kept"
            )
        preserved = min(p.preserve_top_k, p.count, len(candidates))
        rest = candidates[preserved:]
        quota = min(p.count - preserved, len(rest))
        if quota >= len(rest):
            chosen = list(range(len(rest)))
        elif p.strategy == "random":
            chosen = rng.sample(range(len(rest)), quota)
        elif p.strategy == "reservoir":
            chosen = self._reservoir(ctx, len(rest), quota, rng)
        else:
            chosen = self._stratified(ctx, rest, quota, rng, p, metadata)
        chosen.sort()
        out = candidates[:preserved]
        for n, i in enumerate(chosen):
            if n % CHECK_EVERY == 0:
                ctx.budget.check()
            out.append(rest[i])
        metadata.update(preserved=preserved, sampled=len(chosen), output_count=len(out))
        return StageResult(out, metadata=metadata)

    @staticmethod
    def _reservoir(ctx: StageContext, n: int, k: int, rng: random.Random) -> list[int]:
        """Algorithm R: a uniform k-subset of range(n) in one pass."""
        reservoir = list(range(k))
        for i in range(k, n):
            if i % CHECK_EVERY == 0:
                ctx.budget.check()
            j = rng.randint(0, i)
            if j < k:
                reservoir[j] = i
        return reservoir

    @staticmethod
    def _stratified(
        ctx: StageContext,
        rest: list[Candidate],
        quota: int,
        rng: random.Random,
        p: SampleParams,
        metadata: dict[str, Any],
    ) -> list[int]:
        path = p.stratify_by or ""
        strata: dict[tuple[str, Any], tuple[Any, list[int]]] = {}
        for i, c in enumerate(rest):
            if i % CHECK_EVERY == 0:
                ctx.budget.check()
            value = get_field(c, path)
            strata.setdefault(value_key(value), (value, []))[1].append(i)
        values = [value for value, _ in strata.values()]
        members = [indices for _, indices in strata.values()]
        sizes = [len(m) for m in members]
        total = len(rest)
        # Larger strata first, then first seen.
        by_size = sorted(range(len(sizes)), key=lambda s: (-sizes[s], s))

        alloc = [0] * len(sizes)
        wanted = sum(min(p.min_per_stratum, size) for size in sizes)
        if wanted > quota:
            ctx.warnings.append(
                f"sample: {len(sizes)} strata need {wanted} documents for min_per_stratum="
                f"{p.min_per_stratum} but only {quota} are sampled; larger strata come first"
            )
            left = quota
            for round_ in range(p.min_per_stratum):
                for s in by_size:
                    if left == 0:
                        break
                    if sizes[s] > round_:
                        alloc[s] += 1
                        left -= 1
        else:
            alloc = [min(p.min_per_stratum, size) for size in sizes]
            left = quota - wanted
            # Give each remaining slot to the stratum furthest below its proportional share.
            heap = [
                (-(quota * sizes[s] / total - alloc[s]), -sizes[s], s)
                for s in range(len(sizes))
                if alloc[s] < sizes[s]
            ]
            heapq.heapify(heap)
            while left > 0 and heap:
                ctx.budget.check()
                _, _, s = heapq.heappop(heap)
                alloc[s] += 1
                left -= 1
                if alloc[s] < sizes[s]:
                    heapq.heappush(heap, (-(quota * sizes[s] / total - alloc[s]), -sizes[s], s))

        chosen: list[int] = []
        for s, indices in enumerate(members):
            if s % CHECK_EVERY == 0:
                ctx.budget.check()
            chosen.extend(rng.sample(indices, alloc[s]))
        metadata["stratify_by"] = path
        metadata["strata_count"] = len(sizes)
        metadata["strata"] = [
            {"value": values[s], "available": sizes[s], "selected": alloc[s]}
            for s in by_size[:STRATA_REPORTED]
        ]
        return chosen
