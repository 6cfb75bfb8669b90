"""Evaluation datasets: judged queries uploaded whole (create), read back by id or name, and
listed. Every check runs before anything is stored, so a refused dataset leaves no trace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stagewise.domain.evaluation_records import MAX_JUDGED, DatasetRecord, GroundTruthQuery
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import NotFound, ValidationFailed
from stagewise.ids import new_id, utc_now
from stagewise.services.context import Stores


def check_queries(queries: Sequence[GroundTruthQuery]) -> None:
    """What a field bound cannot say: ids unique, judgements consistent and within bounds."""
    seen: set[str] = set()
    for i, q in enumerate(queries):
        where = f"queries[{i}]"
        if q.query_id in seen:
            raise ValidationFailed(
                f"{where}.query_id '{q.query_id}' repeats an earlier query's id",
                code="duplicate_query_id",
                field=f"{where}.query_id",
                index=i,
            )
        seen.add(q.query_id)
        if len(set(q.relevant_documents)) != len(q.relevant_documents):
            raise ValidationFailed(
                f"{where}.relevant_documents names a document twice",
                code="duplicate_document",
                field=f"{where}.relevant_documents",
                index=i,
            )
        scores = q.relevance_scores or {}
        zero = next((d for d in q.relevant_documents if scores.get(d) == 0), None)
        if zero is not None:
            raise ValidationFailed(
                f"{where}: '{zero}' is listed as relevant but graded 0 (not relevant)",
                code="contradictory_judgement",
                field=f"{where}.relevance_scores",
                index=i,
            )
        judged = len(set(q.relevant_documents) | set(scores))
        if judged > MAX_JUDGED:
            raise ValidationFailed(
                f"{where} judges {judged} documents; at most {MAX_JUDGED} per query",
                code="too_many_judgements",
                field=where,
                index=i,
                limit=MAX_JUDGED,
            )


def create(
    stores: Stores,
    ns: NamespaceRecord,
    *,
    name: str,
    queries: Sequence[GroundTruthQuery],
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> DatasetRecord:
    """Stores the dataset; a name taken in the namespace is a 409 (dataset_name_taken)."""
    check_queries(queries)
    now = utc_now()
    record = DatasetRecord(
        dataset_id=new_id("eds_"),
        namespace_id=ns.namespace_id,
        dataset_name=name,
        description=description,
        queries=list(queries),
        metadata=metadata,
        created_at=now,
        updated_at=now,
    )
    stores.metadata.create_evaluation_dataset(record)
    return record


def get(stores: Stores, ns: NamespaceRecord, identifier: str) -> DatasetRecord:
    found = stores.metadata.get_evaluation_dataset(ns.namespace_id, identifier)
    if found is None:
        raise NotFound("dataset", identifier, namespace_id=ns.namespace_id)
    return found


def listing(
    stores: Stores, ns: NamespaceRecord, *, limit: int, offset: int
) -> tuple[list[DatasetRecord], int]:
    return stores.metadata.list_evaluation_datasets(ns.namespace_id, limit=limit, offset=offset)
