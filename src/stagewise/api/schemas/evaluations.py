"""POST /v1/evaluations/score: the SDK's ScorePredictionsRequest and ScorePredictionsResponse.

Strings and k are strict (a number where a term goes, a bool for k: 422). Unknown keys are
allowed, as the SDK documents for now; which form was sent and what the lists hold is the
service's to judge (services/evaluation_scoring.py), with its own codes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class ScoreItemBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    predicted: list[StrictStr] | None = Field(None, description="Treated as a set")
    ground_truth: list[StrictStr] | None = Field(None, description="Treated as a set")


class ScoreBody(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"predicted": ["cat", "dog", "emu"], "ground_truth": ["cat", "emu", "owl"]},
                {"items": [{"predicted": ["a"], "ground_truth": ["a", "b"]}], "k": 5},
            ]
        },
    )

    predicted: list[StrictStr] | None = Field(None, description="Single-pair form")
    ground_truth: list[StrictStr] | None = Field(None, description="Single-pair form")
    items: list[ScoreItemBody] | None = Field(None, description="Batch form")
    metrics: list[StrictStr] | None = Field(
        None, description="Any of precision, recall, f1, f2 (default: all, in that order)"
    )
    k: int | None = Field(
        None, ge=1, strict=True, description="Score the first k distinct predictions only"
    )


class ScoreResponse(BaseModel):
    metrics: list[str] = Field(description="In request order")
    k: int | None
    count: int = Field(description="Items scored")
    per_item: list[dict[str, float]]
    aggregate: dict[str, float] = Field(description="Mean over the items of each metric")
