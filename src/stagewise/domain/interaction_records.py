"""Stored retriever interactions: what a user did with a result (click, view, feedback...)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from stagewise.ids import utc_now

# The SDK's InteractionType enum (mixpeek 1.3.783), in its order.
InteractionType = Literal[
    "impression",
    "view",
    "click",
    "dwell",
    "positive_feedback",
    "negative_feedback",
    "purchase",
    "add_to_cart",
    "wishlist",
    "long_view",
    "share",
    "bookmark",
    "query_refinement",
    "zero_results",
    "filter_toggle",
    "skip",
    "return_to_results",
    "play",
    "download",
    "save",
    "add_to_project",
    "rating",
]
INTERACTION_TYPES: tuple[str, ...] = get_args(InteractionType)
# Interactions with a search rather than with one of its results: no document to check.
QUERY_LEVEL_TYPES = frozenset({"zero_results", "query_refinement", "filter_toggle"})


class InteractionRecord(BaseModel):
    interaction_id: str
    namespace_id: str
    feature_id: str
    interaction_types: list[str]
    position: int
    execution_id: str | None = None
    retriever_id: str | None = None  # the execution's, when it has one
    user_id: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] | None = None
    query_snapshot: dict[str, Any] | None = None
    document_score: float | None = None
    result_set_size: int | None = None
    feature_uri: str | None = None
    occurred_at: datetime | None = None
    created_at: datetime = Field(default_factory=utc_now)


# Bounds of what a store column holds (docs/limits.md): past them a 422, never a 500.
MAX_POSITION = 1_000_000
MAX_ID = 255


class InteractionInput(BaseModel):
    """One interaction as a client sends it (SearchInteraction); unknown keys are kept in
    model_extra so the answer can name them."""

    model_config = ConfigDict(extra="allow")

    feature_id: str = Field(
        min_length=1,
        max_length=MAX_ID,
        validation_alias=AliasChoices("feature_id", "document_id"),
        description="The document interacted with (`document_id` is accepted as an alias)",
    )
    interaction_type: list[InteractionType] = Field(min_length=1, max_length=32)
    position: int = Field(ge=0, le=MAX_POSITION, description="0-indexed rank in the results")
    metadata: dict[str, Any] | None = None
    user_id: str | None = Field(None, max_length=MAX_ID)
    session_id: str | None = Field(None, max_length=MAX_ID)
    execution_id: str | None = Field(
        None, max_length=MAX_ID, description="Required when retriever_id is set"
    )
    retriever_id: str | None = Field(None, max_length=MAX_ID)
    query_snapshot: dict[str, Any] | None = None
    document_score: float | None = Field(None, allow_inf_nan=False)
    result_set_size: int | None = Field(None, ge=0, le=MAX_POSITION)
    feature_uri: str | None = Field(None, max_length=1024)
    occurred_at: datetime | None = Field(
        None, description="Backfill only: naive is UTC, a future instant is clamped to now"
    )


# What a listing may sort by: the record's own columns.
SORT_FIELDS = ("timestamp", "created_at", "occurred_at", "position")


@dataclass(frozen=True)
class InteractionQuery:
    """A listing's filters (all optional, ANDed) and order."""

    execution_id: str | None = None
    retriever_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    feature_id: str | None = None
    interaction_type: str | None = None
    since: datetime | None = None  # recorded at or after
    sort_field: str = "timestamp"
    descending: bool = True
