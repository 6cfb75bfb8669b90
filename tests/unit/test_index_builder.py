"""The index builder's policy, driven with a simulated shard and child (no engine, no
process): the tail that counts is what lies outside HNSW now, writes replayed at a swap
included; a build started mid-ingest is followed by more until the tail is under the
threshold; a trickle backs off; the new generation is warmed before it is installed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from stagewise.services.index_builder import TAIL_FRACTION, IndexBuilder, _Build, build_due
from stagewise.storage.index.generation import BUILD_NICENESS

pytestmark = pytest.mark.unit

MIN = 100  # the build threshold


class Child:
    """A build child that finishes when told to."""

    def __init__(self) -> None:
        self.pid = 0
        self.returncode: int | None = None
        self.killed = False

    def poll(self) -> int | None:
        return self.returncode

    def wait(self) -> int | None:
        return self.returncode

    def kill(self) -> None:
        self.killed = True
        self.returncode = -9


class Shard:
    """A collection's points: `indexed` in HNSW, `written` in all; `leftover` is what a
    generation leaves outside HNSW on purpose (under the engine's indexing threshold)."""

    def __init__(self, leftover: int = 0) -> None:
        self.written = 0
        self.indexed = 0
        self.leftover = leftover
        self.served: int | None = None  # points of a just installed generation, pre-replay
        self.calls: list[str] = []

    def points(self, cid: str) -> int:
        return self.written if self.served is None else self.served

    def unindexed_points(self, cid: str) -> int:
        return self.points(cid) - self.indexed

    def needs_rebuild(self, cid: str) -> bool:
        return False

    def reap_retired(self, grace_s: float = 5.0) -> None:
        pass

    def stage_generation(self, cid: str, directory: Path) -> dict[str, Any]:
        self.calls.append("warm")
        return {"searches": 32}

    def install_generation(self, cid: str, directory: Path) -> None:
        self.calls.append("install")
        self.served = int(directory.name)  # the child's snapshot
        self.indexed = self.served - self.leftover


class Col:
    collection_id = "c"
    namespace_id = "n"


class Follower:
    def __init__(self, shard: Shard) -> None:
        self._lock = threading.RLock()
        self.shard = shard

    def lock(self, cid: str) -> threading.RLock:
        return self._lock

    def forget(self, cid: str) -> None:
        pass

    def catch_up(self, col: Any) -> int:
        """The replay of the writes made during the build, into the appendable segment."""
        replayed = self.shard.written - (self.shard.served or 0)
        self.shard.served = None
        return replayed


class Meta:
    def list_namespaces(self) -> list[Any]:
        return [Col()]

    def list_collections(self, ns: str) -> list[Any]:
        return [Col()]

    def get_collection(self, ns: str, cid: str) -> Any:
        return Col()


class Stores:
    def __init__(self, shard: Shard) -> None:
        self.metadata = Meta()
        self.follower = Follower(shard)


class Builder(IndexBuilder):
    """begin() snapshots the points written so far instead of starting a process."""

    def __init__(self, shard: Shard, tmp: Path) -> None:
        super().__init__(Stores(shard), shard, min_points=MIN)  # type: ignore[arg-type]
        self.shard = shard
        self.tmp = tmp
        self.begun = 0

    def begin(self, col: Any) -> None:
        self.begun += 1
        log = self.tmp / f"{self.begun}.log"
        log.write_text(orjson.dumps({"watermark": 1, "points": self.shard.written}).decode() + "\n")
        self._running["c"] = _Build(col, self.tmp / "0", Child(), log.open("ab"), log, 0.0)

    def child_loaded(self) -> None:
        """The child has read the log: its generation holds what is written so far."""
        build = self._running["c"]
        build.directory = self.tmp / str(self.shard.written)
        with build.log_path.open("ab") as f:
            f.write(b'{"loaded": 1}\n')

    def child(self) -> Child:
        proc = self._running["c"].proc
        assert isinstance(proc, Child)
        return proc

    def finish_child(self) -> None:
        if self._running["c"].directory.name == "0":
            self.child_loaded()
        self.child().returncode = 0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Shard, Builder]]:
    shard = Shard()
    yield shard, Builder(shard, tmp_path)


