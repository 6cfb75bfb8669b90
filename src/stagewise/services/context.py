"""The handles every service needs, opened once per process."""

from __future__ import annotations

import fcntl
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO

from stagewise.config import Settings
from stagewise.embeddings.base import Embedder
from stagewise.embeddings.factory import make_embedder
from stagewise.errors import InvalidRequest
from stagewise.services.cursors import CursorCodec, load_secret
from stagewise.services.follower import IndexFollower
from stagewise.services.limits import ExecutionSlots, RateLimiter
from stagewise.services.live_progress import LiveProgress
from stagewise.services.metrics import Metrics
from stagewise.services.task_queue import TaskQueue
from stagewise.storage.blobs import LocalBlobStore
from stagewise.storage.cached import CachedMetadataStore
from stagewise.storage.index.factory import make_search_index
from stagewise.storage.ingest import BlobStore, IngestStore
from stagewise.storage.local_state import LocalLiveExecutions, LocalResultCache
from stagewise.storage.protocols import MetadataStore, SearchIndex, ShardMaintenance
from stagewise.storage.sql.ingest_store import SqlIngestStore
from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.storage.sql.taxonomy_store import SqlTaxonomyStore
from stagewise.storage.state import (
    ConcurrencySlots,
    LiveExecutions,
    RequestRate,
    ResultCache,
)
from stagewise.storage.taxonomy_store import TaxonomyStore
from stagewise.storage.write_behind import WriteBehindExecutions

BACKGROUND_RUNS = 4  # wait=false executions run at once per worker
MAX_SLOTS = 64


@dataclass
class Stores:
    settings: Settings
    metadata: MetadataStore
    index: SearchIndex
    embedder: Embedder
    # Signs and checks every cursor, scroll id, keyset marker and write token.
    cursors: CursorCodec
    # Applies the SQL log to `index` (services/follower.py).
    follower: IndexFollower
    # The state every worker must see alike (storage/state.py): in-process or Redis.
    live: LiveExecutions
    results: ResultCache
    rate: RequestRate
    slots: ConcurrencySlots
    # Buckets, objects, batches and tasks (on the metadata store's engine), and blob bytes.
    ingest: IngestStore
    blobs: BlobStore
    # Taxonomies (services/taxonomies.py), in the same SQL store, read uncached.
    taxonomies: TaxonomyStore
    # This process, as the owner of the runs it carries out.
    worker_id: str = field(default_factory=lambda: f"w{os.getpid()}-{secrets.token_hex(4)}")
    # True when metadata reads are answered in-process (cached SQLite), so async request
    # code may call them without a thread hop.
    inline_reads: bool = False
    # Embedded shards only (generations, optimize); None for a shared Qdrant server.
    maintenance: ShardMaintenance | None = None
    # Publishes this worker's runs to `live` (services/live_progress.py).
    progress: LiveProgress = field(init=False)
    # Where ingestion tasks run (services/ingest_runtime.py); set once the stores are open.
    tasks: TaskQueue = field(init=False)
    # Tasks that need this process's index (taxonomy backfills): always in-process.
    local_tasks: TaskQueue = field(init=False)
    background: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(BACKGROUND_RUNS, "stagewise-exec")
    )
    closers: list[object] = field(default_factory=list)
    # This process's Prometheus counters (services/metrics.py); the app's, when it serves.
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        self.progress = LiveProgress(self.live, self.worker_id)

    def close(self) -> None:
        if hasattr(self, "tasks"):
            self.tasks.close()
            self.local_tasks.close()
        self.follower.stop()
        self.progress.close()
        self.background.shutdown(wait=False, cancel_futures=True)
        for closer in self.closers:
            close = getattr(closer, "close", None)
            if close is not None:
                close()
        self.index.close()
        self.metadata.close()


