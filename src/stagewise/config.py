"""Settings from the environment (STAGEWISE_*)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
    # index_build_poll_s seconds.
    index_build_min_points: int = Field(default=20_000, ge=0)
    index_build_poll_s: float = Field(default=5.0, gt=0)
    # Signs cursors, scroll ids and keyset markers. Unset: generated once and kept in
    # <data_dir>/cursor.secret. Processes that share data must share this value.
    cursor_secret: str | None = Field(default=None, min_length=16)
    # Bounds on the work one request may ask for (docs/limits.md has the table).
    max_filter_depth: int = Field(default=10, ge=1, le=64)
    max_filter_conditions: int = Field(default=256, ge=1)
    max_in_values: int = Field(default=1024, ge=1)
    max_template_output_chars: int = Field(default=100_000, ge=1)
    max_template_render_ms: float = Field(default=250.0, gt=0)
    max_stages: int = Field(default=32, ge=1)
    # An execution's deadline when its retriever sets no max_time_ms (and its ceiling).
    execution_deadline_ms: float = Field(default=60_000.0, gt=0)
    # Per API key: requests a second (0: off) with bursts, and executions at once (0: off).
    rate_limit_per_s: float = Field(default=500.0, ge=0)
    rate_limit_burst: int = Field(default=1000, ge=1)
    max_concurrent_executions: int = Field(default=64, ge=0)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'stagewise.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"


@lru_cache
def get_settings() -> Settings:
    return Settings()
