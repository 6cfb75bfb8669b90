"""Cross-request state in Redis (`storage/state.py`), seen alike by every API worker.

One `RedisState` holds one connection pool and a key prefix; its members implement the five
protocols. Time is the Redis server's (TIME inside the Lua scripts), so the workers' clocks
never matter, and every key that could be left behind expires. Keys, under the prefix:

    live:<execution id>  hash {owner, record}: expires live_ttl_s after its last put
    alive:<owner>        a worker's heartbeat: expires ttl_s after the last one
    result:<cache key>   an execution id: expires result_ttl_s after its put
    rate:<key id>        hash {tokens, stamp}: expires once a full refill would have passed
    slots:<key id>       sorted set of token -> lease deadline (ms): expires with its last lease
    secret:<name>        never expires

A Redis that cannot be reached (or is loading, read-only, out of memory) is an `Unavailable`
(503, retry in 1 s) naming the URL without its credentials.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import redis
from redis import exceptions as rx
from redis.backoff import NoBackoff
from redis.retry import Retry

from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.errors import Unavailable
from stagewise.storage.state import too_many_executions, too_many_requests

log = logging.getLogger("stagewise.shared_state")

DEFAULT_PREFIX = "stagewise:"
DEFAULT_LIVE_TTL_S = 3600.0
DEFAULT_RESULT_TTL_S = 3600.0
# A slot is held for the length of a run, which the execution deadline bounds (60 s by
# default); the lease only matters when a worker died holding it.
DEFAULT_LEASE_S = 120.0

# Server-side failures that mean "not now" rather than a bug in the request.
_UNAVAILABLE = (
    rx.ConnectionError,  # also refused auth, loading, pool exhausted
    rx.TimeoutError,
    rx.ReadOnlyError,
    rx.OutOfMemoryError,
    rx.MasterDownError,
    rx.TryAgainError,
)

# KEYS[1] the bucket; ARGV rate (tokens a second), burst. {1}, or {0, seconds to a token}.
_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(held[1])
local stamp = tonumber(held[2])
if tokens == nil or stamp == nil then
  tokens = burst
  stamp = now
end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local allowed = tokens >= 1
if allowed then tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'stamp', string.format('%.6f', now))
-- Idle for a full refill, a bucket is as good as new: let it go (within 30 days, so that
-- a tiny rate cannot overflow the integer).
local idle_ms = math.min(math.ceil(burst / rate * 1000) + 1000, 2592000000)
redis.call('PEXPIRE', KEYS[1], string.format('%d', idle_ms))
if allowed then return {1} end
return {0, string.format('%.6f', (1 - tokens) / rate)}
"""

# KEYS[1] the key's leases; ARGV limit, lease (ms), token. 0 if taken, else the number held.
_SLOT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
local running = redis.call('ZCARD', KEYS[1])
if running >= tonumber(ARGV[1]) then return running end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%d', now + lease), ARGV[3])
-- The key lives as long as its longest lease: extend, never shorten (-1: none set yet).
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def redact(url: str) -> str:
    """The URL without user, password or query (which may carry a password)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _text(value: str | bytes) -> str:
    # decode_responses=True gives str; a URL may still ask for bytes.
    return value if isinstance(value, str) else value.decode()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisState:
    """The five protocols over one Redis: `.live`, `.results`, `.secret`, `.rate(...)`,
    `.slots(...)`. Workers that share a URL and prefix share their state."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        live_ttl_s: float = DEFAULT_LIVE_TTL_S,
        result_ttl_s: float = DEFAULT_RESULT_TTL_S,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = redact(url)
        self.prefix = prefix
        # Options in the URL's query win over these. One retry, at once, on a dropped
        # connection (a pooled socket Redis closed); a timeout is not retried: it may have run.
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=min(timeout_s, 2.0),
            retry=Retry(NoBackoff(), 1, supported_errors=(rx.ConnectionError,)),
        )
        # EVALSHA, loading the script again if Redis lost it (a restart).
        self.bucket_script = self.client.register_script(_BUCKET_LUA)
        self.slot_script = self.client.register_script(_SLOT_LUA)
        self.live = RedisLiveExecutions(self, live_ttl_s)
        self.results = RedisResultCache(self, result_ttl_s)
        self.secret = RedisSecret(self)

    def key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    @contextmanager
    def reachable(self) -> Iterator[None]:
        """Turns Redis being away into Unavailable."""
        try:
            yield
        except _UNAVAILABLE as exc:
            raise Unavailable(
                f"Shared state (Redis at {self.url}) is unavailable: {exc}",
                retry_after_seconds=1,
            ) from exc

    def ping(self) -> None:
        """Raises Unavailable unless Redis answers (for a check at startup)."""
        with self.reachable():
            self.client.ping()

    def rate(self, rate: float, burst: int) -> RedisRequestRate:
        return RedisRequestRate(self, rate, burst)

    def slots(self, per_key: int, lease_s: float = DEFAULT_LEASE_S) -> RedisConcurrencySlots:
        return RedisConcurrencySlots(self, per_key, lease_s)

    def close(self) -> None:
        """Closes the pool's connections; a later call opens new ones."""
        self.client.close()