def test_the_decision() -> None:
    assert not build_due(MIN - 1, 10 * MIN, quiet=True, min_points=MIN)
    assert build_due(MIN, 10 * MIN, quiet=True, min_points=MIN)
    # while writes go on, the tail must also be a share of the collection
    assert not build_due(MIN, 10 * MIN, quiet=False, min_points=MIN)
    assert build_due(int(TAIL_FRACTION * 10 * MIN), 10 * MIN, quiet=False, min_points=MIN)
    assert build_due(MIN, MIN, quiet=False, min_points=MIN)  # nothing indexed yet


def test_a_build_started_mid_ingest_is_followed_until_the_tail_is_under_the_threshold(
    world: tuple[Shard, Builder],
) -> None:
    shard, builder = world
    shard.written = 150
    builder.tick()
    assert builder.begun == 1  # mid-ingest: the first 150 points
    builder.child_loaded()
    shard.written = 400  # the ingest goes on during the build, then stops
    builder.finish_child()
    builder.tick()
    # the 250 written during the build were replayed at the swap: they are the tail now
    assert shard.unindexed_points("c") == 250 and builder.tail("c") == 250
    assert builder.begun == 2
    builder.finish_child()
    builder.tick()
    builder.tick()
    assert shard.unindexed_points("c") == 0 and builder.tail("c") < MIN
    assert builder.begun == 2 and builder.status() == {}
    assert shard.calls == ["warm", "install"] * 2  # warmed, then swapped in


def test_a_trickle_backs_off_until_the_writes_stop(world: tuple[Shard, Builder]) -> None:
    shard, builder = world
    shard.written = shard.indexed = 1000
    for _ in range(5):  # 150 unindexed points of 1,150 while writes continue: < 20%
        shard.written += 30
        builder.tick()
    assert builder.tail("c") == 150 and builder.begun == 0
    builder.tick()  # no write since the last round
    assert builder.begun == 1


def test_a_build_that_misses_the_end_of_an_ingest_is_restarted(
    world: tuple[Shard, Builder],
) -> None:
    shard, builder = world
    shard.written = 200
    builder.tick()
    first = builder.child()
    shard.written = 400
    builder.tick()
    builder.tick()  # quiet, but the child is still reading the log: it gets these too
    assert not first.killed
    builder.child_loaded()
    shard.written = 410
    builder.tick()  # the builder sees the child has read the log (10 points late)
    shard.written = 1210  # written after the child read the log
    builder.tick()
    assert not first.killed  # writes still coming: no restart
    builder.tick()  # quiet: the running build would leave 800 for another build
    assert first.killed and builder.restarts == 1 and builder.begun == 2
    builder.finish_child()
    builder.tick()
    assert shard.unindexed_points("c") == 0 and builder.begun == 2


def test_what_a_generation_leaves_out_on_purpose_does_not_trigger_builds(
    tmp_path: Path,
) -> None:
    shard = Shard(leftover=MIN + 50)
    builder = Builder(shard, tmp_path)
    shard.written = 5 * MIN
    builder.tick()
    builder.finish_child()
    for _ in range(3):
        builder.tick()
    assert shard.unindexed_points("c") == MIN + 50 and builder.begun == 1


def test_the_build_child_runs_at_the_lowest_priority_on_one_core(tmp_path: Path) -> None:
    script = (
        "import os; from stagewise.storage.index.generation import lower_priority; "
        "lower_priority(); print(os.getpriority(os.PRIO_PROCESS, 0), "
        "len(os.sched_getaffinity(0)))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    nice, cores = map(int, out.stdout.split())
    assert nice == BUILD_NICENESS == 19
    assert cores == (1 if len(os.sched_getaffinity(0)) >= 2 else cores)
