"""Prometheus metrics of one process (docs/observability.md).

Each app owns a `Metrics` (its own CollectorRegistry, never the global REGISTRY), so several
apps in one process (the tests) keep separate counts. What is counted as it happens lives
here; index and follower figures are read when scraped, from what deep health reads."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.pipeline.registry import get_stage

if TYPE_CHECKING:
    from stagewise.services.context import Stores

log = logging.getLogger("stagewise.metrics")

# Seconds, from 0.25 ms: most stages and requests of an embedded server take a few ms, where
# the client's default buckets (from 5 ms) would put nearly everything in the first one.
BUCKETS = (
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class Metrics:
    """The counters and histograms of one app (execution side; api/observability.py adds the
    HTTP histogram to the same registry)."""

    def __init__(self) -> None:
        # auto_describe off: registering never runs a collector just to learn its names.
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.executions = Counter(
            "stagewise_executions",
            "Executions finished in this process, by final status and mode (cache hits count "
            "as completed executions)",
            ["status", "mode"],
            registry=r,
        )
        self.running = Gauge(
            "stagewise_executions_running", "Executions this process is running now", registry=r
        )
        self.stage_seconds = Histogram(
            "stagewise_stage_duration_seconds",
            "Measured duration of each stage of the runs that finished, by stage_id",
            ["stage_id"],
            buckets=BUCKETS,
            registry=r,
        )
        self.cache_hits = Counter(
            "stagewise_result_cache_hits",
            "Named executes answered from the result cache",
            registry=r,
        )
        self.cache_misses = Counter(
            "stagewise_result_cache_misses",
            "Named executes that looked in the result cache and ran (no entry, or stale)",
            registry=r,
        )
        self.embedding_cache = Counter(
            "stagewise_stage_cache_lookups",
            "Lookups of a stage's own embedding cache (feature_search, rerank), by result",
            ["stage_id", "result"],
            registry=r,
        )

        self.pruned = Counter(
            "stagewise_executions_pruned",
            "Finished executions this process deleted under the retention bounds",
            registry=r,
        )

    def cache_lookup(self, hit: bool) -> None:
        (self.cache_hits if hit else self.cache_misses).inc()

    def finished(self, record: ExecutionRecord, *, ran: bool = True) -> None:
        """A run reached its final status; `ran` is False for a cache hit (no stage ran)."""
        self.executions.labels(record.status, _mode(record.mode)).inc()
        if not ran:
            return
        for stats in record.stage_statistics.values():
            stage_id = _stage_label(stats.get("stage_id"))
            duration = stats.get("duration_ms")
            if isinstance(duration, int | float):
                self.stage_seconds.labels(stage_id).observe(duration / 1000.0)
            cache = (stats.get("metadata") or {}).get("cache")
            if isinstance(cache, dict):
                for key, result in (("hits", "hit"), ("misses", "miss")):
                    count = cache.get(key)
                    if isinstance(count, int) and count > 0:
                        self.embedding_cache.labels(stage_id, result).inc(count)


def _mode(mode: str) -> str:
    return mode if mode in ("named", "adhoc") else "other"


def _stage_label(stage_id: Any) -> str:
    """A label from a known stage only: an adhoc pipeline may name any stage_id, and a label
    value per unknown name would be unbounded cardinality."""
    if isinstance(stage_id, str) and get_stage(stage_id) is not None:
        return stage_id
    return "unknown"


# ---- read when scraped


class _FollowerCollector:
    """This worker's follower (services/follower.py)."""

    def __init__(self, stores: Stores) -> None:
        self.status = stores.follower.status()

    def collect(self) -> Iterator[Metric]:
        applied = CounterMetricFamily(
            "stagewise_follower_writes_applied", "Writes this worker's index applied from the log"
        )
        applied.add_metric([], self.status["writes_applied"])
        yield applied
        lag = GaugeMetricFamily(
            "stagewise_follower_lag_ms",
            "Commit-to-apply lag of writes other workers made (recent samples)",
            labels=["quantile"],
        )
        for quantile, key in (("0.5", "lag_ms_p50"), ("0.99", "lag_ms_p99")):
            if self.status[key] is not None:
                lag.add_metric([quantile], self.status[key])
        yield lag


_PER_COLLECTION = (
    ("points", "stagewise_collection_points", "Points the collection's shard serves"),
    (
        "unindexed_points",
        "stagewise_collection_unindexed_points",
        "Points outside the HNSW index (searched by exact scan); embedded shards only",
    ),
    (
        "lag",
        "stagewise_collection_follower_lag_seqs",
        "Writes (seqs) this worker's index is behind the log for the collection",
    ),
)


class _IndexCollector:
    """Index points, unindexed points and follower lag per collection, from the same probe
    deep health runs (services/stats.index_state). Aggregates for anyone; the series labelled
    with namespace and collection ids only when `per_collection` (docs/observability.md)."""

    def __init__(self, stores: Stores, per_collection: bool) -> None:
        self.stores = stores
        self.per_collection = per_collection

    def collect(self) -> Iterator[Metric]:
        from stagewise.services.collections import all_collections
        from stagewise.services.stats import index_state

        scans = CounterMetricFamily(
            "stagewise_filter_residual_scans",
            "Payload scans of filter parts the engine cannot evaluate (ends_with, regex, ...); "
            "an execute batch scans each distinct filter once",
        )
        scans.add_metric([], self.stores.index.residual_scans)
        yield scans
        try:
            cols = all_collections(self.stores)
        except Exception:  # the store is down: the other series still answer
            log.warning("metrics: the metadata store did not list the collections")
            return
        totals = dict.fromkeys(("points", "unindexed_points", "lag"), 0)
        failed = 0
        labelled = {
            key: GaugeMetricFamily(name, doc, labels=["namespace_id", "collection_id"])
            for key, name, doc in _PER_COLLECTION
        }
        for col in cols:
            entry = index_state(self.stores, col.collection_id)
            if "error" in entry:
                failed += 1
                continue
            values = {
                "points": entry["points"],
                "unindexed_points": entry.get("unindexed_points"),
                "lag": max(0, entry["log_seq"] - entry["applied_seq"]),
            }
            for key, value in values.items():
                if value is None:
                    continue
                totals[key] += value
                labelled[key].add_metric([col.namespace_id, col.collection_id], value)
        yield _gauge("stagewise_index_collections", "Collections of every namespace", len(cols))
        yield _gauge(
            "stagewise_index_shards_failed", "Collections whose shard did not answer", failed
        )
        yield _gauge(
            "stagewise_index_points", "Points of every collection's shard", totals["points"]
        )
        if self.stores.maintenance is not None:
            yield _gauge(
                "stagewise_index_unindexed_points",
                "Points outside HNSW, every collection",
                totals["unindexed_points"],
            )
        yield _gauge(
            "stagewise_index_follower_lag_seqs",
            "Writes this worker's index is behind the log, every collection",
            totals["lag"],
        )
        if self.per_collection:
            yield from labelled.values()


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def exposition(metrics: Metrics, stores: Stores, *, per_collection: bool) -> bytes:
    """The Prometheus text of this process: the counters, then what is read now."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_FollowerCollector(stores))
    scrape.register(_IndexCollector(stores, per_collection))
    return generate_latest(metrics.registry) + generate_latest(scrape)
