"""Statistics of namespaces and collections, and the deep health check: each figure is read
from the stores when it is asked for. What cannot be read is left out, never filled in."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stagewise.domain.pipeline_records import RetrieverRecord
from stagewise.domain.records import CollectionRecord, NamespaceRecord
from stagewise.pipeline.templating import has_template
from stagewise.services.collections import all_collections
from stagewise.services.context import Stores
from stagewise.services.index_builder import IndexBuilder

# The SDK's indexing_status values that Stagewise can observe. A write is applied to the
# index before it is acknowledged, so 'indexing' is only seen while a write is in flight (or
# if the index lost points); 'blocked' has no cause here.
QUIESCED, INDEXING, UNKNOWN = "quiesced", "indexing", "unknown"


def _message(exc: BaseException) -> str:
    """One line naming a failure: what a probe reports instead of a stack trace."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}"[:300] if lines else type(exc).__name__


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def live_count(stores: Stores, collection_id: str) -> int | None:
    """The point count a collection's shard serves now; None when it does not answer."""
    try:
        return stores.index.count(collection_id)
    except Exception:  # a probe: any failure of the shard means "not readable"
        return None


# ---- which retrievers read which collections


def _identifiers(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    # Templated identifiers resolve per execution, so they name no collection in advance.
    return [v for v in items if isinstance(v, str) and v and not has_template(v)]


def collections_read(r: RetrieverRecord) -> set[str]:
    """Identifiers (ids or names) of the collections a retriever reads: its collection_ids
    and those its stages name (document_enrich's join target; feature_search's stage-level
    and per-search collection_identifiers and query document references)."""
    found = set(r.collection_ids)
    for stage in r.stages:
        config = stage.get("config") or {}
        params = config.get("parameters") or {}
        stage_id = config.get("stage_id")
        if stage_id == "document_enrich":
            found.update(_identifiers(params.get("target_collection_id")))
        elif stage_id == "feature_search":
            found.update(_identifiers(params.get("collection_identifiers")))
            for search in params.get("searches") or []:
                if not isinstance(search, dict):
                    continue
                found.update(_identifiers(search.get("collection_identifiers")))
                query = search.get("query")
                ref = query.get("document_ref") if isinstance(query, dict) else None
                if isinstance(ref, dict):
                    found.update(_identifiers(ref.get("collection_id")))
    return found


# ---- collections


@dataclass(frozen=True)
class CollectionStats:
    document_count: int
    retriever_count: int
    indexing_status: str
    # Payload-indexed fields of the shard (field -> kind); None when the shard did not answer.
    payload_indexes: dict[str, str] | None


def _indexing_status(points: int | None, documents: int) -> str:
    if points is None:
        return UNKNOWN
    return QUIESCED if points == documents else INDEXING


def collection_stats(
    stores: Stores, namespace_id: str, cols: Sequence[CollectionRecord]
) -> list[CollectionStats]:
    """Stats of collections of one namespace (the retrievers are listed once for all)."""
    reads = [collections_read(r) for r in stores.metadata.list_retrievers(namespace_id)]
    out = []
    for col in cols:
        cid = col.collection_id
        names = {cid, col.collection_name}
        documents = stores.metadata.count_documents(cid)
        points = live_count(stores, cid)
        indexed: dict[str, str] | None = None
        if points is not None:  # a shard that does not answer has no usable indexes
            try:
                indexed = stores.index.indexed_fields(cid)
            except Exception:  # a probe, as above
                indexed = None
        out.append(
            CollectionStats(
                document_count=documents,
                retriever_count=sum(1 for idents in reads if names & idents),
                indexing_status=_indexing_status(points, documents),
                payload_indexes=indexed,
            )
        )
    return out


# ---- namespaces


@dataclass(frozen=True)
class NamespaceStats:
    collection_count: int  # user collections; system ones (`_direct_upsert`) are not listed
    document_count: int  # every collection's, system ones included
    # Every collection's shard served a live count (vacuously true with no collection).
    ready: bool
    # Storage vector name -> inference model, for the vectors Stagewise embeds itself.
    vector_inference_map: dict[str, str]


def namespace_stats(stores: Stores, ns: NamespaceRecord) -> NamespaceStats:
    cols = stores.metadata.list_collections(ns.namespace_id)
    return NamespaceStats(
        collection_count=sum(1 for c in cols if not c.collection_name.startswith("_")),
        document_count=sum(stores.metadata.count_documents(c.collection_id) for c in cols),
        ready=all(live_count(stores, c.collection_id) is not None for c in cols),
        vector_inference_map={
            spec.name: spec.inference_name
            for c in cols
            for spec in c.vector_indexes
            if spec.inference_name
        },
    )


# ---- deep health


def index_state(stores: Stores, collection_id: str) -> dict[str, Any]:
    """One collection's shard as this worker serves it: `points`, `log_seq` against
    `applied_seq` (how far its index follows the log, services/follower.py) and, on embedded
    shards, `unindexed_points` (outside HNSW: searched by exact scan). A shard that does not
    answer is `{"error": ...}`. Deep health and /metrics both read it."""
    try:
        entry: dict[str, Any] = {"points": stores.index.count(collection_id)}
        entry["log_seq"] = stores.metadata.collection_signature(collection_id)
        entry["applied_seq"] = stores.follower.applied(collection_id)
        if stores.maintenance is not None:
            entry["unindexed_points"] = stores.maintenance.unindexed_points(collection_id)
    except Exception as exc:  # this shard's failure is its entry
        return {"error": _message(exc)}
    return entry


def deep_health(
    stores: Stores, builder: IndexBuilder | None, *, namespace_id: str | None = None
) -> tuple[bool, dict[str, Any]]:
    """Whether the metadata store answers a query and every collection's shard answers a
    count, with each check's latency; and, per collection, its index state. Returns
    (healthy, body). With a namespace_id (a key bound to one namespace) only that
    namespace's collections are checked and shown: other tenants' ids and counts are theirs."""
    checks: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    cols: list[CollectionRecord] | None
    try:
        # real queries: list_namespaces + list_collections, or the one namespace's list
        if namespace_id is None:
            cols = all_collections(stores)
        else:
            cols = stores.metadata.list_collections(namespace_id)
        checks["metadata_store"] = {"status": "ok", "latency_ms": _ms(start)}
    except Exception as exc:  # a probe: any failure of the store is the answer
        cols = None
        checks["metadata_store"] = {
            "status": "error",
            "error": _message(exc),
            "latency_ms": _ms(start),
        }
    index: dict[str, Any] = {}
    if cols is None:
        checks["search_index"] = {
            "status": "unknown",
            "error": "not checked: the metadata store did not list the collections",
        }
    else:
        start = time.perf_counter()
        building = builder.status() if builder is not None else {}
        failed: dict[str, str] = {}
        for col in cols:
            cid = col.collection_id
            entry = index_state(stores, cid)
            if "error" in entry:
                failed[cid] = entry["error"]
            entry["build"] = building.get(cid)
            entry["last_build"] = builder.last_build(cid) if builder is not None else None
            index[cid] = entry
        check: dict[str, Any] = {
            "status": "error" if failed else "ok",
            "collections": len(cols),
            "latency_ms": _ms(start),
        }
        if failed:
            check["error"] = f"{len(failed)} of {len(cols)} collection shards did not answer"
            check["failed"] = failed
        checks["search_index"] = check
    healthy = all(c["status"] == "ok" for c in checks.values())
    return healthy, {
        "status": "ok" if healthy else "degraded",
        "checks": checks,
        "index": index,
        "follower": {"worker_id": stores.worker_id, **stores.follower.status()},
        "scope": {"namespace_id": namespace_id},  # null: every namespace
    }
