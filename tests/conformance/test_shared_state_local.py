"""The cross-request state conformance suite on the in-process state (the one-process
default): storage/local_state.py, with services/limits.py's RateLimiter and ExecutionSlots.
Its cross-worker tests are not collected here (`shared = False`)."""

from __future__ import annotations

import pytest

from stagewise.services.limits import ExecutionSlots, RateLimiter
from stagewise.storage.local_state import LocalLiveExecutions, LocalResultCache, LocalSecret
from stagewise.storage.state import ConcurrencySlots
from stagewise.testing.shared_state import (
    SharedStateConformance,
    Worker,
    WorkerFactory,
    make_record,
)

pytestmark = pytest.mark.unit


def _slots(per_key: int, lease_s: float) -> ConcurrencySlots:
    return ExecutionSlots(per_key)  # no lease: a slot dies with its process


class TestLocalSharedState(SharedStateConformance):
    shared = False

    @pytest.fixture
    def make_worker(self) -> WorkerFactory:
        def make(*, live_ttl_s: float = 3600.0) -> Worker:
            return Worker(
                LocalLiveExecutions(), LocalResultCache(), LocalSecret(), RateLimiter, _slots
            )

        return make


def test_cross_worker_tests_are_left_out_here() -> None:
    names = [
        name
        for name in dir(SharedStateConformance)
        if getattr(getattr(SharedStateConformance, name), "cross_worker", False)
    ]
    assert len(names) >= 10
    assert all(getattr(TestLocalSharedState, name) is None for name in names)


def test_result_cache_drops_the_least_recently_used() -> None:
    cache = LocalResultCache(size=3)
    for i in range(3):
        cache.put(f"k{i}", f"e{i}")
    assert cache.get("k0") == "e0"  # now the most recently used
    cache.put("k3", "e3")
    assert [cache.get(f"k{i}") for i in range(4)] == ["e0", None, "e2", "e3"]


def test_local_runs_are_never_orphaned_by_their_owner() -> None:
    live = LocalLiveExecutions()
    record = make_record()
    live.put(record, "owner_never_beat")  # every owner here is this process
    live.heartbeat("owner_never_beat", 0.001)
    assert live.orphans([record.execution_id, "exec_x"]) == ["exec_x"]