class RedisLiveExecutions:
    def __init__(self, state: RedisState, ttl_s: float) -> None:
        self._state = state
        self._ttl_ms = _ms(ttl_s)

    def put(self, record: ExecutionRecord, owner: str) -> None:
        key = self._state.key("live", record.execution_id)
        with self._state.reachable(), self._state.client.pipeline(transaction=True) as p:
            p.hset(key, mapping={"owner": owner, "record": record.model_dump_json()})
            p.pexpire(key, self._ttl_ms)
            p.execute()

    def get(self, execution_id: str) -> ExecutionRecord | None:
        with self._state.reachable():
            raw = self._state.client.hget(self._state.key("live", execution_id), "record")
        return None if raw is None else ExecutionRecord.model_validate_json(raw)

    def discard(self, execution_id: str) -> None:
        with self._state.reachable():
            self._state.client.delete(self._state.key("live", execution_id))

    def heartbeat(self, owner: str, ttl_s: float) -> None:
        with self._state.reachable():
            self._state.client.set(self._state.key("alive", owner), "1", px=_ms(ttl_s))

    def orphans(self, execution_ids: list[str]) -> list[str]:
        if not execution_ids:
            return []
        key = self._state.key
        with self._state.reachable():
            # Two round trips whatever the count: every run's owner, then each owner's pulse.
            with self._state.client.pipeline(transaction=False) as p:
                for execution_id in execution_ids:
                    p.hget(key("live", execution_id), "owner")
                owners: list[str | None] = p.execute()
            named = sorted({o for o in owners if o is not None})
            pulses: list[Any] = (
                self._state.client.mget([key("alive", o) for o in named]) if named else []
            )
        alive = {o for o, pulse in zip(named, pulses, strict=True) if pulse is not None}
        return [i for i, o in zip(execution_ids, owners, strict=True) if o not in alive]

    def close(self) -> None:
        self._state.close()


class RedisResultCache:
    def __init__(self, state: RedisState, ttl_s: float) -> None:
        self._state = state
        self._ttl_ms = _ms(ttl_s)

    def get(self, key: str) -> str | None:
        with self._state.reachable():
            found = self._state.client.get(self._state.key("result", key))
        return None if found is None else _text(found)

    def put(self, key: str, execution_id: str) -> None:
        with self._state.reachable():
            self._state.client.set(self._state.key("result", key), execution_id, px=self._ttl_ms)


class RedisRequestRate:
    """RateLimiter's token bucket (services/limits.py), one per key in Redis."""

    def __init__(self, state: RedisState, rate: float, burst: int) -> None:
        self._state = state
        self.rate = rate
        self.burst = max(1, burst)

    def check(self, key_id: str) -> None:
        if self.rate <= 0:
            return  # turned off
        with self._state.reachable():
            answer: Any = self._state.bucket_script(
                keys=[self._state.key("rate", key_id)], args=[repr(self.rate), self.burst]
            )
        if int(answer[0]) == 1:
            return
        wait = float(answer[1])
        raise too_many_requests(self.rate, self.burst, wait)


class RedisConcurrencySlots:
    """ExecutionSlots (services/limits.py) across workers: each slot is a lease that lapses
    after `lease_s`, so a worker that dies holding one does not hold it for ever."""

    def __init__(self, state: RedisState, per_key: int, lease_s: float) -> None:
        self._state = state
        self.per_key = per_key
        self.lease_s = lease_s

    def acquire(self, key_id: str) -> Callable[[], None]:
        if self.per_key <= 0:
            return lambda: None
        key = self._state.key("slots", key_id)
        token = secrets.token_hex(8)
        with self._state.reachable():
            running = int(
                self._state.slot_script(keys=[key], args=[self.per_key, _ms(self.lease_s), token])
            )
        if running:
            raise too_many_executions(running, self.per_key)
        lock = threading.Lock()
        released = False

        def release() -> None:
            nonlocal released
            with lock:
                if released:
                    return
                released = True
            try:
                with self._state.reachable():
                    self._state.client.zrem(key, token)
            except Unavailable as exc:
                # Called when a run ends, often in a `finally`: its answer stands, and the
                # lease frees the slot later.
                log.warning("could not release an execution slot of %s: %s", key_id, exc)

        return release


class RedisSecret:
    def __init__(self, state: RedisState) -> None:
        self._state = state

    def get_or_create(self, name: str, make: Callable[[], str]) -> str:
        key = self._state.key("secret", name)
        with self._state.reachable():
            found = self._state.client.get(key)
            if found is None:
                # The first SET wins; every racer reads the winner back in the same trip.
                with self._state.client.pipeline(transaction=True) as p:
                    p.set(key, make(), nx=True)
                    p.get(key)
                    found = p.execute()[1]
        return _text(found)
