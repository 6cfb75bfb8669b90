"""What a stage is: parameters (a pydantic model), a category, and `run(ctx, candidates)`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from stagewise.domain.filters import FilterNode
from stagewise.domain.records import CollectionRecord
from stagewise.errors import BudgetExceeded

Category = Literal["filter", "sort", "reduce", "apply", "enrich"]


class StageParams(BaseModel):
    """Base of every stage's parameters. The SDK sends the string 'null' for unset values."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _null_strings(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: (None if v == "null" else v) for k, v in data.items()}
        return data


@dataclass
class Candidate:
    """One document travelling through the pipeline."""

    document_id: str
    collection_id: str
    score: float = 0.0
    # The document as users address it: root fields, `metadata`, enrichments.
    doc: dict[str, Any] = field(default_factory=dict)
    # Score provenance: per-source raw score and rank, fused, rerank, mmr...
    scores: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            **self.doc,
            "document_id": self.document_id,
            "collection_id": self.collection_id,
            "score": self.score,
            "scores": self.scores,
        }


@dataclass
class StageResult:
    candidates: list[Candidate]
    metadata: dict[str, Any] = field(default_factory=dict)
    credits: float = 0.0
    stage_cache_hit: bool = False
    # Candidates the stage considered when it did not receive them (a first-stage search
    # ranks the points of its collections): its statistics' input_count. None: its input.
    considered: int | None = None
    # What the stage skipped to stay within a limit (DegradedEntry: resource, id, reason,
    # next_step, stage). A run with any is not served from the cache.
    degraded: list[dict[str, Any]] = field(default_factory=list)
    # Replaces the execution's documents when a stage emits non-document rows (aggregate).
    facets: list[dict[str, Any]] | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Budget:
    max_credits: float | None
    max_time_ms: float | None
    started: float = field(default_factory=time.perf_counter)
    credits_used: float = 0.0

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def check(self, upcoming_credits: float = 0.0) -> None:
        """Raise BudgetExceeded when a limit is (or would be) passed; stages call this in loops."""
        if self.max_time_ms is not None and self.elapsed_ms() > self.max_time_ms:
            raise BudgetExceeded(
                "Budget exceeded: Maximum time limit reached",
                limit="max_time_ms",
                limit_value=self.max_time_ms,
                used=round(self.elapsed_ms(), 3),
            )
        if (
            self.max_credits is not None
            and self.credits_used + upcoming_credits > self.max_credits + 1e-9
        ):
            raise BudgetExceeded(
                "Budget exceeded: Maximum credits limit reached",
                limit="max_credits",
                limit_value=self.max_credits,
                used=self.credits_used,
                requested=upcoming_credits,
            )

    def charge(self, credits: float) -> None:
        self.check(credits)
        self.credits_used += credits


@dataclass
class StageContext:
    """Read-only access to what a stage may use. Built by the runner for each stage."""

    stores: Any  # services.context.Stores; typed loosely to keep pipeline free of services
    namespace_id: str
    collections: list[CollectionRecord]
    inputs: dict[str, Any]
    budget: Budget
    stage_name: str
    stage_index: int
    # Earlier stages' outputs by stage name, and `output_alias` contexts.
    stage_outputs: dict[str, list[Candidate]] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    # This stage's pre_filters AND-ed with the request's filters, resolved with the inputs.
    stage_filter: FilterNode | None = None
    warnings: list[str] = field(default_factory=list)
    on_progress: Callable[[], None] | None = None
    # The run's collection reads (identifier -> version when first read); see
    # collection_version. The retriever's own collections are recorded before the run.
    reads: dict[str, str | None] | None = None
    # How fresh the index must be for this run's reads (services.follower.Consistency).
    consistency: Any = None

    def collection(self, identifier: str) -> CollectionRecord | None:
        """A collection a stage reads beyond the retriever's own (a join target, a search's
        own collection list). Every stage resolves collections here, so the run knows what
        its answer depends on."""
        for col in self.collections:
            if identifier in (col.collection_id, col.collection_name):
                return col
        found: CollectionRecord | None = self.stores.metadata.get_collection(
            self.namespace_id, identifier
        )
        if self.reads is not None and identifier not in self.reads:
            self.reads[identifier] = collection_version(
                self.stores, self.namespace_id, identifier, self.consistency
            )
        return found


def collection_version(
    stores: Any, namespace_id: str, identifier: str, consistency: Any = None
) -> str | None:
    """Which collection an identifier names now, and its last write: "collection_id@seq"
    (seq moves on every document write or delete); None when none exists. With a
    `consistency`, the run is about to read it: the index first catches up as far as that
    consistency asks (services/follower.py)."""
    col = stores.metadata.get_collection(namespace_id, identifier)
    if col is None:
        return None
    head = stores.metadata.collection_signature(col.collection_id)
    if consistency is not None:
        stores.follower.ensure_fresh(col, head, consistency)
    return f"{col.collection_id}@{head}"


class Stage:
    """Base class. Subclasses set the class attributes and implement run()."""

    stage_id: ClassVar[str]
    category: ClassVar[Category]
    description: ClassVar[str]
    icon: ClassVar[str] = "layers"
    Params: ClassVar[type[StageParams]]
    # Credits charged per candidate processed; documented in docs/credits.md.
    credits_per_document: ClassVar[float] = 0.0
    # True for a stage with a cache of its own (its statistics then say if it served the run).
    keeps_cache: ClassVar[bool] = False
    # Parameters the stage renders itself, per document (the runner leaves them as written,
    # so inputs are never spliced into template source).
    per_document_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, params: StageParams) -> None:
        self.params = params

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        raise NotImplementedError

    # Creation-time checks beyond the pydantic model (collections, feature URIs, providers).
    @classmethod
    def validate_for(cls, params: StageParams, collections: list[CollectionRecord]) -> None:
        return None

    # Creation-time checks that read the stores (a referenced taxonomy exists); `stores` is
    # services.context.Stores.
    @classmethod
    def validate_references(cls, params: StageParams, stores: Any, namespace_id: str) -> None:
        return None