def check_topology(settings: Settings) -> None:
    """Refuses a configuration that could not keep its promises, before anything opens."""
    if settings.workers > 1 and settings.is_sqlite:
        raise InvalidRequest(
            "--workers needs PostgreSQL (STAGEWISE_DATABASE_URL): SQLite allows one writer at "
            "a time and cannot wake the other workers' index followers"
        )
    if settings.broker_url and settings.is_sqlite:
        raise InvalidRequest(
            "STAGEWISE_BROKER_URL needs PostgreSQL (STAGEWISE_DATABASE_URL): Celery workers "
            "write documents to the store from other processes, and only PostgreSQL wakes the "
            "serving processes' index followers when they do"
        )
    if settings.workers > 1 and not settings.redis_url:
        raise InvalidRequest(
            "--workers needs STAGEWISE_REDIS_URL: live executions, the result cache and the "
            "rate limits must be shared by every worker"
        )


class _SlotLock:
    """An index directory this process holds for as long as it runs (a flock)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle

    def close(self) -> None:
        self.handle.close()


def claim_worker_slot(settings: Settings) -> tuple[Settings, _SlotLock | None]:
    """Each process serving from a shared PostgreSQL store keeps its own follower index, in
    the first of data_dir/workers/w<N> that no running process holds. So N processes on one
    machine (`serve --workers N`, or several `serve`) never share a shard directory, and a
    restarted worker takes over a directory and catches it up from where it stopped."""
    if settings.is_sqlite or settings.worker_slot is not None:
        return settings, None
    root = settings.data_dir / "workers"
    root.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        handle = (root / f"w{slot}.lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return settings.model_copy(update={"worker_slot": slot}), _SlotLock(handle)
    raise InvalidRequest(f"all {MAX_SLOTS} worker index directories under {root} are in use")


def open_stores(settings: Settings, metrics: Metrics | None = None) -> Stores:
    check_topology(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings, slot_lock = claim_worker_slot(settings)
    url = settings.resolved_database_url()
    sql = SqlMetadataStore(url)
    # One process that owns a SQLite store writes execution records behind; with other
    # processes on the store, a run's record is committed before its answer. The catalog
    # (namespaces, collections, retrievers) is cached in every process: workers sharing
    # PostgreSQL drop their copies on each other's NOTIFY (storage/cached.py).
    exclusive = settings.is_sqlite and settings.workers == 1
    catalog = CachedMetadataStore(
        sql, announce=None if exclusive else sql.announce_catalog, own_documents=exclusive
    )
    metadata: MetadataStore = WriteBehindExecutions(catalog) if exclusive else catalog
    index, maintenance = make_search_index(settings)
    follower = IndexFollower(
        metadata,
        index,
        exclusive=exclusive or maintenance is None,
        shared_index=maintenance is None,
        poll_s=settings.follower_poll_s,
        listen_url=None if settings.is_sqlite else url,
        on_catalog_change=catalog.invalidate,
    )
    embedder = make_embedder(settings.embedder, settings.embed_batch_size)
    closers: list[object] = [slot_lock] if slot_lock is not None else []
    if settings.redis_url:
        from stagewise.storage.shared.redis_state import RedisState

        shared = RedisState(settings.redis_url, prefix=settings.redis_prefix)
        shared.ping()  # refuse to start without it, rather than answer 503s
        closers.append(shared)
        live: LiveExecutions = shared.live
        results: ResultCache = shared.results
        rate: RequestRate = shared.rate(settings.rate_limit_per_s, settings.rate_limit_burst)
        slots: ConcurrencySlots = shared.slots(
            settings.max_concurrent_executions,
            lease_s=settings.execution_deadline_ms / 1000.0 + 60.0,
        )
        secret = settings.cursor_secret or shared.secret.get_or_create(
            "cursor", lambda: secrets.token_hex(32)
        )
        cursors = CursorCodec(secret.encode())
    else:
        live, results = LocalLiveExecutions(), LocalResultCache()
        rate = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        slots = ExecutionSlots(settings.max_concurrent_executions)
        cursors = CursorCodec(load_secret(settings.cursor_secret, settings.data_dir))
    return Stores(
        settings=settings,
        metadata=metadata,
        index=index,
        embedder=embedder,
        cursors=cursors,
        follower=follower,
        live=live,
        results=results,
        rate=rate,
        slots=slots,
        ingest=SqlIngestStore(sql.engine),
        blobs=LocalBlobStore(settings.data_dir / "blobs"),
        taxonomies=SqlTaxonomyStore(sql.engine),
        inline_reads=exclusive,
        maintenance=maintenance,
        closers=closers,
        metrics=metrics or Metrics(),
    )
