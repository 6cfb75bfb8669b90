"""Evaluation datasets mined from a retriever's recorded interactions.

The click model (docs/architecture.md, "Evaluation datasets"):

* Window: interactions on the retriever that happened within `lookback_days` (their
  `occurred_at`, else when they were recorded).
* Query: the inputs of the interaction's execution (what the retriever was run with), else
  the interaction's `query_snapshot` when the execution is gone (pruned) or was not sent.
  Interactions with neither are skipped. Equal inputs are one query; its id is a hash of them,
  so mining the same window twice gives the same query ids.
* Judgement, per (query, document): an interaction carrying one of the positive types (by
  default click, purchase, positive_feedback, bookmark, share) makes the document relevant
  at grade 1; one carrying `purchase` (a conversion, the strongest signal) at grade 2. The
  highest grade seen wins. `negative_feedback` on the document for that query (unless listed
  as positive) removes its judgement: an explicit "not this" outweighs an implicit click.
  Views, impressions and dwell alone are not judgements: being shown is not being chosen.
* Confidence: a query is kept when its judged documents gathered at least `min_interactions`
  positive interactions; queries with fewer (or with no positive signal) are dropped.
* Bounds: documents per query and queries per dataset are capped as for an upload
  (docs/limits.md), keeping the most-interacted ones; at most MAX_SCANNED interactions are
  read, past which the window must be narrowed (422).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

import orjson

from stagewise.domain.evaluation_records import (
    MAX_JUDGED,
    MAX_QUERIES,
    DatasetRecord,
    GroundTruthQuery,
)
from stagewise.domain.interaction_records import InteractionQuery, InteractionRecord
from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import ValidationFailed
from stagewise.ids import utc_now
from stagewise.services import evaluation_datasets
from stagewise.services.context import Stores
from stagewise.services.execute import lookup
from stagewise.services.retrievers import get_retriever

DEFAULT_POSITIVE = ("click", "purchase", "positive_feedback", "bookmark", "share")
STRONG = frozenset({"purchase"})  # grade 2; any other positive type grades 1
NEGATIVE = "negative_feedback"
MAX_SCANNED = 100_000
_PAGE = 1_000
CLICK_MODEL = (
    "per query (the execution's inputs, else query_snapshot): a positive interaction grades "
    "its document 1, a purchase 2, negative feedback removes it; views alone are no "
    "judgement; queries with fewer than min_interactions positive interactions are dropped"
)


@dataclass
class _Query:
    query_input: dict[str, Any]
    grades: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)

    def judged(self) -> list[str]:
        docs = [d for d in self.grades if d not in self.refused]
        return sorted(docs, key=lambda d: (-self.grades[d], -self.counts[d], d))

    def positives(self) -> int:
        return sum(self.counts[d] for d in self.judged())


def _scan(
    stores: Stores, namespace_id: str, query: InteractionQuery
) -> Iterator[InteractionRecord]:
    first, total = stores.metadata.list_interactions(namespace_id, query, limit=_PAGE)
    if total > MAX_SCANNED:
        raise ValidationFailed(
            f"{total} interactions fall in the window; at most {MAX_SCANNED} are mined at once: "
            "lower lookback_days",
            code="too_many_interactions",
            field="lookback_days",
            limit=MAX_SCANNED,
        )
    yield from first
    for offset in range(_PAGE, total, _PAGE):
        page, _ = stores.metadata.list_interactions(namespace_id, query, limit=_PAGE, offset=offset)
        yield from page


def _key(query_input: dict[str, Any]) -> str:
    return orjson.dumps(query_input, option=orjson.OPT_SORT_KEYS).decode()


def mine(
    stores: Stores,
    ns: NamespaceRecord,
    retriever_id: str,
    *,
    min_interactions: int,
    lookback_days: int,
    positive_types: Sequence[str] | None,
) -> tuple[list[GroundTruthQuery], dict[str, Any]]:
    """The judged queries and what was read to make them (for the dataset's metadata)."""
    retriever = get_retriever(stores, ns=ns, identifier=retriever_id)
    positives = frozenset(positive_types or DEFAULT_POSITIVE)
    since = utc_now() - timedelta(days=lookback_days)
    wanted = InteractionQuery(
        retriever_id=retriever.retriever_id, since=since, sort_field="timestamp", descending=False
    )
    runs: dict[str, ExecutionRecord | None] = {}
    queries: dict[str, _Query] = {}
    scanned = 0
    for r in _scan(stores, ns.namespace_id, wanted):
        scanned += 1
        happened = r.occurred_at or r.created_at
        if happened.astimezone(UTC) < since:
            continue
        if r.execution_id is not None and r.execution_id not in runs:
            runs[r.execution_id] = lookup(stores, ns.namespace_id, r.execution_id)
        run = runs.get(r.execution_id or "")
        query_input = (run.inputs if run is not None else None) or r.query_snapshot
        if not query_input:
            continue
        q = queries.setdefault(_key(query_input), _Query(dict(query_input)))
        types = set(r.interaction_types)
        if NEGATIVE in types and NEGATIVE not in positives:
            q.refused.add(r.feature_id)
        hits = types & positives
        if hits:
            grade = 2 if hits & STRONG else 1
            q.grades[r.feature_id] = max(q.grades.get(r.feature_id, 0), grade)
            q.counts[r.feature_id] = q.counts.get(r.feature_id, 0) + 1
    kept = sorted(
        ((k, q) for k, q in queries.items() if q.judged() and q.positives() >= min_interactions),
        key=lambda kq: (-kq[1].positives(), kq[0]),
    )
    out = []
    for key, q in kept[:MAX_QUERIES]:
        docs = q.judged()[:MAX_JUDGED]
        out.append(
            GroundTruthQuery(
                query_id="q_" + hashlib.sha256(key.encode()).hexdigest()[:16],
                query_input=q.query_input,
                relevant_documents=docs,
                relevance_scores={d: q.grades[d] for d in docs},
            )
        )
    stats = {
        "source": "interactions",
        "retriever_id": retriever.retriever_id,
        "lookback_days": lookback_days,
        "min_interactions": min_interactions,
        "positive_interaction_types": sorted(positives),
        "click_model": CLICK_MODEL,
        "interactions_scanned": scanned,
        "queries_seen": len(queries),
        "queries_kept": len(out),
    }
    return out, stats


def generate(
    stores: Stores,
    ns: NamespaceRecord,
    retriever_id: str,
    *,
    dataset_name: str | None,
    min_interactions: int,
    lookback_days: int,
    positive_types: Sequence[str] | None,
) -> DatasetRecord:
    """Mines, then stores the dataset like an upload; no qualifying query is a 422."""
    queries, stats = mine(
        stores,
        ns,
        retriever_id,
        min_interactions=min_interactions,
        lookback_days=lookback_days,
        positive_types=positive_types,
    )
    if not queries:
        raise ValidationFailed(
            f"No query of retriever '{retriever_id}' has {min_interactions} positive "
            f"interactions in the last {lookback_days} days: nothing to judge",
            code="no_qualifying_queries",
            **{k: stats[k] for k in ("interactions_scanned", "queries_seen")},
        )
    name = dataset_name or f"auto_{stats['retriever_id']}_{utc_now():%Y%m%d}"
    return evaluation_datasets.create(
        stores,
        ns,
        name=name,
        queries=queries,
        description=f"Mined from the interactions of retriever {stats['retriever_id']}",
        metadata=stats,
    )
