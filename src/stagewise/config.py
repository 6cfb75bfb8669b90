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
    max_text_bytes: int = Field(default=1_000_000, ge=1)
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
