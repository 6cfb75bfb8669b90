"""Scale-out (issue 11): `serve --workers 1` against `--workers 2`, follower lag, memory.

    python -m bench.scale_out [--docs 100000] [--seconds 20] [--rounds 2] [--quick] [--out FILE]
                              [--source worktree|head] [--[no-]embedded] [--keep-data]

Everything runs on one fresh PostgreSQL database (tests/support/pg.py, dropped at the end) and
one private Redis key prefix (its keys deleted at the end), as `serve --workers N` requires.
Servers are child processes (`python -m stagewise serve`) on loopback, all of them importing a
copy of src/stagewise taken at the start, from the checkout or (`--source head`) from git HEAD:
others may edit the checkout meanwhile (the JSON says whether they did). The clients are
threads of this process, on the same 2 cores.

1. **Load, once per data dir.** A `serve --workers 1` process with the background index build
   off takes the N synthetic documents (bench.generate) through BYO upserts of 1,000, exactly
   as bench/perf.py loads them (perf.setup_collection, perf.ingest_byo); then the retrievers
   are created: retriever (c) of bench/perf.py (dense + BM25 fused with RRF ->
   attribute_filter on metadata.category, ~9% of documents -> sort_attribute on
   metadata.year) and a probe retriever (dense top-10 on a query vector) for part 3.
2. **1 worker against 2 workers**, phases interleaved A B A B (`--rounds`), on the same
   database and the same data dir. Each phase starts `serve --workers W` (index build threshold
   1,000 points), waits until every worker's own index (`<data_dir>/workers/w<N>/index`) has
   applied the whole log and has its HNSW generation installed (GET /v1/health/deep, asked on
   fresh connections until every worker has answered: the first start of a slot replays the
   log and builds; later starts reopen it), warms up, then measures, each for `--seconds`:
   GET /v1/health at 32 closed-loop clients (the trivial-route baseline: no API key, so not
   rate-limited, sent over plain sockets so that the client's one GIL is not the limit) and
   retriever (c) at 32 closed-loop clients (httpx, `skip_cache`, the query varied per
   execution from 2,000 vectors and texts). Reported: requests/s, p50/p99 wall latency, errors,
   CPU of the server's process tree (parent and workers, per process), of this database's
   PostgreSQL backends and of redis-server, the client's CPU, how the 32 keep-alive
   connections were spread over the workers (each connection asks /v1/health/deep which worker
   it reached), the whole machine's busy CPU (what is not ours is other work on the shared
   machine), and the ratios 2 workers / 1 worker. 1-worker phases also run (c) at 1 client
   (bench.perf.one_client): the CPU one execution costs without contention. Unless
   `--no-embedded` (or `--quick`), each round also measures the same on the embedded default
   (`serve` on SQLite without Redis, its own data dir loaded the same way): the one-process
   topology that scale-out replaces, as a reference.
3. **Follower lag under sustained ingest.** Two separate `serve --workers 1` processes on the
   same database and Redis prefix, each with its own data dir, the background build off (no
   generation build starts mid-measurement): A starts on a fresh data dir (it replays the log
   at start-up), B reopens the data dir of part 2 (its index is caught up and HNSW-built). Two
   scenarios of `--seconds`, B restarted before each so that its lag figures are the
   scenario's own: B idle but for the probe, then B also serving retriever (c) to 4 clients
   (strong reads, the default). Throughout, one client sends A BYO upserts of 100 new
   documents back to back (as fast as one client can), and a probe client measures, for the
   first batch A acknowledges once the probe is free, alternately:
   - strong: one probe execute on B right after the acknowledgement (default consistency):
     the share that found the new document (must be all) and ack -> answer time;
   - eventual: probe executes on B with `{"mode": "eventual", "max_staleness_ms": 3600000}`
     (never catches up by itself) repeated back to back until the document appears: ack ->
     the answer that first held it (an upper bound of the lag, read latency included), and
     ack -> the send of the last read that missed it (a lower bound; 0 when the first read
     found it). This is the lag a client sees: whichever comes first of B's follower (woken by
     NOTIFY) and a strong read by B's other clients (which catches up the collection).
   B's own figure (GET /v1/health/deep `follower`, read after the run from a process that
   started just before it): commit (the writer's clock in the NOTIFY payload) -> applied by
   B's follower thread, sampled only when that thread found the write still to apply.
4. **Memory.** VmRSS (and VmHWM) from /proc of the parent and every worker, when ready (after
   the load, the replay and the build) and after the measurement; and of the loading process.

`--quick` (CI): 10k documents, 5 s phases, 1 round, no embedded reference: about 2 minutes.
Exit status: 0 when every measurement ran without an error, 1 on any error (a non-2xx answer,
a failed execution, a wrong result, a worker that died, an error or traceback in a server
log); timings never change it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import redis
from numpy.typing import NDArray
from tests.support.pg import admin_engine, fresh_database

from bench.common import (
    REPO_ROOT,
    BenchError,
    ServerProcess,
    free_port,
    git_revision,
    machine_info,
    serve_command,
)
from bench.generate import Dataset, Spec, selective_category
from bench.measure import (
    ADMIN_KEY,
    COLLECTION,
    FEATURE,
    NAMESPACE,
    PAGE,
    RESULTS_DIR,
    Client,
    completed,
    cpu_seconds,
    dist,
    load_average,
    log,
    r3,
    ratio,
    rss_bytes,
    self_cpu_seconds,
)
from bench.perf import (
    BUILD_ENV,
    INPUT_SCHEMA,
    Queries,
    _stage,
    ingest_byo,
    one_client,
    retriever_stages,
    setup_collection,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
STORE_ENV = ("STAGEWISE_DATABASE_URL", "STAGEWISE_REDIS_URL", "STAGEWISE_REDIS_PREFIX")
C_KIND = "c_hybrid_filter_sort"
PROBE = "probe"
CLIENTS = 32
READERS = 4  # part 2: retriever (c) clients on B
INGEST_BATCH = 100  # part 2: documents per upsert to A
INGEST_CAP_PER_S = 3000  # part 2: documents prepared per second of the phase (an upper bound)
BUILD_MIN_POINTS = "1000"  # as bench/perf.py's HNSW phase
QUERIES = 2000
EVENTUAL = {"mode": "eventual", "max_staleness_ms": 3_600_000}
VISIBLE_WITHIN_S = 30.0  # an eventual read that has not seen an acknowledged write by then: error
UPSERT_PATH = f"/v1/namespaces/{NAMESPACE}/documents/upsert"
LOG_PROBLEM = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|died|hung|Exception", re.I)


@dataclass(frozen=True)
class Settings:
    docs: int
    seconds: float
    rounds: int
    warmup_seconds: float
    one_client: int  # sequential executions at 1 client, in 1-worker phases
    startup_timeout: float
    ready_timeout: float


def settings_for(args: argparse.Namespace) -> Settings:
    docs = args.docs or (10_000 if args.quick else 100_000)
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    rounds = args.rounds or (1 if args.quick else 2)
    return Settings(
        docs=docs,
        seconds=seconds,
        rounds=rounds,
        warmup_seconds=max(1.0, min(4.0, seconds / 5)),
        one_client=50 if args.quick else 200,
        startup_timeout=600.0,
        ready_timeout=1800.0,
    )


# ---------------------------------------------------------------------------------------------
# processes: the server's tree, PostgreSQL's backends, CPU and memory


def _ppid_map() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def descendants(root: int) -> list[int]:
    """`root` and every process under it (uvicorn's workers, index builders, helpers)."""
    parents = _ppid_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in parents or pid == root:
            out.append(pid)
        todo.extend(p for p, pp in parents.items() if pp == pid)
    return out


def pg_backends(database: str) -> list[int]:
    """The PostgreSQL backend processes connected to `database` (`postgres: ... <db> ...`)."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("postgres: ") and f" {database} " in cmd:
            out.append(int(entry.name))
    return out


def cpu_snapshot(pids: Sequence[int]) -> dict[int, float]:
    snap = {pid: cpu_seconds(pid) for pid in pids}
    return {pid: s for pid, s in snap.items() if s == s}  # drop the ones gone (NaN)


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    """CPU seconds per process between two snapshots; a process born in between counts whole."""
    return {pid: s - before.get(pid, 0.0) for pid, s in after.items()}


def machine_cpu() -> tuple[float, float, float]:
    """(busy, iowait, total) CPU seconds of the whole machine, every core (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq + steal
    return busy / tick, iowait / tick, (busy + idle + iowait) / tick


def redis_server_pids() -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry.name}/comm").read_text().strip() == "redis-server":
                    out.append(int(entry.name))
    return out


@dataclass
class Usage:
    """CPU over an interval: the server's process tree, this database's PostgreSQL backends,
    the redis-server process (shared with anything else using it), this client process, and
    the whole machine (whatever is left is other work on the machine)."""

    topo_pids: Callable[[], list[int]]
    database: str | None
    t0: float = 0.0
    srv0: dict[int, float] = field(default_factory=dict)
    pg0: dict[int, float] = field(default_factory=dict)
    redis0: dict[int, float] = field(default_factory=dict)
    own0: float = 0.0
    machine0: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.srv0 = cpu_snapshot(self.topo_pids())
        self.pg0 = cpu_snapshot(pg_backends(self.database)) if self.database else {}
        self.redis0 = cpu_snapshot(redis_server_pids())
        self.own0 = self_cpu_seconds()
        self.machine0 = machine_cpu()

    def stop(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.t0
        srv = cpu_delta(self.srv0, cpu_snapshot(self.topo_pids()))
        pg = cpu_delta(self.pg0, cpu_snapshot(pg_backends(self.database))) if self.database else {}
        red = cpu_delta(self.redis0, cpu_snapshot(redis_server_pids()))
        own = self_cpu_seconds() - self.own0
        m1 = machine_cpu()
        busy, iowait = m1[0] - self.machine0[0], m1[1] - self.machine0[1]
        ours = sum(srv.values()) + sum(pg.values()) + sum(red.values()) + own
        return {
            "elapsed": elapsed,
            "by_pid": srv,
            "server_cores": sum(srv.values()) / elapsed,
            "postgres_cores": r3(sum(pg.values()) / elapsed) if self.database else None,
            "redis_server_cores": r3(sum(red.values()) / elapsed),
            "client_cores": r3(own / elapsed),
            "machine_busy_cores": r3(busy / elapsed),
            "machine_iowait_cores": r3(iowait / elapsed),
            "other_work_cores": r3(max(0.0, busy - ours) / elapsed),
        }


def source_digest(root: Path) -> str:
    """SHA-256 over the server's source files (their paths and contents)."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def freeze_source(root: Path, source: str = "worktree") -> dict[str, Any]:
    """A copy of src/stagewise for every server of the run (PYTHONPATH): others edit the
    checkout while the run goes on, and each server process would otherwise import whatever
    the tree held when it started. `worktree`: the checkout as it is (uncommitted changes
    included); `head`: the committed tree only (git archive HEAD)."""
    src = REPO_ROOT / "src" / "stagewise"
    dest = root / "src" / "stagewise"
    if source == "head":
        dest.parent.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", "HEAD", "src/stagewise"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    else:
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    return {
        "from": source,
        "copied_to": str(dest.parent),
        "sha256": source_digest(dest),
        # what the checkout held beyond HEAD (in the copy only when `from` is worktree)
        "uncommitted_in_checkout": [line.strip() for line in status],
    }


def mib(n: int | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


def memory_of(pid: int) -> dict[str, float | None]:
    rss = rss_bytes(pid)
    return {
        "rss_mib": mib(rss.get("VmRSS")),
        "hwm_mib": mib(rss.get("VmHWM")),
        "anon_mib": mib(rss.get("RssAnon")),
        "file_mib": mib(rss.get("RssFile")),
    }


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# ---------------------------------------------------------------------------------------------
# servers


@dataclass
class Topology:
    """One `serve` command (its parent process) and the workers that answered for it."""

    label: str
    workers: int
    server: ServerProcess
    started: float
    worker_pids: dict[str, int] = field(default_factory=dict)  # worker_id -> pid

    @property
    def pid(self) -> int:
        return self.server.proc.pid

    def log_problems(self) -> list[str]:
        return [
            line for line in self.server.log_tail(10**7).splitlines() if LOG_PROBLEM.search(line)
        ]

    def memory(self) -> dict[str, Any]:
        tree = descendants(self.pid)
        workers = set(self.worker_pids.values())
        return {
            "parent": memory_of(self.pid) if self.pid not in workers else None,
            "workers": {str(pid): memory_of(pid) for pid in sorted(workers)},
            "others": {str(pid): memory_of(pid) for pid in tree if pid not in workers | {self.pid}},
        }


def serve(
    label: str, data_dir: Path, workers: int, env: dict[str, str], logs: Path, timeout: float
) -> Topology:
    """`python -m stagewise serve --workers W` on a free port; returns once /v1/health answers
    (one worker at least serves). A port taken between our probe and the bind is retried."""
    for attempt in range(3):
        port = free_port()
        log_path = logs / f"{label}.log"
        log_file = log_path.open("ab")
        start = log_file.tell()
        child_env = {**os.environ, **env, "STAGEWISE_ADMIN_KEY": ADMIN_KEY}
        for name in STORE_ENV:  # an embedded deployment must not inherit the shared stores
            if name not in env:
                child_env.pop(name, None)
        child_env.setdefault("HF_HUB_OFFLINE", "1")
        child_env.setdefault("TRANSFORMERS_OFFLINE", "1")
        cmd = serve_command(port, data_dir, "--workers", str(workers))
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=child_env)
        server = ServerProcess(
            f"http://127.0.0.1:{port}", ADMIN_KEY, data_dir, log_path, proc, log_file
        )
        t0 = time.perf_counter()
        while True:
            if proc.poll() is not None:
                server.stop()
                text = log_path.read_text(errors="replace")[start:]
                if "address already in use" in text and attempt < 2:
                    break
                raise BenchError(f"{label}: the server exited ({proc.returncode}):\n{text[-4000:]}")
            try:
                if httpx.get(f"{server.base_url}/v1/health", timeout=2).status_code == 200:
                    return Topology(label, workers, server, t0)
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t0 > timeout:
                stop(Topology(label, workers, server, t0))
                raise BenchError(f"{label}: no answer within {timeout:.0f} s:\n{server.log_tail()}")
            time.sleep(0.1)
    raise BenchError(f"{label}: could not bind a port")


def stop(topo: Topology) -> None:
    """SIGTERM to the parent (uvicorn stops its workers), then SIGKILL whatever of our own tree
    is left, by pid."""
    tree = descendants(topo.pid)
    topo.server.stop(timeout=60)
    deadline = time.monotonic() + 30
    for pid in tree:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def deep_health(base_url: str) -> dict[str, Any]:
    """GET /v1/health/deep on a new connection (so that, with several workers, any may
    answer). A non-200 answer is an error."""
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=120
    ) as http:
        r = http.get("/v1/health/deep")
    if r.status_code != 200:
        raise BenchError(f"GET /v1/health/deep -> HTTP {r.status_code}: {r.text[:3000]}")
    return dict(r.json())


def worker_pid(worker_id: str) -> int:
    """`w<pid>-<hex>` (services/context.py)."""
    return int(worker_id[1:].split("-", 1)[0])


def index_ready(entry: dict[str, Any] | None, build_min: int) -> bool:
    if not entry or "error" in entry:
        return False
    caught_up = int(entry["applied_seq"]) >= int(entry["log_seq"])
    built = build_min <= 0 or int(entry.get("unindexed_points") or 0) < build_min
    return caught_up and built and entry.get("build") is None


def wait_ready(
    topo: Topology, collection_id: str, build_min: int, timeout: float
) -> dict[str, Any]:
    """Until every worker has answered GET /v1/health/deep with its index of the collection
    caught up with the log and (when a build threshold is set) HNSW-built. Returns, per worker,
    when it first answered and when it was ready (seconds since the start command), its first
    and its ready index state, and the build it installed (this process's, when it built)."""
    seen: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    while True:
        if topo.server.proc.poll() is not None:
            raise BenchError(f"{topo.label}: the server exited:\n{topo.server.log_tail()}")
        for _ in range(4 * topo.workers):
            body = deep_health(topo.server.base_url)
            wid = body["follower"]["worker_id"]
            entry = body["index"].get(collection_id)
            now = round(time.perf_counter() - topo.started, 1)
            w = seen.setdefault(
                wid, {"pid": worker_pid(wid), "first_answer_s": now, "first": entry}
            )
            if "ready_s" not in w and index_ready(entry, build_min):
                w["ready_s"] = now
                w["ready"] = entry
        tree = set(descendants(topo.pid))
        live = {wid: w for wid, w in seen.items() if w["pid"] in tree and alive(w["pid"])}
        ready = [w for w in live.values() if "ready_s" in w]
        if len(ready) >= topo.workers:
            topo.worker_pids = {wid: w["pid"] for wid, w in live.items() if "ready_s" in w}
            return {
                "seconds": round(time.perf_counter() - t0, 1),
                "workers": {
                    wid: {
                        "pid": w["pid"],
                        "first_answer_s": w["first_answer_s"],
                        "ready_s": w["ready_s"],
                        "points_at_first_answer": (w["first"] or {}).get("points"),
                        "unindexed_at_first_answer": (w["first"] or {}).get("unindexed_points"),
                        "unindexed_when_ready": w["ready"].get("unindexed_points"),
                        "points": w["ready"].get("points"),
                        "build_installed": w["ready"].get("last_build"),
                    }
                    for wid, w in live.items()
                    if "ready_s" in w
                },
            }
        if time.perf_counter() - t0 > timeout:
            raise BenchError(f"{topo.label}: workers not ready within {timeout:.0f} s: {seen}")
        time.sleep(1.0)


def check_workers(topo: Topology) -> None:
    """Every worker that answered when ready still runs, and the log shows no error."""
    gone = [pid for pid in topo.worker_pids.values() if not alive(pid)]
    if gone:
        raise BenchError(f"{topo.label}: worker(s) {gone} died:\n{topo.server.log_tail()}")
    problems = topo.log_problems()
    if problems:
        raise BenchError(
            f"{topo.label}: the server log reports problems:\n"
            + "\n".join(problems[:20])
            + "\n--- log tail ---\n"
            + topo.server.log_tail()
        )


# ---------------------------------------------------------------------------------------------
# closed-loop load


class RawConn:
    """HTTP/1.1 on a plain keep-alive socket. It costs this process tens of microseconds of
    CPU a request where httpx costs ~0.6 ms, so that a trivial route at 32 clients measures
    the server rather than the client's one GIL."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def request(self, method: str, path: str, headers: str = "") -> tuple[int, bytes]:
        self.sock.sendall(f"{method} {path} HTTP/1.1\r\nhost: bench\r\n{headers}\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            self._more(method, path)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if length is None:
            raise BenchError(f"{method} {path}: an answer without content-length: {head!r}")
        n = int(length.group(1))
        while len(self.buf) < n:
            self._more(method, path)
        body, self.buf = self.buf[:n], self.buf[n:]
        return int(head[9:12]), body

    def _more(self, method: str, path: str) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise BenchError(f"{method} {path}: the server closed the connection")
        self.buf += chunk


def reached_worker(conn: Client | RawConn) -> str:
    """Which worker this connection reached (GET /v1/health/deep, with the admin key)."""
    if isinstance(conn, RawConn):
        status, body = conn.request(
            "GET", "/v1/health/deep", f"authorization: Bearer {ADMIN_KEY}\r\n"
        )
        if status != 200:
            raise BenchError(f"GET /v1/health/deep -> HTTP {status}: {body[:2000]!r}")
        return str(orjson.loads(body)["follower"]["worker_id"])
    out, _ = conn.send("GET", "/v1/health/deep", None)
    return str(out["follower"]["worker_id"])


# Sends one request on a connection (a Client, or a RawConn); returns the server's ms, if any.
Request = Callable[[Any, int], float | None]


def closed_loop(
    topo: Topology,
    clients: int,
    seconds: float,
    request: Request,
    *,
    raw: bool = False,
    database: str | None = None,
) -> dict[str, Any]:
    """`clients` threads, each on its own keep-alive connection (a Client, or a RawConn when
    `raw`), back to back for `seconds`. Each connection first asks /v1/health/deep which
    worker it reached. Any error stops the run and is raised (with the request and the
    answer)."""
    base_url = topo.server.base_url
    barrier = threading.Barrier(clients + 1)
    lat: list[list[float]] = [[] for _ in range(clients)]
    srv: list[list[float]] = [[] for _ in range(clients)]
    reached: list[str] = ["?"] * clients
    errors: list[BaseException] = []
    stop_at = [time.perf_counter() + 3600]

    def worker(w: int) -> None:
        conn: Client | RawConn | None = None
        try:
            conn = RawConn(base_url) if raw else Client(base_url)
            reached[w] = reached_worker(conn)
            barrier.wait()
            i = w * 7919
            while time.perf_counter() < stop_at[0] and not errors:
                t0 = time.perf_counter()
                server_ms = request(conn, i)
                lat[w].append((time.perf_counter() - t0) * 1000)
                if server_ms is not None:
                    srv[w].append(server_ms)
                i += 1
        except BaseException as exc:
            errors.append(exc)
            if not barrier.broken:
                barrier.abort()
        finally:
            if conn is not None:
                conn.close()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(clients)]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    usage = Usage(lambda: descendants(topo.pid), database)
    load0 = load_average()
    usage.start()
    stop_at[0] = usage.t0 + seconds
    for t in threads:
        t.join()
    used = usage.stop()
    elapsed, srv_cpu = used["elapsed"], used["by_pid"]
    if errors:
        raise BenchError(f"{clients}-client run on {topo.label} failed: {errors[0]}")
    n = sum(len(x) for x in lat)
    by_worker: Counter[str] = Counter()
    conns: Counter[str] = Counter()
    for w in range(clients):
        by_worker[reached[w]] += len(lat[w])
        conns[reached[w]] += 1
    pid_of = {wid: worker_pid(wid) for wid in conns if wid != "?"}
    total_cpu = sum(srv_cpu.values())
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": n,
        "per_s": round(n / elapsed, 1),
        "wall_ms": dist([x for xs in lat for x in xs]),
        "server_total_ms": dist([x for xs in srv for x in xs]) if any(srv) else None,
        "server_cpu_cores": r3(total_cpu / elapsed),
        "server_cpu_ms_per_request": r3(total_cpu * 1000 / n) if n else None,
        "cpu_cores_by_process": {
            ("parent" if pid == topo.pid and topo.workers > 1 else str(pid)): r3(s / elapsed)
            for pid, s in sorted(srv_cpu.items())
            if s > 0.005 * elapsed
        },
        "postgres_cpu_cores": used["postgres_cores"],
        "redis_server_cpu_cores": used["redis_server_cores"],
        "client_cpu_cores": used["client_cores"],
        "machine_busy_cores": used["machine_busy_cores"],
        "machine_iowait_cores": used["machine_iowait_cores"],
        "other_work_cores": used["other_work_cores"],
        "connections_by_worker": {str(pid_of.get(w, w)): c for w, c in sorted(conns.items())},
        "requests_by_worker": {str(pid_of.get(w, w)): c for w, c in sorted(by_worker.items())},
        "load_average": [load0, load_average()],
    }


def execute_request(rid: str, qs: Queries, category: str) -> Request:
    path = f"/v1/retrievers/{rid}/execute"

    def send(client: Client, i: int) -> float:
        out, _ = client.send("POST", path, qs.bodies[i % len(qs.bodies)])
        completed(out)
        for doc in out["documents"]:
            got = (doc.get("metadata") or {}).get("category", category)
            if got != category:
                raise BenchError(
                    f"POST {path}: execution {out['execution_id']} returned {doc['document_id']} "
                    f"with metadata.category {got!r}, outside the filter {category!r}"
                )
        return float(out["stage_statistics"]["total_time_ms"])

    return send


def health_request(conn: RawConn, i: int) -> None:
    """GET /v1/health with no API key (a load balancer's probe; not rate-limited)."""
    status, body = conn.request("GET", "/v1/health")
    if status != 200 or b'"ok"' not in body:
        raise BenchError(f"GET /v1/health -> HTTP {status}: {body[:2000]!r}")


# ---------------------------------------------------------------------------------------------
# part 1: the load and the phases


def create_retrievers(base_url: str, category: str) -> dict[str, str]:
    client = Client(base_url)
    probe = {
        "feature_uri": FEATURE,
        "query": {"input_mode": "vector", "value": "{{INPUT.query_vector}}"},
        "top_k": 10,
    }
    specs = {
        C_KIND: (INPUT_SCHEMA, retriever_stages(C_KIND, category)),
        PROBE: (
            {"query_vector": {"type": "array", "required": True}},
            [_stage("search", "feature_search", {"searches": [probe], "final_top_k": 10})],
        ),
    }
    out = {}
    try:
        for kind, (schema, stages) in specs.items():
            r, _ = client.call(
                "POST",
                "/v1/retrievers",
                {
                    "retriever_name": f"scale-{kind}",
                    "collection_identifiers": [COLLECTION],
                    "input_schema": schema,
                    "stages": stages,
                },
            )
            out[kind] = str(r["retriever_id"])
    finally:
        client.close()
    return out


@dataclass
class Deployment:
    """A data dir and the stores it is served from: `shared` (PostgreSQL and Redis, what
    `--workers` needs) or `embedded` (the default: SQLite, no Redis; the reference)."""

    name: str
    data_dir: Path
    env: dict[str, str]
    database: str | None  # the PostgreSQL database, whose backends' CPU is measured
    collection_id: str = ""
    rids: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    settings: Settings
    root: Path
    ds: Dataset
    category: str
    qs: Queries
    shared: Deployment
    embedded: Deployment | None
    vectors: NDArray[np.float32] | None = None


def load(run: Run, dep: Deployment) -> dict[str, Any]:
    """The N documents through a `serve --workers 1` with the build off (bench/perf.py's
    ingest); then the retrievers ((c) declares the metadata.category payload index)."""
    s = run.settings
    t0 = time.perf_counter()
    if run.vectors is None:
        run.vectors = run.ds.vectors()  # in memory: no cache file
    gen_s = time.perf_counter() - t0
    topo = serve(
        f"load-{dep.name}",
        dep.data_dir,
        1,
        {**dep.env, BUILD_ENV: "0"},
        run.root,
        s.startup_timeout,
    )
    try:
        rss_empty = memory_of(topo.pid)
        dep.collection_id = setup_collection(topo.server.base_url)
        log(f"load ({dep.name}): BYO ingest of {s.docs:,} documents (1,000 a call)")
        ingest = ingest_byo(topo.server, run.ds, run.vectors)
        log(f"  {ingest['docs_per_s']:,} docs/s")
        dep.rids = create_retrievers(topo.server.base_url, run.category)
        topo.worker_pids = {"load": topo.pid}
        check_workers(topo)
        return {
            "generate_seconds": round(gen_s, 2),
            "ingest_byo": ingest,
            "memory_empty": rss_empty,
            "memory_after_load": memory_of(topo.pid),
        }
    except BenchError as exc:
        raise with_log(exc, topo) from exc
    finally:
        stop(topo)


def phase(run: Run, dep: Deployment, workers: int, round_: int) -> dict[str, Any]:
    s = run.settings
    label = f"r{round_}-{dep.name}-w{workers}"
    log(f"{label}: serve --workers {workers} ({dep.name})")
    topo = serve(
        label,
        dep.data_dir,
        workers,
        {**dep.env, BUILD_ENV: BUILD_MIN_POINTS},
        run.root,
        s.startup_timeout,
    )
    out: dict[str, Any] = {"round": round_, "topology": dep.name, "workers": workers}
    try:
        out["ready"] = wait_ready(topo, dep.collection_id, int(BUILD_MIN_POINTS), s.ready_timeout)
        for wid, w in out["ready"]["workers"].items():
            b = w["build_installed"]
            log(
                f"  {wid} ready at {w['ready_s']} s (first answer {w['first_answer_s']} s"
                + (f"; built a generation in {b.get('seconds')} s" if b else "")
                + ")"
            )
        out["memory_ready"] = topo.memory()
        execute = execute_request(dep.rids[C_KIND], run.qs, run.category)
        closed_loop(topo, CLIENTS, s.warmup_seconds, execute)  # untimed warm-up
        if workers == 1:  # the cost of one execution without contention (bench/perf.py's)
            one, _ = one_client(
                topo.server.base_url, dep.rids[C_KIND], run.qs, s.one_client, topo.pid
            )
            out["c_one_client"] = one
            log(
                f"  (c) x1: p50 {one['wall_ms']['p50']} ms (server {one['server_total_ms']['p50']}"
                f" ms; {one['server_cpu_ms_per_execution']} CPU-ms per execution)"
            )
        out["health"] = closed_loop(
            topo, CLIENTS, s.seconds, health_request, raw=True, database=dep.database
        )
        h = out["health"]
        log(
            f"  GET /v1/health x{CLIENTS}: {h['per_s']}/s p50 {h['wall_ms']['p50']} ms "
            f"(server {h['server_cpu_cores']} cores, client {h['client_cpu_cores']}; machine "
            f"busy {h['machine_busy_cores']} of which other work {h['other_work_cores']})"
        )
        out["c"] = closed_loop(topo, CLIENTS, s.seconds, execute, database=dep.database)
        c = out["c"]
        log(
            f"  (c) x{CLIENTS}: {c['per_s']}/s p50 {c['wall_ms']['p50']} ms p99 "
            f"{c['wall_ms']['p99']} ms (server {c['server_cpu_cores']} cores "
            f"{c['cpu_cores_by_process']}, postgres {c['postgres_cpu_cores']}, redis "
            f"{c['redis_server_cpu_cores']}, client {c['client_cpu_cores']}; machine busy "
            f"{c['machine_busy_cores']} of which other work {c['other_work_cores']}; "
            f"connections {c['connections_by_worker']})"
        )
        out["memory_after"] = topo.memory()
        check_workers(topo)
    except BenchError as exc:
        raise with_log(exc, topo) from exc
    finally:
        stop(topo)
    return out


def with_log(exc: BenchError, *topos: Topology) -> BenchError:
    """The error, with the tail of each server's log (what the server said meanwhile)."""
    tails = "".join(f"\n--- {t.label} log tail ---\n{t.server.log_tail(3000)}" for t in topos)
    return BenchError(f"{exc}{tails}")


# ---------------------------------------------------------------------------------------------
# part 2: follower lag


def new_documents(ds: Dataset, count: int) -> tuple[list[dict[str, Any]], NDArray[np.float32]]:
    """Documents N..N+count-1 of the same generator (new ids), with their vectors."""
    n = ds.spec.n
    more = Dataset(Spec(n + count, ds.spec.seed))
    docs = list(more.docs(n, n + count))
    vecs = np.empty((count, ds.spec.dim), dtype=np.float32)
    for start, block in more.vector_blocks():
        lo, hi = max(start, n), min(start + len(block), n + count)
        if lo < hi:
            vecs[lo - n : hi - n] = block[lo - start : hi - start]
    return docs, vecs


@dataclass
class Acked:
    batch: int
    at: float  # perf_counter when A's answer arrived
    document_id: str
    vector: NDArray[np.float32]


@dataclass
class Stream:
    """What the ingest thread tells the probe: the last batch A acknowledged."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    last: Acked | None = None
    done: bool = False
    errors: list[BaseException] = field(default_factory=list)


def ingest_loop(
    topo: Topology,
    docs: list[dict[str, Any]],
    vecs: NDArray[np.float32],
    deadline: float,
    stream: Stream,
) -> dict[str, Any]:
    client = Client(topo.server.base_url)
    call_ms: list[float] = []
    sent = 0
    batch = 0
    try:
        while time.perf_counter() < deadline and sent + INGEST_BATCH <= len(docs):
            rows = [
                {
                    "document_id": d["document_id"],
                    "vectors": {FEATURE: vecs[sent + j]},
                    "payload": {"text": d["text"]},
                    "metadata": d["metadata"],
                }
                for j, d in enumerate(docs[sent : sent + INGEST_BATCH])
            ]
            body = orjson.dumps(
                {"collection_id": COLLECTION, "documents": rows}, option=orjson.OPT_SERIALIZE_NUMPY
            )
            out, ms = client.send("POST", UPSERT_PATH, body)
            at = time.perf_counter()
            if out.get("inserted") != INGEST_BATCH:
                raise BenchError(
                    f"POST {UPSERT_PATH}: inserted {out.get('inserted')} of 100: {out}"
                )
            call_ms.append(ms)
            with stream.cond:
                stream.last = Acked(batch, at, rows[0]["document_id"], vecs[sent])
                stream.cond.notify_all()
            sent += INGEST_BATCH
            batch += 1
    except BaseException as exc:
        stream.errors.append(exc)
    finally:
        client.close()
        with stream.cond:
            stream.done = True
            stream.cond.notify_all()
    return {
        "batches": batch,
        "documents": sent,
        "call_ms": dist(call_ms),
        "ran_out": sent + INGEST_BATCH > len(docs),
    }


def probe_loop(topo: Topology, rid: str, stream: Stream) -> dict[str, Any]:
    """Alternately a strong probe and eventual probes until found, each for the first batch A
    acknowledges after the probe is free again (so that no probe starts late: the time from
    the acknowledgement to the first read is only the hand-over between two threads)."""
    client = Client(topo.server.base_url)
    path = f"/v1/retrievers/{rid}/execute"
    strong_ms: list[float] = []
    strong_read_ms: list[float] = []
    strong_found = 0
    strong_start_ms: list[float] = []  # ack -> the send of the read
    eventual_ms: list[float] = []
    eventual_read_ms: list[float] = []
    eventual_low_ms: list[float] = []  # ack -> the send of the last read that missed it
    eventual_start_ms: list[float] = []  # ack -> the send of the first read
    polls: list[int] = []
    i = 0

    def ids(out: dict[str, Any]) -> set[str]:
        completed(out)
        return {d["document_id"] for d in out["documents"]}

    try:
        while True:
            free = time.perf_counter()
            with stream.cond:
                while not stream.done and (stream.last is None or stream.last.at <= free):
                    stream.cond.wait(1.0)
                if stream.done or stream.errors:
                    break
                acked = stream.last
            assert acked is not None
            inputs = {"query_vector": acked.vector}
            if i % 2 == 0:
                body = orjson.dumps(
                    {"inputs": inputs, "skip_cache": True, "limit": PAGE},
                    option=orjson.OPT_SERIALIZE_NUMPY,
                )
                strong_start_ms.append((time.perf_counter() - acked.at) * 1000)
                out, ms = client.send("POST", path, body)
                strong_ms.append((time.perf_counter() - acked.at) * 1000)
                strong_read_ms.append(ms)
                if acked.document_id not in ids(out):
                    raise BenchError(
                        f"a strong read on B missed {acked.document_id}, acknowledged by A "
                        f"{strong_ms[-1]:.1f} ms before the answer: POST {path} "
                        f"(query = its own vector) -> {orjson.dumps(out)[:3000]!r}"
                    )
                strong_found += 1
            else:
                body = orjson.dumps(
                    {"inputs": inputs, "skip_cache": True, "limit": PAGE, "consistency": EVENTUAL},
                    option=orjson.OPT_SERIALIZE_NUMPY,
                )
                n = 0
                first_sent = time.perf_counter()
                missed_sent = acked.at  # no read missed it yet: the lower bound is the ack
                while True:
                    sent = time.perf_counter()
                    out, ms = client.send("POST", path, body)
                    n += 1
                    eventual_read_ms.append(ms)
                    if out.get("consistency_mode") != "eventual":
                        raise BenchError(
                            f"POST {path} (eventual): consistency_mode "
                            f"{out.get('consistency_mode')!r}"
                        )
                    if acked.document_id in ids(out):
                        break
                    missed_sent = sent
                    if time.perf_counter() - acked.at > VISIBLE_WITHIN_S:
                        raise BenchError(
                            f"an eventual read on B had not seen {acked.document_id} "
                            f"{VISIBLE_WITHIN_S:.0f} s after A acknowledged it ({n} reads)"
                        )
                eventual_ms.append((time.perf_counter() - acked.at) * 1000)
                eventual_low_ms.append((missed_sent - acked.at) * 1000)
                eventual_start_ms.append((first_sent - acked.at) * 1000)
                polls.append(n)
            i += 1
    except BaseException as exc:
        stream.errors.append(exc)
    finally:
        client.close()
    return {
        "strong": {
            "probes": len(strong_ms),
            "found_at_once": strong_found,
            "ack_to_answer_ms": dist(strong_ms),
            "ack_to_read_sent_ms": dist(strong_start_ms),
            "read_ms": dist(strong_read_ms),
        },
        "eventual": {
            "probes": len(eventual_ms),
            "ack_to_first_answer_holding_it_ms": dist(eventual_ms),
            "ack_to_last_read_that_missed_it_ms": dist(eventual_low_ms),
            "ack_to_first_read_sent_ms": dist(eventual_start_ms),
            "found_by_the_first_read": sum(1 for n in polls if n == 1),
            "reads_until_found": dist(polls),
            "reads_until_found_max": max(polls) if polls else None,
            "read_ms": dist(eventual_read_ms),
        },
    }


def reader_loop(
    topo: Topology, rid: str, qs: Queries, category: str, w: int, deadline: float, stream: Stream
) -> list[float]:
    client = Client(topo.server.base_url)
    send = execute_request(rid, qs, category)
    lat: list[float] = []
    i = 1000 + w * 7919
    try:
        while time.perf_counter() < deadline and not stream.errors:
            t0 = time.perf_counter()
            send(client, i)
            lat.append((time.perf_counter() - t0) * 1000)
            i += 1
    except BaseException as exc:
        stream.errors.append(exc)
    finally:
        client.close()
    return lat


def metrics_lines(base_url: str) -> list[str]:
    r = httpx.get(f"{base_url}/metrics", timeout=30)
    if r.status_code != 200:
        raise BenchError(f"GET /metrics -> HTTP {r.status_code}: {r.text[:2000]}")
    return [x for x in r.text.splitlines() if x.startswith("stagewise_follower")]


def follower_lag(run: Run) -> dict[str, Any]:
    """A (the writer) and B (the reader) on one database; two scenarios of `--seconds` each,
    B restarted before each (so its follower's lag samples are the scenario's own): B idle
    but for the probe, then B serving retriever (c) to READERS clients."""
    s = run.settings
    dep = run.shared
    assert dep.database is not None
    scenarios = (("B idle but for the probe", 0), (f"B serving (c) to {READERS} clients", READERS))
    per = int(s.seconds * INGEST_CAP_PER_S) // INGEST_BATCH * INGEST_BATCH
    log(f"lag: preparing up to {per * len(scenarios):,} new documents")
    docs, vecs = new_documents(run.ds, per * len(scenarios))
    env = {**dep.env, BUILD_ENV: "0"}
    out: dict[str, Any] = {"ingest_batch": INGEST_BATCH, "documents_prepared": len(docs)}
    log("lag: A = serve on a fresh data dir, B = serve on the data dir of part 1")
    t0 = time.perf_counter()
    a = serve("lag-A", run.root / "data-A", 1, env, run.root, s.startup_timeout)
    b: Topology | None = None
    try:
        out["A_start_seconds"] = round(time.perf_counter() - t0, 1)  # it replays N writes
        out["A_ready"] = wait_ready(a, dep.collection_id, 0, s.ready_timeout)
        log(f"  A served after {out['A_start_seconds']} s (it replayed the log into its index)")
        out["scenarios"] = []
        ingested = 0
        for i, (name, readers) in enumerate(scenarios):
            b = serve(f"lag-B{i + 1}", dep.data_dir, 1, env, run.root, s.startup_timeout)
            ready = wait_ready(b, dep.collection_id, 0, s.ready_timeout)
            lo = ingested
            one = lag_scenario(run, a, b, readers, docs[lo : lo + per], vecs[lo : lo + per])
            ingested += one["ingest"]["documents"]
            one["name"], one["B_ready"] = name, ready
            one["converged"] = converged(run, a, b, ingested)
            one["memory_after"] = {"A": a.memory(), "B": b.memory()}
            check_workers(b)
            out["scenarios"].append(one)
            log_lag(one)
            stop(b)
            b = None
        check_workers(a)
    except BenchError as exc:
        raise with_log(exc, *([a] if b is None else [a, b])) from exc
    finally:
        if b is not None:
            stop(b)
        stop(a)
    return out


def lag_scenario(
    run: Run,
    a: Topology,
    b: Topology,
    readers: int,
    docs: list[dict[str, Any]],
    vecs: NDArray[np.float32],
) -> dict[str, Any]:
    s = run.settings
    dep = run.shared
    before = deep_health(b.server.base_url)["follower"]
    stream = Stream()
    results: dict[str, Any] = {}
    a_pid, b_pid = a.pid, b.pid
    usage = Usage(lambda: descendants(a_pid) + descendants(b_pid), dep.database)
    load0 = load_average()
    usage.start()
    deadline = usage.t0 + s.seconds

    def keep(name: str, fn: Callable[[], Any]) -> threading.Thread:
        def target() -> None:
            results[name] = fn()

        return threading.Thread(target=target, daemon=True)

    threads = [
        keep("ingest", lambda: ingest_loop(a, docs, vecs, deadline, stream)),
        keep("probe", lambda: probe_loop(b, dep.rids[PROBE], stream)),
        *[
            keep(
                f"reader{w}",
                lambda w=w: reader_loop(  # type: ignore[misc]
                    b, dep.rids[C_KIND], run.qs, run.category, w, deadline, stream
                ),
            )
            for w in range(readers)
        ],
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    used = usage.stop()
    elapsed, cpu = used["elapsed"], used["by_pid"]
    if stream.errors:
        raise BenchError(f"lag scenario failed: {stream.errors[0]}")
    ingest = results["ingest"]
    reads = [x for w in range(readers) for x in results[f"reader{w}"]]
    after = deep_health(b.server.base_url)["follower"]
    a_tree, b_tree = set(descendants(a.pid)), set(descendants(b.pid))
    return {
        "readers": readers,
        "seconds": round(elapsed, 2),
        "ingest": {**ingest, "docs_per_s": round(ingest["documents"] / elapsed, 1)},
        "reads": {
            "clients": readers,
            "executions": len(reads),
            "per_s": round(len(reads) / elapsed, 1),
            "wall_ms": dist(reads),
        },
        "visibility": results["probe"],
        "B_follower_before": before,
        "B_follower_after": after,
        "B_writes_applied": after["writes_applied"] - before["writes_applied"],
        "B_metrics": metrics_lines(b.server.base_url),
        "A_follower_after": deep_health(a.server.base_url)["follower"],
        "cpu_cores": {
            "A": r3(sum(v for p, v in cpu.items() if p in a_tree) / elapsed),
            "B": r3(sum(v for p, v in cpu.items() if p in b_tree) / elapsed),
            "postgres": used["postgres_cores"],
            "redis_server": used["redis_server_cores"],
            "client": used["client_cores"],
            "machine_busy": used["machine_busy_cores"],
            "other_work": used["other_work_cores"],
        },
        "load_average": [load0, load_average()],
    }


def log_lag(one: dict[str, Any]) -> None:
    v, fa = one["visibility"], one["B_follower_after"]
    ev = v["eventual"]
    log(
        f"  {one['name']}: A {one['ingest']['docs_per_s']} docs/s; B follower lag p50 "
        f"{fa['lag_ms_p50']} p99 {fa['lag_ms_p99']} ms ({fa['lag_samples']} samples); strong "
        f"{v['strong']['found_at_once']}/{v['strong']['probes']} found at once; eventual "
        f"ack->found p50 {ev['ack_to_first_answer_holding_it_ms']['p50']} p99 "
        f"{ev['ack_to_first_answer_holding_it_ms']['p99']} ms; cpu {one['cpu_cores']}"
    )


def converged(run: Run, a: Topology, b: Topology, ingested: int) -> dict[str, Any]:
    """After the ingest both indexes reach the log's head and hold N + ingested points."""
    want = run.settings.docs + ingested
    t0 = time.perf_counter()
    while True:
        entries = {
            name: deep_health(t.server.base_url)["index"][run.shared.collection_id]
            for name, t in (("A", a), ("B", b))
        }
        if all(e["applied_seq"] >= e["log_seq"] and e["points"] == want for e in entries.values()):
            return {"points": want, "seconds": round(time.perf_counter() - t0, 2)}
        if time.perf_counter() - t0 > 30:
            raise BenchError(f"the indexes did not converge on {want} points: {entries}")
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------
# the run


@contextlib.contextmanager
def shared_services() -> Iterator[tuple[dict[str, str], str]]:
    """A fresh database and a private Redis prefix (tests/support/workers.py's shared_env,
    without importing the server): dropped and deleted on exit."""
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    prefix = f"swbench:{uuid.uuid4().hex[:8]}:"
    with fresh_database(admin_engine(), "sw_scale_out") as url:
        try:
            yield (
                {
                    "STAGEWISE_DATABASE_URL": url,
                    "STAGEWISE_REDIS_URL": REDIS_URL,
                    "STAGEWISE_REDIS_PREFIX": prefix,
                },
                url.rsplit("/", 1)[1],
            )
        finally:
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
            client.close()


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    phases = results.get("phases", [])

    def mean(topology: str, workers: int, *path: str) -> float | None:
        vals = []
        for p in phases:
            if p.get("topology") != topology or p.get("workers") != workers:
                continue
            v: Any = p
            for k in path:
                v = v.get(k) if isinstance(v, dict) else None
            if v is not None:
                vals.append(float(v))
        return round(sum(vals) / len(vals), 3) if vals else None

    out: dict[str, Any] = {}
    for route in ("c", "health"):
        one, two = mean("shared", 1, route, "per_s"), mean("shared", 2, route, "per_s")
        embedded = mean("embedded", 1, route, "per_s")
        out[route] = {
            "per_s_1_worker": one,
            "per_s_2_workers": two,
            "ratio_2_over_1": ratio(two, one),
            "per_s_embedded": embedded,
            "ratio_2_workers_over_embedded": ratio(two, embedded),
            "server_cpu_cores_1_worker": mean("shared", 1, route, "server_cpu_cores"),
            "server_cpu_cores_2_workers": mean("shared", 2, route, "server_cpu_cores"),
            "server_cpu_cores_embedded": mean("embedded", 1, route, "server_cpu_cores"),
            "cpu_ms_per_request_1_worker": mean("shared", 1, route, "server_cpu_ms_per_request"),
            "cpu_ms_per_request_2_workers": mean("shared", 2, route, "server_cpu_ms_per_request"),
            "cpu_ms_per_request_embedded": mean("embedded", 1, route, "server_cpu_ms_per_request"),
        }
    out["c_one_client"] = {
        topology: {
            "wall_ms_p50": mean(topology, 1, "c_one_client", "wall_ms", "p50"),
            "server_total_ms_p50": mean(topology, 1, "c_one_client", "server_total_ms", "p50"),
            "cpu_ms_per_execution": mean(
                topology, 1, "c_one_client", "server_cpu_ms_per_execution"
            ),
        }
        for topology in ("shared", "embedded")
    }
    by_round = []
    for r in sorted({p["round"] for p in phases}):
        w = {p["workers"]: p for p in phases if p["round"] == r and p["topology"] == "shared"}
        if 1 in w and 2 in w and "c" in w[1] and "c" in w[2]:
            by_round.append(
                {
                    "round": r,
                    "c_ratio": ratio(w[2]["c"]["per_s"], w[1]["c"]["per_s"]),
                    "health_ratio": ratio(w[2]["health"]["per_s"], w[1]["health"]["per_s"]),
                }
            )
    out["by_round"] = by_round
    two = out["c"]["per_s_2_workers"]
    out["target_c_2_workers_ge_300_per_s"] = None if two is None else two >= 300
    return out


def table(results: dict[str, Any]) -> str:
    st = results["settings"]
    lines = [
        f"scale-out: {st['docs']:,} docs, {st['seconds']} s phases, load average "
        f"{results['load_average_start']} -> {results.get('load_average_end')}",
        "",
        "| phase | route | req/s | p50 ms | p99 ms | server cores (by process) | postgres "
        "| redis | client | machine busy | other work | connections by worker |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for p in results.get("phases", []):
        for route, name in (("health", "GET /v1/health"), ("c", "(c) execute")):
            m = p.get(route)
            if not m:
                continue
            lines.append(
                f"| r{p['round']} {p['topology']} {p['workers']}w | {name} | {m['per_s']} "
                f"| {m['wall_ms']['p50']} | {m['wall_ms']['p99']} | {m['server_cpu_cores']} "
                f"({m['cpu_cores_by_process']}) "
                f"| {m['postgres_cpu_cores']} | {m['redis_server_cpu_cores']} "
                f"| {m['client_cpu_cores']} | {m['machine_busy_cores']} "
                f"| {m['other_work_cores']} | {m['connections_by_worker']} |"
            )
    s = results.get("summary", {})
    for topology, one in (s.get("c_one_client") or {}).items():
        lines.append(
            f"(c) at 1 client, {topology}, 1 worker: p50 {one['wall_ms_p50']} ms, server "
            f"{one['server_total_ms_p50']} ms, {one['cpu_ms_per_execution']} CPU-ms per execution"
        )
    for route in ("c", "health"):
        if route in s:
            x = s[route]
            lines.append(
                f"{route}: 1 worker {x['per_s_1_worker']}/s, 2 workers {x['per_s_2_workers']}/s, "
                f"ratio {x['ratio_2_over_1']} (by round: "
                f"{[r[f'{route}_ratio'] for r in s.get('by_round', [])]}); embedded "
                f"{x['per_s_embedded']}/s"
            )
    for one in (results.get("follower_lag") or {}).get("scenarios", []):
        v, fa, ing = one["visibility"], one["B_follower_after"], one["ingest"]
        strong, eventual = v["strong"], v["eventual"]
        seen = eventual["ack_to_first_answer_holding_it_ms"]
        low = eventual["ack_to_last_read_that_missed_it_ms"]
        lines += [
            "",
            f"lag, {one['name']}: A ingest {ing['docs_per_s']} docs/s ({ing['batches']} batches "
            f"of {INGEST_BATCH}, call p50 {ing['call_ms']['p50']} ms"
            + ("; RAN OUT of prepared documents" if ing["ran_out"] else "")
            + ")"
            + (
                f"; B (c) x{one['readers']}: {one['reads']['per_s']}/s p50 "
                f"{one['reads']['wall_ms']['p50']} ms"
                if one["readers"]
                else ""
            )
            + f"; cpu {one['cpu_cores']}",
            f"  B follower (deep health): commit->applied p50 {fa['lag_ms_p50']} ms p99 "
            f"{fa['lag_ms_p99']} ms over {fa['lag_samples']} samples; B applied "
            f"{one['B_writes_applied']} writes",
            f"  strong read on B right after the ack: {strong['found_at_once']}/"
            f"{strong['probes']} found; ack->answer p50 {strong['ack_to_answer_ms']['p50']} "
            f"p99 {strong['ack_to_answer_ms']['p99']} ms",
            f"  eventual reads on B until found ({eventual['probes']} probes, "
            f"{eventual['found_by_the_first_read']} found by the first read): ack->answer p50 "
            f"{seen['p50']} p99 {seen['p99']} ms; ack->last miss sent p50 {low['p50']} p99 "
            f"{low['p99']} ms; ack->first read sent p50 "
            f"{eventual['ack_to_first_read_sent_ms']['p50']} ms; read p50 "
            f"{eventual['read_ms']['p50']} ms",
        ]
    lines.append("")
    lines.append("memory (VmRSS MiB): ready -> after the measurement")
    for name, loaded in (results.get("load") or {}).items():
        lines.append(f"  loader ({name}) after the load: {loaded['memory_after_load']['rss_mib']}")
    for p in results.get("phases", []):
        ready, after = p.get("memory_ready") or {}, p.get("memory_after") or {}
        parts = []
        if ready.get("parent"):
            then = (after.get("parent") or {}).get("rss_mib")
            parts.append(f"parent {ready['parent']['rss_mib']} -> {then}")
        for pid, m in (ready.get("workers") or {}).items():
            a = (after.get("workers") or {}).get(pid) or {}
            parts.append(f"worker {pid} {m['rss_mib']} -> {a.get('rss_mib')}")
        lines.append(f"  r{p['round']} {p['topology']} {p['workers']}w: " + "; ".join(parts))
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.scale_out",
        description="1 worker against 2, follower lag and memory (see bench/scale_out.py)",
    )
    p.add_argument("--docs", type=int, default=None, help="documents (default 100000)")
    p.add_argument("--seconds", type=float, default=None, help="per measurement (default 20)")
    p.add_argument("--rounds", type=int, default=None, help="A B rounds (default 2)")
    p.add_argument("--quick", action="store_true", help="CI: 10k docs, 5 s phases, 1 round")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="JSON results file")
    p.add_argument("--data-root", type=Path, default=None, help="where the run dir goes")
    p.add_argument("--keep-data", action="store_true", help="keep the data dirs and logs")
    p.add_argument(
        "--source",
        choices=("worktree", "head"),
        default="worktree",
        help="the servers run a copy of src/ from the checkout (default) or from git HEAD",
    )
    p.add_argument(
        "--embedded",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the reference phases on the embedded default (SQLite, no Redis); "
        "default: on, off with --quick",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    s = settings_for(args)
    started = datetime.now(UTC)
    root = Path(tempfile.mkdtemp(prefix="sw-scale-out-", dir=args.data_root))
    results: dict[str, Any] = {
        "benchmark": "stagewise scale-out (issue 11)",
        "command": " ".join(
            ["python -m bench.scale_out", *(argv if argv is not None else sys.argv[1:])]
        ),
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "machine": machine_info(),
        "load_average_start": load_average(),
        "git": git_revision(),
        "settings": s.__dict__,
        "seed": args.seed,
    }
    status = 0
    try:
        results["source"] = freeze_source(root, args.source)
        frozen = {
            "PYTHONPATH": os.pathsep.join(
                [results["source"]["copied_to"], *filter(None, [os.environ.get("PYTHONPATH")])]
            )
        }
        with shared_services() as (env, database):
            env = {**env, **frozen}
            ds = Dataset(Spec(s.docs, args.seed))
            category, share = selective_category()
            qv, qt, _ = ds.queries(QUERIES, seed=args.seed + 1)
            shared = Deployment("shared", root / "data", env, database)
            embedded = (
                Deployment("embedded", root / "embedded", frozen, None)
                if (not args.quick if args.embedded is None else args.embedded)
                else None
            )
            run = Run(s, root, ds, category, Queries(qv, qt), shared, embedded)
            results["filter"] = {
                "field": "metadata.category",
                "value": category,
                "share": round(share, 4),
            }
            results["database"] = database
            results["redis_prefix"] = env["STAGEWISE_REDIS_PREFIX"]
            try:
                results["load"] = {}
                for dep in (shared, embedded):
                    if dep is not None:
                        results["load"][dep.name] = load(run, dep)
                run.vectors = None
                results["phases"] = []
                for r in range(1, s.rounds + 1):
                    for workers in (1, 2):
                        results["phases"].append(phase(run, shared, workers, r))
                    if embedded is not None:
                        results["phases"].append(phase(run, embedded, 1, r))
                results["follower_lag"] = follower_lag(run)
            except Exception as exc:
                status = 1
                results.setdefault("errors", []).append(str(exc))
                traceback.print_exc()
    except Exception as exc:  # the database or Redis
        status = 1
        results.setdefault("errors", []).append(repr(exc))
        traceback.print_exc()
    finally:
        results["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)
        if results.get("source", {}).get("from") == "worktree":
            now = source_digest(REPO_ROOT / "src" / "stagewise")
            results["source"]["checkout_changed_during_run"] = now != results["source"]["sha256"]
        results["load_average_end"] = load_average()
        results["summary"] = summarise(results)
        out = args.out or RESULTS_DIR / ("scale_out-quick.json" if args.quick else "scale_out.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str))
        print(table(results))
        for err in results.get("errors", []):
            print(f"ERROR: {err}", file=sys.stderr)
        if args.keep_data:
            print(f"data and server logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        print(f"results: {out} ({results['seconds']} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
