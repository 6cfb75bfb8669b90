"""Keeps each collection's HNSW index current while the server serves.

New points land in the shard's appendable segment, which is searched by exact scan (fine for
thousands of points, ~80 ms at a million). When a collection has `min_points` points outside
the HNSW index, a child process (stagewise.storage.index.generation) builds the next
generation of its shard from the source of truth; the server warms it, swaps it in under the
collection's write lock and replays the writes that came in meanwhile. Searches never wait:
until the swap they use the current generation.

The policy (docs/architecture.md, "Index builds"): the tail is what lies outside HNSW now,
minus what the installed generation left out on purpose (segments under the engine's
indexing threshold), so the writes replayed at a swap count. While writes go on, a build
starts only once the tail is also TAIL_FRACTION of the collection, which keeps the total
build work linear; once a round sees no new writes, any tail of `min_points` is built, and a
running build that will miss that many points (written after the child finished reading the
log) is restarted rather than followed by another.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from stagewise.domain.records import CollectionRecord
from stagewise.errors import StagewiseError
from stagewise.services.collections import all_collections
from stagewise.services.context import Stores
from stagewise.storage.protocols import ShardMaintenance

log = logging.getLogger("stagewise.index")

RETRY_AFTER_FAILURE_S = 600.0
# While writes continue, the tail must also be this share of the collection: each build then
# covers at least 20% more points than the last, so a steady trickle rebuilds geometrically
# less often instead of back to back.
TAIL_FRACTION = 0.2


def build_due(tail: int, points: int, *, quiet: bool, min_points: int) -> bool:
    """Whether a tail of `tail` points outside HNSW (of `points`) warrants a build now."""
    if tail < min_points:
        return False
    return quiet or tail >= TAIL_FRACTION * points


class IndexBuildFailed(StagewiseError):
    type = "IndexBuildError"
    code = "index_build_failed"


@dataclass
class _Build:
    collection: CollectionRecord
    directory: Path
    proc: subprocess.Popen[bytes]
    output: IO[bytes]
    log_path: Path
    started: float
    # points outside HNSW when the child had read the log: writes past that it misses
    unindexed_at_load: int | None = None


def _has_loaded(log_path: Path) -> bool:
    """Whether the child has read the whole log (it then only builds HNSW)."""
    try:
        return b'"loaded"' in log_path.read_bytes()
    except OSError:
        return False


class IndexBuilder:
    def __init__(
        self, stores: Stores, maintenance: ShardMaintenance, *, min_points: int, poll_s: float = 5.0
    ) -> None:
        self.stores = stores
        self.maintenance = maintenance
        self.min_points = min_points
        self.poll_s = poll_s
        self._running: dict[str, _Build] = {}
        # unindexed points of the last generation itself, before the replay at its swap: what
        # the engine leaves out on purpose (segments under its indexing threshold) must not
        # trigger build after build; the writes replayed at the swap must
        self._baseline: dict[str, int] = {}
        self._seen: dict[str, int] = {}  # unindexed points at the previous round
        self.restarts = 0
        self._failed_at: dict[str, float] = {}
        self._last: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle
    def start(self) -> None:
        if self.min_points <= 0 or self._thread is not None:
            return
        self._remove_strays()
        self._thread = threading.Thread(target=self._loop, name="stagewise-index-builder")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for build in self._running.values():
                build.proc.kill()
                build.proc.wait()
                build.output.close()
                shutil.rmtree(build.directory, ignore_errors=True)
            self._running.clear()
        self.maintenance.reap_retired(grace_s=0)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.tick()
            except Exception:  # the loop must outlive one bad round
                log.exception("index builder round failed")

    def _remove_strays(self) -> None:
        for col in all_collections(self.stores):
            self.maintenance.remove_stray_generations(col.collection_id)

    # ---- one round
    def tick(self) -> None:
        self.maintenance.reap_retired()
        with self._lock:
            done = [b for b in self._running.values() if b.proc.poll() is not None]
            for build in done:
                del self._running[build.collection.collection_id]
        for build in done:
            with contextlib.suppress(IndexBuildFailed):  # logged; retried later
                self._finish(build)
        for col in all_collections(self.stores):
            cid = col.collection_id
            unindexed = self.maintenance.unindexed_points(cid)
            quiet = self._seen.get(cid) == unindexed  # no write since the previous round
            self._seen[cid] = unindexed
            running = self._running.get(cid)
            if running is not None:
                if running.unindexed_at_load is None and _has_loaded(running.log_path):
                    running.unindexed_at_load = unindexed
                missed = unindexed - (running.unindexed_at_load or unindexed)
                if quiet and missed >= self.min_points:
                    # writes stopped, and this build misses a tail that needs another build
                    # after it: one build from now ends sooner than both
                    self._abandon(running)
                    self.restarts += 1
                else:
                    continue
            if self._due(col, unindexed, quiet):
                self.begin(col)

    def tail(self, collection_id: str) -> int:
        """Points outside HNSW that a new generation would index."""
        unindexed = self.maintenance.unindexed_points(collection_id)
        return max(0, unindexed - self._baseline.get(collection_id, 0))

    def _due(self, col: CollectionRecord, unindexed: int, quiet: bool) -> bool:
        cid = col.collection_id
        if time.monotonic() - self._failed_at.get(cid, -RETRY_AFTER_FAILURE_S) < (
            RETRY_AFTER_FAILURE_S
        ):
            return False
        if self.maintenance.needs_rebuild(cid):  # an index added after HNSW was built
            return True
        tail = max(0, unindexed - self._baseline.get(cid, 0))
        return build_due(
            tail, self.maintenance.points(cid), quiet=quiet, min_points=self.min_points
        )

    def _abandon(self, build: _Build) -> None:
        cid = build.collection.collection_id
        with self._lock:
            self._running.pop(cid, None)
        build.proc.kill()
        build.proc.wait()
        build.output.close()
        build.log_path.unlink(missing_ok=True)
        shutil.rmtree(build.directory, ignore_errors=True)
        log.info("restarting the index build of %s: writes stopped past its snapshot", cid)

    def status(self) -> dict[str, dict[str, Any]]:
        """Builds in progress, by collection id."""
        with self._lock:
            return {
                cid: {"state": "building", "seconds": round(time.monotonic() - b.started, 1)}
                for cid, b in self._running.items()
            }

    def last_build(self, collection_id: str) -> dict[str, Any] | None:
        """The figures of the last generation installed for a collection (this process)."""
        return self._last.get(collection_id)

    # ---- a build
    def begin(self, col: CollectionRecord) -> None:
        cid = col.collection_id
        maintenance = self.maintenance
        directory = maintenance.new_generation_dir(cid)
        log_path = directory.with_name(directory.name + ".log")
        output = log_path.open("wb")
        command = [
            sys.executable,
            "-m",
            "stagewise.storage.index.generation",
            "--database-url",
            self.stores.settings.resolved_database_url(),
            "--namespace-id",
            col.namespace_id,
            "--collection-id",
            cid,
            "--out",
            str(directory),
            "--extra",
            orjson.dumps(maintenance.extra_indexes(cid)).decode(),
        ]
        proc = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        with self._lock:
            self._running[cid] = _Build(col, directory, proc, output, log_path, time.monotonic())
        log.info("building the next index generation of %s in pid %d", cid, proc.pid)

    def _finish(self, build: _Build) -> dict[str, Any]:
        build.output.close()
        text = build.log_path.read_text(errors="replace")
        build.log_path.unlink(missing_ok=True)
        cid = build.collection.collection_id
        col = self.stores.metadata.get_collection(build.collection.namespace_id, cid)
        if build.proc.returncode != 0 or col is None:
            shutil.rmtree(build.directory, ignore_errors=True)
            if col is None:
                return {"collection_deleted": True}
            self._failed_at[cid] = time.monotonic()
            log.error("index build of %s failed (exit %s): %s", cid, build.proc.returncode, text)
            raise IndexBuildFailed(f"index build of {cid} failed: {text[-2000:]}")
        result: dict[str, Any] = orjson.loads(text.strip().splitlines()[-1])
        # loaded and warmed before the lock: writes and searches go on meanwhile
        result["warmup"] = self.maintenance.stage_generation(cid, build.directory)
        follower = self.stores.follower
        with follower.lock(cid):
            self.maintenance.install_generation(cid, build.directory)
            self._baseline[cid] = self.maintenance.unindexed_points(cid)  # before the replay
            follower.forget(cid)  # the new generation's watermark is its own
            result["replayed"] = follower.catch_up(col)
        result["tail"] = self.tail(cid)
        result["seconds"] = round(time.monotonic() - build.started, 3)
        self._last[cid] = result
        log.info("index generation of %s installed: %s", cid, result)
        return result

    def wait(self, collection_id: str) -> dict[str, Any]:
        """Wait for the running build of a collection and install it."""
        with self._lock:
            build = self._running.pop(collection_id)
        build.proc.wait()
        return self._finish(build)
