"""Cross-request state: what every API worker must see alike (docs/architecture.md,
"Scale-out"). Each protocol has an in-process implementation, for the one-process default,
and a shared one (Redis, `storage/shared/`) for N workers. `stagewise.testing.shared_state`
is the suite both pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.errors import RateLimited


class LiveExecutions(Protocol):
    """Runs accepted and not yet finished, readable from every worker while they run.

    A run is put when it is accepted (pending) and on its progress, and discarded once its
    final record is stored. Each entry names its owner (a worker id): a run whose owner is
    gone will never finish, and `orphans` finds it so that it can be failed."""

    def put(self, record: ExecutionRecord, owner: str) -> None: ...
    def get(self, execution_id: str) -> ExecutionRecord | None: ...
    def discard(self, execution_id: str) -> None: ...
    # Marks a worker alive for `ttl_s`; called periodically by each worker, and before its
    # first put: a shared backend counts the runs of an owner never seen as orphans.
    def heartbeat(self, owner: str, ttl_s: float) -> None: ...
    # Of these execution ids, in the order given, the ones no live worker holds (unknown, or
    # owner gone). A run that finished and was discarded is unknown too: check its stored
    # record before failing it.
    def orphans(self, execution_ids: list[str]) -> list[str]: ...
    def close(self) -> None: ...


class ResultCache(Protocol):
    """The latest completed run of each (retriever version, inputs, filters): key -> run id.
    Whether that run is still fresh is decided from the run itself (its read versions)."""

    def get(self, key: str) -> str | None: ...
    def put(self, key: str, execution_id: str) -> None: ...


class RequestRate(Protocol):
    """A token bucket per key; `check` raises RateLimited (429) past it."""

    def check(self, key_id: str) -> None: ...


class ConcurrencySlots(Protocol):
    """At most N executions of one key at once; `acquire` raises RateLimited past it. The
    returned release may be called more than once."""

    def acquire(self, key_id: str) -> Callable[[], None]: ...


class SharedSecret(Protocol):
    """One secret shared by every worker (the cursor signing key), made once."""

    def get_or_create(self, name: str, make: Callable[[], str]) -> str: ...


def too_many_requests(rate: float, burst: int, wait_s: float) -> RateLimited:
    """The 429 of every RequestRate, so both implementations answer alike."""
    return RateLimited(
        f"Too many requests for this API key: the limit is {rate:g} a second "
        f"(bursts of {burst}); retry in {wait_s:.2f} s",
        code="rate_limited",
        retry_after_seconds=round(wait_s, 3),
        limit_per_second=rate,
    )


def too_many_executions(running: int, limit: int) -> RateLimited:
    """The 429 of every ConcurrencySlots."""
    return RateLimited(
        f"This API key already runs {running} executions, its limit; retry when one has finished",
        code="too_many_executions",
        retry_after_seconds=1.0,
        limit=limit,
    )
