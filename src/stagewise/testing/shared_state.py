"""The conformance suite every cross-request state backend must pass (`storage/state.py`).

Subclass `SharedStateConformance` in a test module whose class name starts with ``Test`` and
override the `make_worker` fixture: a factory whose every call returns one more API worker's
view of the state (a `Worker`). Within one test all the workers of a shared backend see one
state; no two tests see each other's::

    class TestMyState(SharedStateConformance):
        shared = True

        @pytest.fixture
        def make_worker(self) -> Iterator[WorkerFactory]:
            states: list[MyState] = []

            def make(*, live_ttl_s: float = 3600.0) -> Worker:
                states.append(s := MyState(..., live_ttl_s=live_ttl_s))
                return Worker(s.live, s.results, s.secret, s.rate, s.slots)

            yield make
            for s in states:
                s.close()

Tests marked `@cross_worker` check what only a shared backend promises: that a second worker
sees the first one's state, and that what a dead worker held lapses. A subclass that sets
`shared = False` (the in-process state) has them removed when the class is defined, so
pytest never collects them: they neither run nor show as skipped, and the count of tests
collected says which suite ran.

Waits are bounded polls (`eventually`), never a fixed sleep past ~2 s; no test asserts a
timing beyond generous bounds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

import pytest

from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.errors import RateLimited
from stagewise.ids import new_id
from stagewise.storage.state import (
    ConcurrencySlots,
    LiveExecutions,
    RequestRate,
    ResultCache,
    SharedSecret,
)

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
THREADS = 8
LONG_LEASE_S = 60.0


@dataclass
class Worker:
    """One API worker's view of the cross-request state."""

    live: LiveExecutions
    results: ResultCache
    secret: SharedSecret
    rate: Callable[[float, int], RequestRate]  # (rate a second, burst)
    slots: Callable[[int, float], ConcurrencySlots]  # (per key, lease in seconds)


class WorkerFactory(Protocol):
    def __call__(self, *, live_ttl_s: float = ...) -> Worker: ...


F = TypeVar("F", bound=Callable[..., Any])


def cross_worker(test: F) -> F:
    """A test only a shared backend can pass; not collected where `shared = False`."""
    test.cross_worker = True  # type: ignore[attr-defined]
    return test


