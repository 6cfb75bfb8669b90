"""The execution list's one-line summary of a run's inputs."""

from __future__ import annotations

import orjson
import pytest

from stagewise.api.schemas.retrievers import query_summary
from stagewise.domain.pipeline_records import ExecutionRecord

pytestmark = pytest.mark.unit


def _record(inputs: dict[str, object]) -> ExecutionRecord:
    return ExecutionRecord(execution_id="exec_1", namespace_id="ns_1", inputs=inputs)


def test_long_arrays_are_counted_not_serialised() -> None:
    summary = query_summary(_record({"query": "red shoes", "vector": [0.125] * 384}))
    assert orjson.loads(summary) == {"query": "red shoes", "vector": "[384 numbers]"}


def test_short_values_and_nesting_are_kept_and_the_summary_is_capped() -> None:
    nested = {"tags": ["a", "b"], "ref": {"ids": list(range(20))}}
    assert orjson.loads(query_summary(_record(nested))) == {
        "tags": ["a", "b"],
        "ref": {"ids": "[20 numbers]"},
    }
    assert len(query_summary(_record({"q": "x" * 1000}))) == 200
