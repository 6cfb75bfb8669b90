"""Request bodies the routes take as plain objects: the type of every key the services read.

The routes take the body as a plain object and hand that object, unchanged, to the
services, which decide what it means and answer their own specific 422s (a missing name,
an unknown stage id, ...). These models first refuse a key of the wrong type (a string
where a list of stages goes, a number for a description), which the services would
otherwise have tripped over with a 500, or stored and failed to read back. Unknown keys
are allowed (the SDK sends many). Keys marked required in the document are left to the
service to refuse, so its specific code survives; `_REQUIRED` documents them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

JsonObject = dict[str, Any]

SEARCH_EXAMPLE = {
    "feature_uri": "mixpeek://text_extractor@v1/all_minilm_l6_v2",
    "query": {"input_mode": "text", "value": "{{INPUT.query}}"},
    "top_k": 10,
}
STAGES_EXAMPLE = [
    {
        "stage_name": "search",
        "config": {
            "stage_id": "feature_search",
            "parameters": {"searches": [SEARCH_EXAMPLE], "final_top_k": 10},
        },
    }
]


def _documented(required: list[str], example: JsonObject) -> ConfigDict:
    extra: dict[str, Any] = {"required": required, "examples": [example]}
    return ConfigDict(extra="allow", json_schema_extra=extra)


class BudgetLimitsBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    max_credits: float | None = Field(None, ge=0, strict=True)
    max_time_ms: float | None = Field(None, ge=0, strict=True, description="Capped by the server")


class _Retriever(BaseModel):
    description: str | None = None
    collection_identifiers: list[str] | None = None
    collection_ids: list[str] | None = Field(None, description="Alias of collection_identifiers")
    stages: list[JsonObject] | None = Field(
        None,
        description="Each {stage_name, config: {stage_id, parameters}}: GET /v1/retrievers/stages",
    )
    input_schema: dict[str, JsonObject] | None = Field(
        None, description="Input name -> {type, ...}"
    )
    budget_limits: BudgetLimitsBody | None = None
    display_config: JsonObject | None = None


class RetrieverBody(_Retriever):
    """POST /v1/retrievers."""

    model_config = _documented(
        ["retriever_name", "stages"],
        {
            "retriever_name": "my-retriever",
            "collection_identifiers": ["my-collection"],
            "input_schema": {"query": {"type": "text"}},
            "stages": STAGES_EXAMPLE,
        },
    )

    retriever_name: str | None = None
    tags: list[str] | None = None
    metadata: JsonObject | None = None
    visibility: str | None = None


class RetrieverPatchBody(_Retriever):
    """PATCH /v1/retrievers/{retriever_id}: the keys sent are changed; budget_limits only
    to its current value (clone to change it)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"tags": ["a"]}]})

    retriever_name: str | None = Field(None, min_length=1)
    # Sent, they replace the stored value, which cannot be null (the defaults are unused:
    # the service reads the body, not this model).
    tags: list[str] = Field(default_factory=list)
    metadata: JsonObject = Field(default_factory=dict)
    visibility: str | None = None


class RetrieverCloneBody(_Retriever):
    """POST /v1/retrievers/{retriever_id}/clone: what is not sent is copied."""

    model_config = _documented(["retriever_name"], {"retriever_name": "my-retriever-copy"})

    retriever_name: str | None = None
    tags: list[str] | None = None


class ReadConsistency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["strong", "eventual"]
    max_staleness_ms: StrictInt | None = Field(None, ge=0, le=3_600_000)


class _Execute(BaseModel):
    inputs: JsonObject | None = Field(None, description="Values for the input_schema")
    filters: JsonObject | None = Field(None, description='{"AND": [{field, operator, value}]}')
    pagination: JsonObject | None = Field(
        None, description="{method: cursor|offset|keyset|scroll, limit, cursor, ...}"
    )
    limit: StrictInt | None = Field(None, description="The page size, 1..500")
    page_size: StrictInt | None = Field(None, description="The same as limit")
    stream: StrictBool | None = Field(None, description="Answer Server-Sent Events")
    consistency: ReadConsistency | None = Field(
        None,
        description="How fresh the read must be; strong (the default) sees every "
        "acknowledged write, whichever worker answers",
    )
    write_token: str | None = Field(
        None, description="From a BYO upsert with options.write_token: the read sees that write"
    )


