"""Documented response bodies of retrievers and their executions (documentation only, like
api/schemas/responses.py): written from retriever_public, services/execute.py's
`execution_public`, services/pagination.py's `_union`, explain and typeahead."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from stagewise.api.schemas.responses import ListPagination

JsonObject = dict[str, Any]


# ---- retrievers


class RetrieverStage(BaseModel):
    stage_name: str
    stage_type: str | None
    config: JsonObject
    parameters: JsonObject
    on_error: str | None
    output_alias: str | None
    description: str | None


class RetrieverResponse(BaseModel):
    retriever_id: str
    retriever_name: str
    description: str | None
    collection_ids: list[str]
    collection_identifiers: list[str]
    stages: list[RetrieverStage]
    input_schema: JsonObject
    budget_limits: JsonObject | None
    tags: list[str]
    metadata: JsonObject
    display_config: JsonObject | None
    version: int
    created_at: str
    updated_at: str
    fusion: Any = Field(description="The fusion of its first-stage searches, if any")
    feature_dependencies: list[JsonObject]


class RetrieverList(BaseModel):
    results: list[RetrieverResponse]
    total: int
    pagination: ListPagination


class RetrieverUpdated(BaseModel):
    retriever: RetrieverResponse


class RetrieverCloned(RetrieverUpdated):
    source_retriever_id: str


class RetrieverDeleted(BaseModel):
    success: bool
    message: str
    retriever_id: str


class StageDefinition(BaseModel):
    stage_id: str
    description: str
    category: str
    icon: str | None
    parameter_schema: JsonObject
    credits_per_document: float


class TypeaheadResponse(BaseModel):
    query: str
    suggestions: list[str]
    values: list[JsonObject]
    collections: list[JsonObject]
    recent_searches: list[str]
    warnings: list[str]


# ---- executions


class ExecutionPagination(BaseModel):
    """Every key of every pagination method, each with its value (docs/architecture.md)."""

    method: str
    page_number: int
    page_size: int
    limit: int
    offset: int
    returned: int
    total: int
    has_next: bool
    has_previous: bool
    cursor: str | None
    next_cursor: str | JsonObject | None = Field(
        description="keyset: the `after` marker; otherwise the cursor token"
    )
    scroll_id: str | None
    after: JsonObject | None


class StageStatistics(BaseModel):
    stages: dict[str, JsonObject] = Field(description="Per stage name: its measured figures")
    total_time_ms: float
    credits_used: float


class Budget(BaseModel):
    credits_used: float
    credits_remaining: float | None
    time_used_ms: float
    limits: JsonObject


class ExecutionResponse(BaseModel):
    """An execution: pending (wait=false, no documents yet), running, or finished."""

    retriever_id: str = Field(description="Empty for an adhoc run")
    execution_id: str
    status: str
    documents: list[JsonObject]
    pagination: ExecutionPagination | None
    stage_statistics: StageStatistics
    facets: list[JsonObject] | None
    budget: Budget
    cache_hit: bool
    degraded: list[JsonObject]
    limits: list[JsonObject]
    warnings: list[str]
    interpretation: JsonObject
    error: str | None
    created_at: str
    completed_at: str | None
    current_stage: str | None
    stages_completed: int
    total_stages: int
    documents_retained: bool
    total_returned: int
    cached_at: float | None = Field(None, description="A cache hit: when its source ran")
    results: list[JsonObject] | None = Field(None, description="include_legacy_results")
    explain_plan: JsonObject | None = Field(None, description="With explain")
    execution_metadata: JsonObject | None = Field(None, description="Adhoc runs")
    replay_of: str | None = Field(None, description="A replay: the execution it re-ran")
    trace_id: str | None = Field(
        None, description="X-Request-ID of the request that started the run (docs/observability.md)"
    )


class ListedPagination(BaseModel):
    total: int
    limit: int
    offset: int
    has_next: bool


class ExecutionSummary(BaseModel):
    execution_id: str
    status: str
    created_at: str
    completed_at: str | None
    duration_ms: float
    credits_used: float
    total_processed: int
    total_returned: int
    cache_hit_rate: float
    inputs_hash: str
    query_summary: str
    error: str | None
    trace_id: str | None = Field(
        None, description="X-Request-ID of the request that started the run (docs/observability.md)"
    )


class ExecutionList(BaseModel):
    results: list[ExecutionSummary]
    pagination: ListedPagination


class AdhocSummary(BaseModel):
    execution_id: str
    execution_mode: str
    status: str
    timestamp: str
    duration_ms: float
    credits_used: float
    total_processed: int
    total_returned: int
    cache_hit_rate: float
    query_summary: str
    stages_completed: int
    total_stages: int
    collection_ids: list[str]


class AdhocList(BaseModel):
    results: list[AdhocSummary]
    total: int
    pagination: ListedPagination


class AdhocExecution(ExecutionResponse):
    execution_mode: str
    timestamp: str
    duration_ms: float
    credits_used: float
    total_processed: int
    cache_hit_rate: float
    query_summary: str
    collection_ids: list[str]
    inputs: str = Field(description="The inputs, as a JSON string")
    inputs_hash: str
    stages: list[JsonObject]


class ExecutionStatus(BaseModel):
    execution_id: str
    status: str
    current_stage: str | None
    stages_completed: int
    total_stages: int
    error: str | None
    heartbeat_at: str | None
    trace_id: str | None = Field(
        None, description="X-Request-ID of the request that started the run (docs/observability.md)"
    )


class StageProfile(BaseModel):
    stage_name: str
    stage_id: str | None = None
    duration_ms: float | None = None
    input_count: int | None = None
    output_count: int | None = None
    efficiency: float | None = None
    stage_cache_hit: bool | None = None
    error: str | None = None


class ExecutionProfile(BaseModel):
    execution_id: str
    status: str
    total_time_ms: float
    credits_used: float
    stages: list[StageProfile]
    interaction_counts: dict[str, int] = Field(
        description="Interactions recorded on this run, per interaction type (one interaction "
        "may carry several types); empty when none"
    )


class BatchResult(BaseModel):
    query_index: int
    execution_id: str | None = Field(None, description="Absent when the query was refused")
    status: str
    documents: list[JsonObject]
    pagination: ExecutionPagination | None = None
    error: str | None


class BatchResponse(BaseModel):
    retriever_id: str
    results: list[BatchResult]
    total_queries: int


class ExplainStage(BaseModel):
    stage_index: int
    stage_name: str
    stage_type: str
    estimated_input: int
    estimated_output: int
    estimated_efficiency: float
    estimated_cost_credits: float
    estimated_duration_ms: float
    cache_likely: bool
    optimization_notes: list[str]


class ExplainResponse(BaseModel):
    retriever_id: str
    retriever_name: str
    estimated_cost: dict[str, float]
    execution_plan: list[ExplainStage]
    optimization_suggestions: list[JsonObject]
    total_estimated_stages: int
    bottleneck_stages: list[str]
    history_runs: int


class StreamEvent(BaseModel):
    """One Server-Sent Event of a streamed execute (`data:` carries it as JSON): a stage's
    start, completion or error, then the run's end (api/routes/executing.py)."""

    event_type: Literal[
        "stage_start", "stage_complete", "stage_error", "execution_complete", "execution_error"
    ]
    execution_id: str | None
    stage_name: str | None = None
    stage_index: int | None = None
    total_stages: int | None = None
    statistics: JsonObject | None = None
    documents_count: int | None = None
    documents: list[JsonObject] | None = None
    budget_used: JsonObject | None = None
    pagination: ExecutionPagination | None = None
    error: str | None = None


