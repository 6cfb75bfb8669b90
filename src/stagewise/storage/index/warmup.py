"""Warm a freshly built shard generation before it serves (IndexBuilder, at a swap).

A generation the child just wrote is loaded lazily: its first searches page in the HNSW
graph, the quantized vectors, the payload index postings and the payloads, and without a
warm-up the first ~100 queries after a swap took 20-77 ms (issue 14). So, before the swap,
a few dozen dense searches run on the new shard with stored vectors as queries, unfiltered
and filtered on each keyword/integer payload index with values the sample holds, fetching
payloads as served searches do.
"""

from __future__ import annotations

import time
from typing import Any

from qdrant_edge import (
    EdgeShard,
    FieldCondition,
    Filter,
    MatchValue,
    Query,
    QueryBatchRequest,
    QueryRequest,
    ScrollRequest,
)

from stagewise.storage.index.layout import dense_search_params
from stagewise.storage.payload import get_path

WARMUP_QUERIES = 32
_FILTERED_KINDS = ("keyword", "integer")


def warm_shard(
    shard: EdgeShard, indexes: dict[str, str], queries: int = WARMUP_QUERIES
) -> dict[str, Any]:
    """Run warm-up searches on `shard`; `indexes` are its payload indexes (field -> kind)."""
    started = time.perf_counter()
    records, _ = shard.scroll(ScrollRequest(limit=queries, with_payload=True, with_vector=True))
    batch: list[QueryRequest] = []
    filters: list[Filter | None] = [None]
    for field, kind in indexes.items():
        if kind not in _FILTERED_KINDS:
            continue
        values = {get_path(r.payload or {}, field) for r in records}
        usable = sorted(
            (v for v in values if isinstance(v, str | int) and not isinstance(v, bool)), key=str
        )
        filters += [Filter(must=[FieldCondition(field, match=MatchValue(v))]) for v in usable[:8]]
    for i, record in enumerate(records):
        vectors = record.vector if isinstance(record.vector, dict) else {}
        for name, vector in vectors.items():
            # dense only: sparse slots and multi-vectors are not what served searches warm
            if not isinstance(vector, list) or not vector or not isinstance(vector[0], float):
                continue
            batch.append(
                QueryRequest(
                    limit=10,
                    query=Query.Nearest(vector, using=name),
                    filter=filters[i % len(filters)],
                    with_payload=True,
                    params=dense_search_params(10),
                )
            )
    for start in range(0, len(batch), 8):
        shard.query_batch(QueryBatchRequest(batch[start : start + 8]))
    return {"searches": len(batch), "seconds": round(time.perf_counter() - started, 3)}
