"""Engine construction with the per-dialect settings that durability and concurrency need."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns go through orjson: several times faster than the stdlib for result snapshots.
_JSON = {"json_serializer": _dumps, "json_deserializer": orjson.loads}


def make_engine(url: str, *, synchronous: str = "FULL") -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            **_JSON,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=8,
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL + synchronous=FULL: an acknowledged commit survives a crash or power loss.
            # NORMAL (used for execution records) survives a process crash, not a power cut.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # No pre-ping: it is a round trip on every checkout (an execute checks out ~8 times). A
    # connection the server dropped fails its statement instead; SQLAlchemy then discards the
    # pool, and the error is answered 503 with Retry-After (api/errors.py).
    options = {} if synchronous == "FULL" else {"options": "-c synchronous_commit=off"}
    return sa.create_engine(
        url, pool_size=10, max_overflow=10, pool_recycle=1800, connect_args=options, **_JSON
    )