def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Polls `check` until it holds or `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def make_record(**kw: Any) -> ExecutionRecord:
    fields: dict[str, Any] = {
        "execution_id": new_id("exec_"),
        "namespace_id": "ns_conformance",
        "retriever_id": "ret_1",
        "retriever_version": 3,
        "status": "processing",
        "inputs": {"query": "héllo wörld ✓", "k": 10, "nested": {"a": [1, 2.5, None]}},
        "filters": {"AND": [{"field": "x", "operator": "eq", "value": 1}]},
        "total_stages": 3,
        "stages_completed": 1,
        "current_stage": "rerank",
        "stage_statistics": {"search": {"duration_ms": 1.25, "stage_cache_hit": False}},
        "read_versions": {"docs": "col_1@42", "gone": None},
        "created_at": T0,
        "started_at": T0,
    }
    fields.update(kw)
    return ExecutionRecord(**fields)


def run_threads(n: int, body: Callable[[int], Any]) -> list[Any]:
    """`body(i)` on n threads that start together; their results, or the first error."""
    barrier = threading.Barrier(n)

    def start(i: int) -> Any:
        barrier.wait(timeout=10)
        return body(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(start, range(n)))


def refused(check: Callable[[], Any]) -> RateLimited | None:
    try:
        check()
    except RateLimited as exc:
        return exc
    return None


class SharedStateConformance:
    """Shared behaviour of every cross-request state backend. Subclasses provide
    `make_worker` and say whether their workers share one state."""

    shared: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.shared:
            for name in dir(cls):
                if getattr(getattr(cls, name, None), "cross_worker", False):
                    setattr(cls, name, None)  # pytest collects only callables

    @pytest.fixture
    def make_worker(self) -> WorkerFactory:
        raise NotImplementedError("subclasses must provide a `make_worker` fixture")

    @pytest.fixture
    def worker(self, make_worker: WorkerFactory) -> Worker:
        return make_worker()

    # ---- live executions

    def test_live_round_trip(self, worker: Worker) -> None:
        record = make_record()
        assert worker.live.get(record.execution_id) is None
        worker.live.put(record, "owner_a")
        assert worker.live.get(record.execution_id) == record
        assert worker.live.get("exec_unknown") is None

    def test_live_put_again_replaces(self, worker: Worker) -> None:
        record = make_record(status="pending", stages_completed=0)
        worker.live.put(record, "owner_a")
        progressed = record.model_copy(update={"status": "processing", "stages_completed": 2})
        worker.live.put(progressed, "owner_a")
        assert worker.live.get(record.execution_id) == progressed

    def test_live_holds_a_snapshot(self, worker: Worker) -> None:
        record = make_record()
        worker.live.put(record, "owner_a")
        record.status = "completed"
        record.stage_statistics["search"]["duration_ms"] = 99.0
        got = worker.live.get(record.execution_id)
        assert got is not None
        assert (got.status, got.stage_statistics["search"]["duration_ms"]) == ("processing", 1.25)
        got.inputs["query"] = "changed"
        again = worker.live.get(record.execution_id)
        assert again is not None and again.inputs["query"] == "héllo wörld ✓"

    def test_live_discard(self, worker: Worker) -> None:
        kept, dropped = make_record(), make_record()
        worker.live.put(kept, "owner_a")
        worker.live.put(dropped, "owner_a")
        worker.live.discard(dropped.execution_id)
        worker.live.discard(dropped.execution_id)  # again: nothing to do
        worker.live.discard("exec_unknown")
        assert worker.live.get(dropped.execution_id) is None
        assert worker.live.get(kept.execution_id) == kept

    def test_live_orphans_are_the_runs_not_held(self, worker: Worker) -> None:
        worker.live.heartbeat("owner_a", 60.0)
        a, b = make_record(), make_record()
        worker.live.put(a, "owner_a")
        worker.live.put(b, "owner_a")
        ids = [a.execution_id, "exec_x", b.execution_id, "exec_y"]
        assert worker.live.orphans(ids) == ["exec_x", "exec_y"]  # in the order asked
        assert worker.live.orphans([]) == []
        worker.live.discard(a.execution_id)
        assert worker.live.orphans([a.execution_id, b.execution_id]) == [a.execution_id]

    def test_live_orphans_of_hundreds_of_ids(self, worker: Worker) -> None:
        worker.live.heartbeat("owner_a", 60.0)
        ids = [f"exec_{i:04d}" for i in range(400)]
        for execution_id in ids[::2]:
            worker.live.put(make_record(execution_id=execution_id), "owner_a")
        assert worker.live.orphans(ids) == ids[1::2]

    def test_live_under_threads(self, worker: Worker) -> None:
        worker.live.heartbeat("owner_a", 60.0)

        def body(t: int) -> list[ExecutionRecord]:
            finals = []
            for i in range(15):
                record = make_record(execution_id=f"exec_{t}_{i}", stages_completed=0)
                worker.live.put(record, "owner_a")
                for step in range(1, 4):
                    record = record.model_copy(update={"stages_completed": step})
                    worker.live.put(record, "owner_a")
                    assert worker.live.get(record.execution_id) == record
                if i % 2:
                    worker.live.discard(record.execution_id)
                else:
                    finals.append(record)
            return finals

        kept = [r for rs in run_threads(THREADS, body) for r in rs]
        assert len(kept) == THREADS * 8
        for record in kept:
            assert worker.live.get(record.execution_id) == record
        every = [f"exec_{t}_{i}" for t in range(THREADS) for i in range(15)]
        assert worker.live.orphans(every) == [i for i in every if int(i.rsplit("_")[-1]) % 2]

    @cross_worker
    def test_workers_see_each_others_runs(self, make_worker: WorkerFactory) -> None:
        one, two = make_worker(), make_worker()
        one.live.heartbeat("owner_one", 60.0)
        record = make_record(status="pending")
        one.live.put(record, "owner_one")
        assert two.live.get(record.execution_id) == record
        assert two.live.orphans([record.execution_id]) == []
        progressed = record.model_copy(update={"status": "processing", "stages_completed": 2})
        one.live.put(progressed, "owner_one")
        assert two.live.get(record.execution_id) == progressed
        two.live.discard(record.execution_id)
        assert one.live.get(record.execution_id) is None

    @cross_worker
    def test_runs_of_a_silent_owner_become_orphans(self, make_worker: WorkerFactory) -> None:
        one, two = make_worker(), make_worker()
        one.live.heartbeat("owner_one", 1.0)
        two.live.heartbeat("owner_two", 60.0)
        mine, theirs = make_record(), make_record()
        one.live.put(mine, "owner_one")
        two.live.put(theirs, "owner_two")
        ids = [mine.execution_id, theirs.execution_id]
        assert two.live.orphans(ids) == []
        # owner_one stops beating: its run is an orphan, though its entry is still there.
        assert eventually(lambda: two.live.orphans(ids) == [mine.execution_id])
        assert two.live.get(mine.execution_id) == mine
        one.live.heartbeat("owner_one", 60.0)  # back: its runs are held again
        assert two.live.orphans(ids) == []

    @cross_worker
    def test_a_beating_owner_keeps_its_runs(self, make_worker: WorkerFactory) -> None:
        one, two = make_worker(), make_worker()
        record = make_record()
        one.live.heartbeat("owner_one", 1.0)
        one.live.put(record, "owner_one")
        until = time.monotonic() + 2.0
        while time.monotonic() < until:  # renewed well inside its ttl
            one.live.heartbeat("owner_one", 1.0)
            assert two.live.orphans([record.execution_id]) == []
            time.sleep(0.1)

    @cross_worker
    def test_a_run_of_an_owner_never_seen_is_an_orphan(self, make_worker: WorkerFactory) -> None:
        one, two = make_worker(), make_worker()
        record = make_record()
        one.live.put(record, "owner_ghost")
        assert two.live.orphans([record.execution_id]) == [record.execution_id]

    @cross_worker
    def test_live_entries_expire(self, make_worker: WorkerFactory) -> None:
        one, two = make_worker(live_ttl_s=0.5), make_worker()
        one.live.heartbeat("owner_one", 60.0)
        record = make_record()
        one.live.put(record, "owner_one")
        assert two.live.get(record.execution_id) == record
        # Never discarded (a lost discard): it goes all the same, and is an orphan then.
        assert eventually(lambda: two.live.get(record.execution_id) is None)
        assert two.live.orphans([record.execution_id]) == [record.execution_id]

    # ---- result cache

    def test_results_round_trip(self, worker: Worker) -> None:
        assert worker.results.get("key_1") is None
        worker.results.put("key_1", "exec_a")
        worker.results.put("key_2", "exec_b")
        assert (worker.results.get("key_1"), worker.results.get("key_2")) == ("exec_a", "exec_b")
        worker.results.put("key_1", "exec_c")  # a newer run of the same request
        assert worker.results.get("key_1") == "exec_c"

    def test_results_under_threads(self, worker: Worker) -> None:
        def body(t: int) -> None:
            for i in range(40):
                worker.results.put(f"key_{t}_{i}", f"exec_{t}_{i}")
                assert worker.results.get(f"key_{t}_{i}") == f"exec_{t}_{i}"
                worker.results.put("contended", f"exec_{t}_{i}")

        run_threads(THREADS, body)
        for t in range(THREADS):
            for i in range(40):
                assert worker.results.get(f"key_{t}_{i}") == f"exec_{t}_{i}"
        assert worker.results.get("contended") in {
            f"exec_{t}_39" for t in range(THREADS)
        }  # the last put of some thread, never a mix

    @cross_worker
    def test_workers_share_results(self, make_worker: WorkerFactory) -> None:
        one, two = make_worker(), make_worker()
        one.results.put("key_1", "exec_a")
        assert two.results.get("key_1") == "exec_a"
        two.results.put("key_1", "exec_b")
        assert one.results.get("key_1") == "exec_b"

    # ---- request rate

    def test_rate_bursts_then_refuses(self, worker: Worker) -> None:
        rate = worker.rate(0.5, 5)  # a token every 2 s
        for _ in range(5):
            rate.check("key_a")
        exc = refused(lambda: rate.check("key_a"))
        assert exc is not None, "the sixth request inside the burst window was let through"
        assert (exc.status, exc.code) == (429, "rate_limited")
        assert exc.details["limit_per_second"] == 0.5
        assert 1.0 < exc.details["retry_after_seconds"] <= 2.0  # a whole token, less the trickle
        rate.check("key_b")  # keys are counted apart

    def test_rate_refills(self, worker: Worker) -> None:
        rate = worker.rate(2.0, 1)  # a token every 0.5 s
        rate.check("key_a")
        exc = refused(lambda: rate.check("key_a"))
        assert exc is not None
        wait = exc.details["retry_after_seconds"]
        assert 0.0 < wait <= 0.5
        time.sleep(wait + 0.1)
        rate.check("key_a")  # refilled when it said
        assert refused(lambda: rate.check("key_a")) is not None  # but only one token

    def test_rate_off_and_burst_floor(self, worker: Worker) -> None:
        for off in (worker.rate(0.0, 1), worker.rate(-1.0, 1)):
            for _ in range(200):
                off.check("key_a")
        floor = worker.rate(0.01, 0)  # a burst below 1 is 1
        floor.check("key_b")
        assert refused(lambda: floor.check("key_b")) is not None

    def test_rate_is_exact_under_threads(self, worker: Worker) -> None:
        rate = worker.rate(0.01, 25)  # refill is negligible while this runs

        def body(_: int) -> int:
            return sum(refused(lambda: rate.check("key_a")) is None for _ in range(10))

        assert sum(run_threads(THREADS, body)) == 25

    @cross_worker
    def test_workers_share_a_bucket(self, make_worker: WorkerFactory) -> None:
        one, two = make_worker().rate(0.01, 6), make_worker().rate(0.01, 6)
        allowed = [refused(partial(w.check, "key_a")) is None for w in (one, two) * 6]
        assert sum(allowed) == 6
        assert all(allowed[:6]) and not any(allowed[6:])

    # ---- concurrency slots

    def test_slots_limit_and_release(self, worker: Worker) -> None:
        slots = worker.slots(2, LONG_LEASE_S)
        first, _second = slots.acquire("key_a"), slots.acquire("key_a")
        exc = refused(lambda: slots.acquire("key_a"))
        assert exc is not None, "a third slot was given past a limit of 2"
        assert (exc.status, exc.code) == (429, "too_many_executions")
        assert exc.details == {"retry_after_seconds": 1.0, "limit": 2}
        slots.acquire("key_b")()  # keys are counted apart
        first()
        slots.acquire("key_a")
        assert refused(lambda: slots.acquire("key_a")) is not None

    def test_slots_release_is_idempotent(self, worker: Worker) -> None:
        slots = worker.slots(2, LONG_LEASE_S)
        first, _second = slots.acquire("key_a"), slots.acquire("key_a")
        for _ in range(3):
            first()
        slots.acquire("key_a")  # the one that first freed
        assert refused(lambda: slots.acquire("key_a")) is not None  # and no more

    def test_slots_off(self, worker: Worker) -> None:
        slots = worker.slots(0, LONG_LEASE_S)
        for _ in range(50):
            slots.acquire("key_a")

    def test_slots_are_exact_under_threads(self, worker: Worker) -> None:
        slots = worker.slots(3, LONG_LEASE_S)

        def body(_: int) -> Callable[[], None] | None:
            try:
                return slots.acquire("key_a")
            except RateLimited:
                return None

        for _ in range(2):  # all released, the next round gets three again
            got = [release for release in run_threads(12, body) if release is not None]
            assert len(got) == 3
            for release in got:
                release()

    def test_slots_never_overcommit_under_churn(self, worker: Worker) -> None:
        slots = worker.slots(3, LONG_LEASE_S)
        lock = threading.Lock()
        held = peak = 0

        def body(_: int) -> int:
            nonlocal held, peak
            taken = 0
            for _ in range(30):
                try:
                    release = slots.acquire("key_a")
                except RateLimited:
                    continue
                taken += 1
                with lock:
                    held += 1
                    peak = max(peak, held)
                time.sleep(0.001)  # hold it a moment, so that holders overlap
                with lock:
                    held -= 1
                release()
                release()
            return taken

        assert sum(run_threads(THREADS, body)) > 0
        assert peak <= 3
        finals = [slots.acquire("key_a") for _ in range(3)]  # every slot came back
        assert refused(lambda: slots.acquire("key_a")) is not None
        for release in finals:
            release()

    @cross_worker
    def test_workers_share_slots(self, make_worker: WorkerFactory) -> None:
        one, two = make_worker().slots(2, LONG_LEASE_S), make_worker().slots(2, LONG_LEASE_S)
        release = one.acquire("key_a")
        two.acquire("key_a")
        assert refused(lambda: one.acquire("key_a")) is not None
        assert refused(lambda: two.acquire("key_a")) is not None
        release()
        two.acquire("key_a")

    @cross_worker
    def test_a_dead_workers_slot_lapses(self, make_worker: WorkerFactory) -> None:
        dead, alive = make_worker().slots(2, 0.3), make_worker().slots(2, LONG_LEASE_S)
        held = alive.acquire("key_a")  # a long lease that outlives the dead one's
        stale = dead.acquire("key_a")  # its worker dies without releasing
        assert refused(lambda: alive.acquire("key_a")) is not None
        taken: list[Callable[[], None]] = []

        def take() -> bool:
            try:
                taken.append(alive.acquire("key_a"))
            except RateLimited:
                return False
            return True

        assert eventually(take)
        stale()  # the late release of a lapsed lease frees nobody else's slot
        assert refused(lambda: alive.acquire("key_a")) is not None  # held and taken remain
        held()
        taken[0]()
        alive.acquire("key_a")
        alive.acquire("key_a")

    # ---- shared secret

    def test_secret_is_made_once(self, worker: Worker) -> None:
        assert worker.secret.get_or_create("cursor", lambda: "s1") == "s1"
        assert worker.secret.get_or_create("cursor", lambda: "s2") == "s1"
        assert worker.secret.get_or_create("other", lambda: "s3") == "s3"

    def test_secret_race_has_one_winner(self, worker: Worker) -> None:
        got = run_threads(THREADS, lambda i: worker.secret.get_or_create("cursor", lambda: f"s{i}"))
        assert len(set(got)) == 1
        assert got[0] in {f"s{i}" for i in range(THREADS)}

    @cross_worker
    def test_workers_share_one_secret(self, make_worker: WorkerFactory) -> None:
        workers = [make_worker() for _ in range(2)]

        def body(i: int) -> str:
            return workers[i % 2].secret.get_or_create("cursor", lambda: f"s{i}")

        got = run_threads(THREADS, body)
        assert len(set(got)) == 1
        assert workers[1].secret.get_or_create("cursor", lambda: "late") == got[0]