class ExecuteBody(_Execute):
    """POST /v1/retrievers/{retriever_id}/execute."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"examples": [{"inputs": {"query": "cats"}}]}
    )

    skip_cache: StrictBool | None = None
    explain: StrictBool | None = None
    include_legacy_results: StrictBool | None = None


class AdhocExecuteBody(_Execute):
    """POST /v1/retrievers/execute: a pipeline sent inline, not stored."""

    model_config = _documented(
        ["stages"],
        {
            "collection_identifiers": ["my-collection"],
            "input_schema": {"query": {"type": "text"}},
            "stages": STAGES_EXAMPLE,
            "inputs": {"query": "cats"},
        },
    )

    collection_identifiers: list[str] | None = None
    collection_ids: list[str] | None = Field(None, description="Alias of collection_identifiers")
    stages: list[JsonObject] | None = None
    input_schema: dict[str, JsonObject] | None = None
    budget_limits: BudgetLimitsBody | None = None


class BatchQuery(BaseModel):
    model_config = ConfigDict(extra="allow")

    inputs: JsonObject | None = None
    filters: JsonObject | None = None


class BatchBody(BaseModel):
    """POST /v1/retrievers/{retriever_id}/execute/batch: 1 to 16 queries."""

    model_config = _documented(["queries"], {"queries": [{"inputs": {"query": "cats"}}]})

    queries: list[BatchQuery] | None = Field(None, description="1 to 16")
    settings: JsonObject | None = Field(None, description="{limit}: per query, default 10")


class ExplainBody(BaseModel):
    """POST /v1/retrievers/{retriever_id}/execute/explain."""

    model_config = ConfigDict(extra="allow")

    inputs: JsonObject | None = None


class CollectionPatchBody(BaseModel):
    """PATCH /v1/collections/{collection_identifier}: the keys sent are changed."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"examples": [{"description": "Support articles"}]}
    )

    collection_name: str | None = Field(None, description="A new name")
    description: str | None = None
    enabled: bool | None = None
    metadata: JsonObject | None = None
    taxonomy_applications: list[JsonObject] | None = Field(
        None, description="Replaces the taxonomies materialised onto new documents"
    )


class DocumentBody(BaseModel):
    """A document's create, patch or put: its own fields (text, title, ...) at the root,
    besides these keys. In a patch a field set to null is removed."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"text": "A kitten napped", "metadata": {"n": 1}}]},
    )

    collection_id: str | None = Field(None, description="The path's collection, if sent")
    metadata: JsonObject | None = None
    vectors: dict[str, Any] | None = Field(
        None, description="Vector name (short, URI or storage name) -> its numbers"
    )


class RetrieverListBody(BaseModel):
    """POST /v1/retrievers/list (paged by the query parameters)."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"examples": [{"search": "product", "sorts": []}]}
    )

    search: str | None = Field(None, description="In names and descriptions")
    case_sensitive: bool | None = None
    filters: JsonObject | None = Field(None, description="Field path -> value or {operator: value}")
    sorts: list[JsonObject] | None = Field(None, description="[{field, direction: asc|desc}]")
    sort: JsonObject | None = Field(None, description="One sort, when sorts is not sent")


class ExecutionListBody(BaseModel):
    """POST .../executions/list (paged by the query parameters)."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"examples": [{"status": "completed"}]}
    )

    status: str | list[str] | None = Field(
        None, description="pending|processing|completed|failed|running, or a list of them"
    )
    start_time: str | None = Field(None, description="ISO-8601: runs created at or after")
    end_time: str | None = Field(None, description="ISO-8601: runs created at or before")
    count_only: bool | None = Field(None, description="Adhoc runs: totals without results")
