"""Per-key request rate and concurrent executions (docs/limits.md).

The in-process implementations of storage/state.py's RequestRate and ConcurrencySlots, for
one server process; workers sharing a store count together in Redis (storage/shared/).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from stagewise.storage.state import too_many_executions, too_many_requests


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """A token bucket per key: `rate` requests a second on average, bursts of `burst`."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        # Keys are counted before they are checked (so guessing is limited too): the table is
        # bounded, least recently seen first out, or bogus keys would grow it without end.
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key_id: str) -> None:
        if self.rate <= 0:
            return  # turned off
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(float(self.burst), now)
                while len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key_id)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / self.rate
        raise too_many_requests(self.rate, self.burst, wait)


class ExecutionSlots:
    """At most `per_key` executions of one key run at once; past it a 429."""

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key_id: str) -> Callable[[], None]:
        """A slot, or RateLimited. The returned release may be called more than once."""
        if self.per_key <= 0:
            return lambda: None
        with self._lock:
            running = self._running.get(key_id, 0)
            if running >= self.per_key:
                raise too_many_executions(running, self.per_key)
            self._running[key_id] = running + 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                left = self._running.get(key_id, 1) - 1
                if left > 0:
                    self._running[key_id] = left
                else:
                    self._running.pop(key_id, None)

        return release


def retry_after_header(seconds: float) -> str:
    """Retry-After takes whole seconds; never 0 (a client would retry at once)."""
    return str(max(1, math.ceil(seconds)))
