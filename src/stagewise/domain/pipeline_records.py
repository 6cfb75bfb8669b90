"""Stored retrievers and executions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from stagewise.ids import utc_now


class RetrieverRecord(BaseModel):
    retriever_id: str
    namespace_id: str
    retriever_name: str
    description: str | None = None
    collection_ids: list[str] = Field(default_factory=list)
    # Stages as normalised at creation: {stage_name, stage_type, config{stage_id, parameters,
    # pre_filters?, post_filters?}, on_error, output_alias, description}.
    stages: list[dict[str, Any]] = Field(default_factory=list)
    input_schema: dict[str, Any] = Field(default_factory=dict)
    budget_limits: dict[str, Any] | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    display_config: dict[str, Any] | None = None
    visibility: str | None = None
    version: int = 1
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class ExecutionRecord(BaseModel):
    """One run of a retriever (named or adhoc). Ranked results are stored separately."""

    execution_id: str
    namespace_id: str
    retriever_id: str | None = None  # None for adhoc runs
    retriever_version: int | None = None
    mode: str = "named"  # named | adhoc
    status: str = "pending"  # pending | processing | completed | failed
    inputs: dict[str, Any] = Field(default_factory=dict)
    inputs_hash: str = ""
    filters: dict[str, Any] | None = None
    # Adhoc runs keep their pipeline so they can be explained and replayed.
    stages: list[dict[str, Any]] = Field(default_factory=list)
    collection_ids: list[str] = Field(default_factory=list)
    total_stages: int = 0
    stages_completed: int = 0
    current_stage: str | None = None
    stage_statistics: dict[str, Any] = Field(default_factory=dict)
    total_time_ms: float = 0.0
    credits_used: float = 0.0
    budget_limits: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    interpretation: dict[str, Any] = Field(default_factory=dict)
    facets: list[dict[str, Any]] | None = None
    error: str | None = None
    total_results: int = 0  # documents produced before any page slice (pagination.total)
    cache_hit: bool = False
    cached_at: float | None = None
    source_execution_id: str | None = None  # the run a cache hit replays
    degraded: list[dict[str, Any]] = Field(default_factory=list)
    limits: list[dict[str, Any]] = Field(default_factory=list)
    request: dict[str, Any] = Field(default_factory=dict)  # pagination etc., for replay
    # Every collection a stage read (identifier as written -> "collection_id@seq" then, or
    # None if it did not exist): a stored answer is reused only while these still hold.
    read_versions: dict[str, str | None] = Field(default_factory=dict)
    # The X-Request-ID of the request that started the run (None: recorded before 0007).
    trace_id: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    heartbeat_at: datetime | None = None

    def stage_cache_hit_rate(self) -> float:
        """The share of this run's stages served from a cache: all of them on a retriever
        cache hit, else those whose own cache served them (no stages ran: 0)."""
        if self.cache_hit:
            return 1.0
        stats = list(self.stage_statistics.values())
        return sum(bool(s.get("stage_cache_hit")) for s in stats) / len(stats) if stats else 0.0
