"""`stagewise serve --workers N` on a fresh PostgreSQL database and a private Redis prefix,
as a child process (the scale-out topology of docs/scaling.md)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis

from tests.support.killable_server import KillableServer
from tests.support.pg import admin_engine, fresh_database

REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN_KEY = "sk_test_admin_key_for_the_suite"


def check_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError as exc:
        raise AssertionError(
            "these tests need Redis at 127.0.0.1:6379 (.ci/run starts it)"
        ) from exc


@contextlib.contextmanager
def shared_env(prefix: str = "sw") -> Iterator[dict[str, str]]:
    """The environment of workers that share one fresh database and one Redis prefix."""
    check_redis()
    keys = f"swtest:{uuid.uuid4().hex[:8]}:"
    with fresh_database(admin_engine(), prefix) as url:
        try:
            yield {
                "STAGEWISE_DATABASE_URL": url,
                "STAGEWISE_REDIS_URL": REDIS_URL,
                "STAGEWISE_REDIS_PREFIX": keys,
            }
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"{keys}*"):
                client.delete(key)


@contextlib.contextmanager
def workers_server(data_dir: Path, workers: int, **env: str) -> Iterator[KillableServer]:
    with shared_env("sw_workers") as shared:
        server = KillableServer(
            data_dir, ADMIN_KEY, {**shared, **env}, args=("--workers", str(workers))
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()