class RankingChange(BaseModel):
    collection_id: str
    document_id: str
    change: Literal["up", "down", "same", "new", "gone"]
    original_rank: int | None = Field(description="1-based; null: not in the original list")
    replayed_rank: int | None = Field(description="1-based; null: not in the replayed list")
    rank_delta: int | None = Field(description="original - replayed rank: positive moved up")
    original_score: float | None
    replayed_score: float | None


class RankingDiffSummary(BaseModel):
    moved_up: int
    moved_down: int
    unchanged: int
    new: int
    gone: int


class RankingDiff(BaseModel):
    depth: int = Field(description="How many of each ranking were compared")
    summary: RankingDiffSummary
    rows: list[RankingChange] = Field(
        description="The replayed top `depth` in order, then the hits gone from it"
    )


class VersionPair(BaseModel):
    original: int | None
    replayed: int | None


class CountPair(BaseModel):
    original: int
    replayed: int


class ReplayResponse(BaseModel):
    """A past execution's inputs run again against today's index and retriever version."""

    execution_id: str = Field(description="The new run, readable like any execution")
    replay_of: str
    status: str
    error: str | None
    inputs: JsonObject
    retriever_version: VersionPair
    total_results: CountPair
    diff: RankingDiff | None = Field(description="null when the replay failed")
