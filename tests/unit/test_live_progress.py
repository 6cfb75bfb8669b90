"""LiveProgress: nothing stays published after a run's end, and no request waits on the
flusher's writes to the registry."""

from __future__ import annotations

import random
import threading
import time

import pytest

from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.services.live_progress import LiveProgress

pytestmark = pytest.mark.unit


class SlowRegistry:
    """A LiveExecutions whose writes take a while (a remote registry), recording them."""

    def __init__(self, delay_s: float = 0.002) -> None:
        self.delay_s = delay_s
        self.entries: dict[str, ExecutionRecord] = {}
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()

    def put(self, record: ExecutionRecord, owner: str) -> None:
        self.gate.wait()
        time.sleep(random.uniform(0, self.delay_s))
        with self.lock:
            self.entries[record.execution_id] = record.model_copy(deep=True)

    def discard(self, execution_id: str) -> None:
        time.sleep(random.uniform(0, self.delay_s))
        with self.lock:
            self.entries.pop(execution_id, None)


def record(i: int) -> ExecutionRecord:
    return ExecutionRecord(execution_id=f"exec_{i}", namespace_id="ns_x", status="processing")


def test_nothing_stays_published_after_end() -> None:
    registry = SlowRegistry()
    progress = LiveProgress(registry, "w1", interval_s=0.001)  # type: ignore[arg-type]

    def run(t: int) -> None:
        for i in range(40):
            r = record(t * 1000 + i)
            progress.publish(r)
            for stage in range(3):
                r.stages_completed = stage
                progress.mark(r)
                time.sleep(random.uniform(0, 0.002))
            progress.end(r.execution_id)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    progress.flush()
    progress.close()
    assert registry.entries == {}


def test_a_request_never_waits_for_the_flusher() -> None:
    registry = SlowRegistry(delay_s=0)
    progress = LiveProgress(registry, "w1", interval_s=0.001)  # type: ignore[arg-type]
    progress.mark(record(1))
    time.sleep(0.05)  # the flusher is now inside put(), blocked on the gate
    registry.gate.clear()
    progress.mark(record(2))
    time.sleep(0.05)
    started = time.monotonic()
    progress.mark(record(3))
    progress.end("exec_3")
    assert time.monotonic() - started < 0.5  # not blocked behind the stuck write
    registry.gate.set()
    progress.close()


def test_progress_reaches_the_registry() -> None:
    registry = SlowRegistry(delay_s=0)
    progress = LiveProgress(registry, "w1", interval_s=0.001)  # type: ignore[arg-type]
    r = record(7)
    progress.publish(r)
    r.stages_completed = 2
    progress.mark(r)
    deadline = time.monotonic() + 5
    while registry.entries["exec_7"].stages_completed != 2:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    progress.close()
