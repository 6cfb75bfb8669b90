"""Settings from the environment (STAGEWISE_*)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STAGEWISE_", extra="ignore")

    data_dir: Path = Path("./stagewise-data")
    # Empty means SQLite in the data dir (the embedded default).
    database_url: str = ""
    admin_key: str | None = None
    # "minilm" (the real local model) or "hash" (a deterministic toy for unit tests only).
    embedder: str = "minilm"
    max_text_bytes: int = Field(default=1_000_000, ge=1)  # any string in a request body
    max_json_depth: int = Field(default=32, ge=2, le=200)  # nesting of a request body
    max_request_bytes: int = Field(default=32_000_000, ge=1)
    embed_batch_size: int = Field(default=64, ge=1)
    # New points are searched by exact scan until they are in an HNSW index. When this many
    # wait in a collection, a child process builds the shard's next generation and the server
    # swaps it in (0 disables; `stagewise index optimize` builds offline). Checked every
    # index_build_poll_s seconds; a round that sees no new write counts as "writes stopped"
    # (docs/architecture.md, "Index builds").
    index_build_min_points: int = Field(default=20_000, ge=0)
    index_build_poll_s: float = Field(default=5.0, gt=0)
    # Signs cursors, scroll ids and keyset markers. Unset: generated once and kept in
    # <data_dir>/cursor.secret. Processes that share data must share this value.
    cursor_secret: str | None = Field(default=None, min_length=16)
    # Bounds on the work one request may ask for (docs/limits.md has the table).
    max_filter_depth: int = Field(default=10, ge=1, le=64)
    max_filter_conditions: int = Field(default=256, ge=1)
    max_in_values: int = Field(default=1024, ge=1)
    # Payloads a filter's residual (ends_with, regex, ...) may scan in Python (0: no cap).
    filter_scan_cap: int = Field(default=2_000, ge=0)
    max_template_output_chars: int = Field(default=100_000, ge=1)
    max_template_render_ms: float = Field(default=250.0, gt=0)
    max_stages: int = Field(default=32, ge=1)
    # An execution's deadline when its retriever sets no max_time_ms (and its ceiling).
    execution_deadline_ms: float = Field(default=60_000.0, gt=0)
    # Per API key: requests a second (0: off) with bursts, and executions at once (0: off).
    rate_limit_per_s: float = Field(default=500.0, ge=0)
    rate_limit_burst: int = Field(default=1000, ge=1)
    max_concurrent_executions: int = Field(default=64, ge=0)
    # Execution retention (docs/limits.md): finished runs older than this many days, and
    # those past the newest N of their namespace, are deleted with their results (0: keep).
    execution_retention_days: float = Field(default=30.0, ge=0)
    execution_retention_per_namespace: int = Field(default=100_000, ge=0)
    execution_prune_every_s: float = Field(default=60.0, gt=0)
    # Scale-out (docs/scaling.md). API worker processes: more than one needs PostgreSQL
    # (database_url) and Redis (redis_url) for the state every worker shares.
    workers: int = Field(default=1, ge=1, le=64)
    redis_url: str = ""
    # Keys under this prefix are this deployment's: several may share one Redis.
    redis_prefix: str = Field(default="stagewise:", min_length=1)
    # How often an index follower checks the log when no notification woke it.
    follower_poll_s: float = Field(default=1.0, gt=0)
    # This process's own index directory under data_dir/workers (set per worker by `serve
    # --workers`; None: the data dir's single index).
    worker_slot: int | None = Field(default=None, ge=0)
    # The vector index (storage/index/factory.py): "edge" (embedded shards under data_dir) or
    # "qdrant" (a Qdrant server at qdrant_url; ":memory:" or "local:PATH" for tests).
    vector_backend: Literal["edge", "qdrant"] = "edge"
    qdrant_url: str = ""
    qdrant_api_key: str | None = None
    # Ingestion (docs/ingestion.md). file:// blob paths must lie inside this directory (unset:
    # file:// is refused); outside URLs are never fetched.
    blob_import_dir: Path | None = None
    # Empty: batches run in-process on `ingest_workers` threads. Set (amqp://...): they run on
    # Celery workers started with `stagewise worker`.
    broker_url: str = ""
    # The Celery queue that serving processes send to and workers consume: deployments (or
    # test runs) that share one broker keep their tasks apart by giving each its own.
    broker_queue: str = Field(default="stagewise-ingest", min_length=1)
    ingest_workers: int = Field(default=1, ge=1, le=16)
    # A task whose worker died is started again (Celery redelivers it; a restarted server
    # resubmits it) at most this many times in all; then it fails.
    max_task_attempts: int = Field(default=3, ge=1, le=100)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'stagewise.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        if self.worker_slot is None:
            return self.data_dir / "index"
        return self.data_dir / "workers" / f"w{self.worker_slot}" / "index"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url().startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
