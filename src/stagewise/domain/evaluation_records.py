"""Evaluation datasets: queries with graded relevance judgements (the SDK's
EvaluationDataset and GroundTruthQuery, mixpeek 1.3.783)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from stagewise.ids import utc_now

# docs/limits.md: past them a 422 naming the field, and nothing stored.
MAX_QUERIES = 10_000
MAX_JUDGED = 1_000  # documents judged per query (relevant ones and graded ones together)
MAX_NAME = 200  # the SDK's dataset_name bound
MAX_ID = 255
MAX_GRADE = 5  # the SDK's graded relevance: 0-5, 5 most relevant

Grade = Annotated[StrictInt, Field(ge=0, le=MAX_GRADE)]
DocId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID)]


class GroundTruthQuery(BaseModel):
    """One judged query, as sent and as stored."""

    model_config = ConfigDict(extra="ignore")

    query_id: DocId = Field(description="Unique within the dataset")
    query_input: dict[str, Any] = Field(
        description="Inputs as a retriever execution takes them, e.g. {'q': '...'}"
    )
    relevant_documents: list[DocId] = Field(
        min_length=1, max_length=MAX_JUDGED, description="Document ids relevant to the query"
    )
    relevance_scores: dict[DocId, Grade] | None = Field(
        None,
        max_length=MAX_JUDGED,
        description=f"Graded relevance, document id -> 0..{MAX_GRADE} (for nDCG)",
    )


class DatasetRecord(BaseModel):
    dataset_id: str
    namespace_id: str
    dataset_name: str
    description: str | None = None
    queries: list[GroundTruthQuery]
    metadata: dict[str, Any] | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
