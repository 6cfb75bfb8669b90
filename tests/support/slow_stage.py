"""A deliberately slow stage for progress and budget tests, registered like a plug-in stage."""

from __future__ import annotations

import time
from typing import ClassVar

from pydantic import Field

from stagewise.pipeline.registry import get_stage, register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)

CHECK_INTERVAL_MS = 5.0


class SlowParams(StageParams):
    total_ms: float = Field(default=300.0, ge=0)


class SlowStage(Stage):
    stage_id: ClassVar[str] = "test_slow"
    category: ClassVar[Category] = "apply"
    description: ClassVar[str] = "Sleeps, checking the budget every few milliseconds (tests only)"
    Params = SlowParams

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: SlowParams = self.params  # type: ignore[assignment]
        deadline = time.perf_counter() + p.total_ms / 1000.0
        while time.perf_counter() < deadline:
            ctx.budget.check()
            time.sleep(CHECK_INTERVAL_MS / 1000.0)
        return StageResult(list(candidates), metadata={"slept_ms": p.total_ms})


if get_stage(SlowStage.stage_id) is None:
    register(SlowStage)
