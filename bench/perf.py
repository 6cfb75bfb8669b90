"""Performance benchmarks: execute latency and throughput, ANN recall, ingest, read paths, memory.

    python -m bench [--sizes 10000,100000] [--quick] [--seed 0] [--out FILE] ...

Every figure is a median (p50; p99 where asked) and, where a baseline applies, a ratio against a
baseline measured in the same run:

- the exact-search floor: numpy brute-force top-10 over the same vectors with one BLAS thread;
- a trivial HTTP route on the same server: GET /v1/health.

The server runs as a child process (`python -m stagewise serve`, bench.common) on a fresh data
dir; the client is this process, on the same machine (loopback), so both share its cores.

Per collection size N the run:

1. generates (or reuses from bench/results/cache) N synthetic documents (bench.generate);
2. ingests them with BYO upserts of 1,000 documents (vectors under the collection's MiniLM
   feature name, the text in the payload so BM25 indexes it), recording docs/s and server RSS;
3. creates four retrievers: (a) dense feature_search, (b) dense + BM25 fused with RRF,
   (c) (b) -> attribute_filter (metadata.category, ~9% of documents) -> sort_attribute
   (metadata.year), (d) (c) -> mmr; every execute sends skip_cache so the result cache never
   answers;
4. measures per retriever: 1-client latency p50/p99 (and the server's own total_time_ms and
   per-stage duration_ms), throughput at 8 and 32 concurrent clients for a bounded time, and the
   recall@10 of (a) against exact numpy search;
5. read paths: GET execution detail and POST executions/list against GET /v1/health,
   interleaved;
6. stops the server and runs (a) and (c) in-process through stagewise.services.execute on the
   same data dir (a shard dir is locked by one process), which separates HTTP cost;
7. unless --no-optimized: restarts the server with an index-build threshold, so that its
   index builder builds the shard's next generation (HNSW) in a child process and swaps it in
   while serving; waits for that (GET /v1/health/deep) and measures again.

Once per run it also measures text ingest (single-document POSTs, which the server embeds one
by one, and the batched BYO route with the text embedded server-side) against the bare MiniLM
model's own throughput on the same texts.

Exit status: 0 when every measurement ran, 1 on errors; timings never change it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import queue
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from bench.common import (
    BenchError,
    ServerProcess,
    git_revision,
    machine_info,
    start_server,
)
from bench.generate import Dataset, Spec, selective_category
from bench.measure import (
    ADMIN_KEY,
    CACHE_DIR,
    COLLECTION,
    FEATURE,
    NAMESPACE,
    PAGE,
    RESULTS_DIR,
    RETRIEVERS,
    UPSERT_BATCH,
    Client,
    K,
    completed,
    cpu_seconds,
    dist,
    load_average,
    log,
    pct,
    r3,
    ratio,
    rss_bytes,
    self_cpu_seconds,
)
from bench.report import tables, targets
from bench.text_ingest import text_ingest


@dataclass(frozen=True)
class Settings:
    latency_queries: int  # 1-client executions per retriever
    recall_queries: int  # of them, the first ones scored against exact search
    throughput_seconds: float
    concurrency: tuple[int, ...]
    read_requests: int  # per read route
    floor_queries: int
    inprocess_queries: int
    text_docs: int
    optimized: bool


QUICK = Settings(
    latency_queries=40,
    recall_queries=40,
    throughput_seconds=1.0,
    concurrency=(8, 32),
    read_requests=60,
    floor_queries=30,
    inprocess_queries=30,
    text_docs=128,
    optimized=False,
)
FULL = Settings(
    latency_queries=300,
    recall_queries=300,
    throughput_seconds=10.0,
    concurrency=(8, 32),
    read_requests=500,
    floor_queries=50,
    inprocess_queries=200,
    text_docs=1000,
    optimized=True,
)


# ---------------------------------------------------------------------------------------------
# retrievers


def retriever_stages(kind: str, category: str) -> list[dict[str, Any]]:
    dense = {
        "feature_uri": FEATURE,
        "query": {"input_mode": "vector", "value": "{{INPUT.query_vector}}"},
        "top_k": 100,
    }
    lexical = {
        "feature_uri": FEATURE,
        "query": {"input_mode": "text", "value": "{{INPUT.query_text}}"},
        "top_k": 100,
        "lexical": True,
    }
    if kind == "a_dense":
        return [_stage("search", "feature_search", {"searches": [dense], "final_top_k": K})]
    stages = [
        _stage(
            "search",
            "feature_search",
            {"searches": [dense, lexical], "fusion": "rrf", "final_top_k": 100},
        )
    ]
    if kind == "b_hybrid":
        return stages
    stages += [
        _stage(
            "filter",
            "attribute_filter",
            {"field": "metadata.category", "operator": "eq", "value": category},
        ),
        _stage("sort", "sort_attribute", {"field": "metadata.year", "direction": "desc"}),
    ]
    if kind == "d_hybrid_filter_sort_mmr":
        stages.append(
            _stage("mmr", "mmr", {"lambda": 0.7, "top_k": K, "diversity_feature_uri": FEATURE})
        )
    return stages


def _stage(name: str, stage_id: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"stage_name": name, "config": {"stage_id": stage_id, "parameters": params}}


INPUT_SCHEMA = {
    "query_vector": {"type": "array", "required": True},
    "query_text": {"type": "text", "required": True},
}


def execute_body(vec: NDArray[np.float32], text: str) -> bytes:
    return orjson.dumps(
        {
            "inputs": {"query_vector": vec, "query_text": text},
            "skip_cache": True,
            "limit": PAGE,
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


# ---------------------------------------------------------------------------------------------
# exact search (the floor and the ground truth)


def exact_topk(vectors: NDArray[np.float32], queries: NDArray[np.float32], k: int) -> NDArray[Any]:
    """Exact top-k ids by inner product (the vectors are unit length), in row blocks."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    step = 100_000
    for start in range(0, len(vectors), step):
        block = np.asarray(vectors[start : start + step])
        s = queries @ block.T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        cand_i = np.concatenate([best_i, part + start], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(cand_s, order, 1)
        best_i = np.take_along_axis(cand_i, order, 1)
    return best_i


def floor_latency(vectors: NDArray[np.float32], queries: NDArray[np.float32]) -> dict[str, Any]:
    """Single-query brute-force top-10 with one BLAS thread: p50 over `queries`."""
    times = []
    with threadpool_limits(limits=1):
        for q in queries[:3]:  # warm the pages and the code
            _one_exact(vectors, q)
        for q in queries:
            t0 = time.perf_counter()
            _one_exact(vectors, q)
            times.append((time.perf_counter() - t0) * 1000)
    return dist(times)


def _one_exact(vectors: NDArray[np.float32], q: NDArray[np.float32]) -> NDArray[Any]:
    s = vectors @ q
    top = np.argpartition(-s, K - 1)[:K]
    return top[np.argsort(-s[top])]


# ---------------------------------------------------------------------------------------------
# ingest


def byo_batches(
    ds: Dataset, vectors: NDArray[np.float32], text_payload: bool = True
) -> Iterator[tuple[int, bytes]]:
    """(documents, encoded body) per upsert of UPSERT_BATCH documents."""
    docs = ds.docs()
    for start in range(0, ds.spec.n, UPSERT_BATCH):
        block = np.array(vectors[start : start + UPSERT_BATCH])  # one copy of 1,000 rows
        batch = []
        for row in block:
            doc = next(docs)
            batch.append(
                {
                    "document_id": doc["document_id"],
                    "vectors": {FEATURE: row},
                    "payload": {"text": doc["text"]} if text_payload else {},
                    "metadata": doc["metadata"],
                }
            )
        body = {"collection_id": COLLECTION, "documents": batch}
        yield len(batch), orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def ingest_byo(server: ServerProcess, ds: Dataset, vectors: NDArray[np.float32]) -> dict[str, Any]:
    """POST /documents/upsert, 1,000 documents a call. A producer thread encodes the next
    bodies while the current one is in flight, so the rate is the server's, not the client's."""
    bodies: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=4)
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for item in byo_batches(ds, vectors):
                bodies.put(item)
        except BaseException as exc:  # surfaced below
            failure.append(exc)
        finally:
            bodies.put(None)

    producer = threading.Thread(target=produce, daemon=True)
    client = Client(server.base_url, None)
    call_ms: list[float] = []
    done = 0
    next_log = 100_000
    t0 = time.perf_counter()
    cpu0, own0 = cpu_seconds(server.proc.pid), self_cpu_seconds()
    producer.start()
    try:
        while True:
            item = bodies.get()
            if item is None:
                break
            n, body = item
            _, ms = client.send("POST", f"/v1/namespaces/{NAMESPACE}/documents/upsert", body)
            call_ms.append(ms)
            done += n
            if done >= next_log:
                rate = done / (time.perf_counter() - t0)
                log(f"  ingested {done:,}/{ds.spec.n:,} ({rate:,.0f} docs/s)")
                next_log += 100_000
    finally:
        client.close()
    seconds = time.perf_counter() - t0
    server_cpu, own_cpu = cpu_seconds(server.proc.pid) - cpu0, self_cpu_seconds() - own0
    producer.join()
    if failure:
        raise BenchError(f"building upsert bodies failed: {failure[0]!r}")
    # Rate over the first and last tenth: does it degrade as the collection grows?
    tenth = max(1, len(call_ms) // 10)
    return {
        "documents": done,
        "seconds": round(seconds, 2),
        "docs_per_s": round(done / seconds, 1),
        "batch": UPSERT_BATCH,
        "call_ms": dist(call_ms),
        "server_cpu_cores": r3(server_cpu / seconds),
        "server_cpu_ms_per_1000_docs": r3(server_cpu * 1000 / done * 1000),
        "client_cpu_cores": r3(own_cpu / seconds),
        "docs_per_s_first_tenth": round(tenth * UPSERT_BATCH / (sum(call_ms[:tenth]) / 1000), 1),
        "docs_per_s_last_tenth": round(tenth * UPSERT_BATCH / (sum(call_ms[-tenth:]) / 1000), 1),
    }


# ---------------------------------------------------------------------------------------------
# query runs


@dataclass
class Queries:
    vectors: NDArray[np.float32]
    texts: list[str]
    bodies: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bodies = [execute_body(v, t) for v, t in zip(self.vectors, self.texts, strict=True)]


def one_client(
    base_url: str, rid: str, qs: Queries, n: int, pid: int | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """n sequential executions: wall latency, server total_time_ms, per-stage durations."""
    client = Client(base_url)
    path = f"/v1/retrievers/{rid}/execute"
    wall: list[float] = []
    server: list[float] = []
    stages: dict[str, list[float]] = {}
    outs = []
    try:
        for i in range(min(5, n)):  # warm-up, untimed
            completed(client.send("POST", path, qs.bodies[i % len(qs.bodies)])[0])
        cpu0 = cpu_seconds(pid) if pid else float("nan")
        for i in range(n):
            out, ms = client.send("POST", path, qs.bodies[i % len(qs.bodies)])
            completed(out)
            wall.append(ms)
            stats = out["stage_statistics"]
            server.append(float(stats["total_time_ms"]))
            for name, s in stats["stages"].items():
                stages.setdefault(name, []).append(float(s["duration_ms"]))
            outs.append(
                {
                    "execution_id": out["execution_id"],
                    "ids": [d["document_id"] for d in out["documents"]],
                    "returned": len(out["documents"]),
                }
            )
        cpu1 = cpu_seconds(pid) if pid else float("nan")
    finally:
        client.close()
    overhead = [w - s for w, s in zip(wall, server, strict=True)]
    summary = {
        "server_cpu_ms_per_execution": r3((cpu1 - cpu0) * 1000 / n) if pid else None,
        "wall_ms": dist(wall),
        "server_total_ms": dist(server),
        "http_overhead_ms": dist(overhead),
        "stages_ms_p50": {name: r3(pct(v, 50)) for name, v in stages.items()},
        "returned_p50": pct([o["returned"] for o in outs], 50),
    }
    return summary, outs


def many_clients(
    base_url: str, rid: str, qs: Queries, clients: int, seconds: float, pid: int | None = None
) -> dict[str, Any]:
    """`clients` threads, each with its own connection, executing back to back for `seconds`."""
    path = f"/v1/retrievers/{rid}/execute"
    barrier = threading.Barrier(clients + 1)
    lat: list[list[float]] = [[] for _ in range(clients)]
    server: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    stop_at = [0.0]

    def worker(w: int) -> None:
        client = Client(base_url)
        try:
            client.send("GET", "/v1/health", None)  # connect before the clock starts
            barrier.wait()
            i = w * 7919
            while time.perf_counter() < stop_at[0]:
                out, ms = client.send("POST", path, qs.bodies[i % len(qs.bodies)])
                completed(out)
                lat[w].append(ms)
                server[w].append(float(out["stage_statistics"]["total_time_ms"]))
                i += 1
        except BaseException as exc:
            errors.append(exc)
            if not barrier.broken:
                barrier.abort()
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    t0 = time.perf_counter()
    srv_cpu0, own_cpu0 = (cpu_seconds(pid) if pid else float("nan")), self_cpu_seconds()
    stop_at[0] = t0 + seconds
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0  # includes the in-flight requests' completion
    srv_cpu = (cpu_seconds(pid) if pid else float("nan")) - srv_cpu0
    own_cpu = self_cpu_seconds() - own_cpu0
    if errors:
        raise BenchError(f"{clients}-client run failed: {errors[0]!r}")
    all_lat = [x for xs in lat for x in xs]
    all_srv = [x for xs in server for x in xs]
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "executions": len(all_lat),
        "executions_per_s": round(len(all_lat) / elapsed, 1),
        # The server is one process: its CPU use shows how close it runs to one core (the GIL).
        "server_cpu_cores": r3(srv_cpu / elapsed) if pid else None,
        "server_cpu_ms_per_execution": r3(srv_cpu * 1000 / len(all_lat))
        if pid and all_lat
        else None,
        "client_cpu_cores": r3(own_cpu / elapsed),
        "wall_ms": dist(all_lat),
        "server_total_ms": dist(all_srv),
    }


def recall_at_k(outs: list[dict[str, Any]], truth: NDArray[Any]) -> dict[str, Any]:
    recalls = []
    short = 0
    for out, exact in zip(outs, truth, strict=False):
        exact_ids = {f"d{int(i):07d}" for i in exact[:K]}
        got = out["ids"][:K]
        short += len(got) < K
        recalls.append(len(exact_ids & set(got)) / K)
    return {
        "recall@10_mean": r3(float(np.mean(recalls))) if recalls else None,
        "recall@10_p50": r3(pct(recalls, 50)),
        "recall@10_min": r3(min(recalls)) if recalls else None,
        "queries": len(recalls),
        "short_results": short,
    }


def read_paths(base_url: str, rid: str, execution_ids: list[str], n: int) -> dict[str, Any]:
    """GET /v1/health, GET execution detail, POST executions/list: interleaved, 1 client."""
    client = Client(base_url)
    routes: dict[str, Callable[[int], tuple[Any, float]]] = {
        "health": lambda i: client.send("GET", "/v1/health", None),
        "execution_detail": lambda i: client.send(
            "GET", f"/v1/retrievers/{rid}/executions/{execution_ids[i % len(execution_ids)]}", None
        ),
        "executions_list": lambda i: client.send(
            "POST", f"/v1/retrievers/{rid}/executions/list", b"{}"
        ),
    }
    times: dict[str, list[float]] = {k: [] for k in routes}
    sizes: dict[str, int] = {}
    try:
        for i in range(n + 10):
            for name, fn in routes.items():
                answer, ms = fn(i)
                if i >= 10:  # the first 10 rounds warm up
                    times[name].append(ms)
                sizes[name] = len(orjson.dumps(answer))
    finally:
        client.close()
    out: dict[str, Any] = {name: dist(v) for name, v in times.items()}
    health = out["health"]["p50"]
    for name in ("execution_detail", "executions_list"):
        out[name]["ratio_to_health_p50"] = ratio(out[name]["p50"], health)
        out[name]["response_bytes"] = sizes[name]
    return out


# ---------------------------------------------------------------------------------------------
# in-process (the server stopped: one process owns a shard dir)


def in_process(
    data_dir: Path, rids: dict[str, str], qs: Queries, n: int, kinds: Sequence[str]
) -> dict[str, Any]:
    from stagewise.config import Settings as SwSettings
    from stagewise.services import execute as exe
    from stagewise.services.context import open_stores

    stores = open_stores(SwSettings(data_dir=data_dir, embedder="minilm"))
    out: dict[str, Any] = {}
    try:
        ns = stores.metadata.get_namespace(NAMESPACE)
        assert ns is not None
        with threadpool_limits(limits=1):
            for kind in kinds:
                r = stores.metadata.get_retriever(ns.namespace_id, rids[kind])
                assert r is not None
                engine: list[float] = []
                total: list[float] = []
                with_json: list[float] = []
                for i in range(n + 5):
                    body = {
                        "inputs": {
                            "query_vector": qs.vectors[i % len(qs.texts)].tolist(),
                            "query_text": qs.texts[i % len(qs.texts)],
                        },
                        "limit": PAGE,
                    }
                    t0 = time.perf_counter()
                    p = exe.plan(stores, ns=ns, target=exe.Target.of(r), body=body, skip_cache=True)
                    record, page, pagination = exe.finish(stores, p)
                    t1 = time.perf_counter()
                    orjson.dumps(exe.execution_public(record, page, pagination))
                    t2 = time.perf_counter()
                    if record.status != "completed":
                        raise BenchError(f"in-process {kind}: {record.status} {record.error}")
                    if i >= 5:
                        total.append((t1 - t0) * 1000)
                        with_json.append((t2 - t0) * 1000)
                        engine.append(float(record.total_time_ms or 0.0))
                out[kind] = {
                    "plan_finish_ms": dist(total),
                    "plan_finish_serialize_ms": dist(with_json),
                    "run_total_time_ms": dist(engine),
                }
    finally:
        stores.close()
    return out


BUILD_ENV = "STAGEWISE_INDEX_BUILD_MIN_POINTS"


def wait_for_background_build(base_url: str, collection_id: str, timeout: float) -> dict[str, Any]:
    """Start-up of a server with a build threshold: its index builder starts a child process
    that builds the shard's next generation, then swaps it in. Polls GET /v1/health/deep until
    the collection is indexed; gives up after `timeout` seconds."""
    client = Client(base_url, None)
    t0 = time.perf_counter()
    states: list[dict[str, Any]] = []
    try:
        while True:
            state, _ = client.call("GET", "/v1/health/deep")
            index = state["index"][collection_id]
            # Built now, or found built at start-up (a reused data dir): nothing to wait for.
            built = index["last_build"] is not None or index["unindexed_points"] == 0
            if built and index["build"] is None:
                return {
                    "seconds_until_installed": round(time.perf_counter() - t0, 1),
                    "build": index["last_build"],
                    "unindexed_points_after": index["unindexed_points"],
                    "points": index["points"],
                    "first_state": states[0] if states else index,
                }
            if not states:
                states.append(index)
            if time.perf_counter() - t0 > timeout:
                return {"timed_out": True, "seconds": round(time.perf_counter() - t0, 1)}
            time.sleep(1.0)
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# one collection size


@dataclass
class Run:
    settings: Settings
    seed: int
    data_root: Path
    keep_data: bool
    optimize_timeout: float = 3600.0
    errors: list[str] = field(default_factory=list)


def setup_collection(base_url: str) -> str:
    admin = Client(base_url, None)
    client = Client(base_url)
    try:
        admin.call("POST", "/v1/namespaces", {"namespace_name": NAMESPACE})
        col, _ = client.call(
            "POST",
            "/v1/collections",
            {
                "collection_name": COLLECTION,
                "source": {"type": "direct_upsert"},
                "feature_extractor": {"feature_extractor_name": "text_extractor", "version": "v1"},
            },
        )
    finally:
        admin.close()
        client.close()
    return str(col["collection_id"])


def measure_queries(
    run: Run,
    server: ServerProcess,
    rids: dict[str, str],
    qs: Queries,
    truth: NDArray[Any],
    floor_p50: float | None,
    health_p50: float | None,
    throughput_kinds: Sequence[str] = RETRIEVERS,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    s = run.settings
    out: dict[str, Any] = {}
    exec_ids: dict[str, list[str]] = {}
    for kind in RETRIEVERS:
        log(f"  {kind}: 1 client x {s.latency_queries}")
        summary, outs = one_client(
            server.base_url, rids[kind], qs, s.latency_queries, server.proc.pid
        )
        exec_ids[kind] = [o["execution_id"] for o in outs]
        p50 = summary["wall_ms"]["p50"]
        summary["ratio_p50_to_floor"] = ratio(p50, floor_p50)
        summary["ratio_p50_to_health"] = ratio(p50, health_p50)
        if kind == "a_dense":
            summary["recall"] = recall_at_k(outs[: s.recall_queries], truth)
        summary["throughput"] = {}
        if kind in throughput_kinds:
            for c in s.concurrency:
                tp = many_clients(
                    server.base_url, rids[kind], qs, c, s.throughput_seconds, server.proc.pid
                )
                summary["throughput"][str(c)] = tp
                log(
                    f"  {kind}: {c} clients -> {tp['executions_per_s']}/s (server "
                    f"{tp['server_cpu_cores']} cores, {tp['server_cpu_ms_per_execution']} CPU-ms "
                    f"per execution; client {tp['client_cpu_cores']} cores)"
                )
        out[kind] = summary
        log(
            f"  {kind}: p50 {p50} ms p99 {summary['wall_ms']['p99']} ms "
            f"(server {summary['server_total_ms']['p50']} ms)"
        )
    return out, exec_ids


def health_p50(base_url: str, n: int) -> dict[str, Any]:
    client = Client(base_url, None)
    times = []
    try:
        for i in range(n + 20):
            _, ms = client.send("GET", "/v1/health", None)
            if i >= 20:
                times.append(ms)
    finally:
        client.close()
    return dist(times)


def run_size(run: Run, n: int) -> dict[str, Any]:
    s = run.settings
    result: dict[str, Any] = {
        "n": n,
        "dim": 384,
        "load_average_start": load_average(),
        "git": git_revision(),  # the engine is installed editable: record what each size ran
    }
    ds = Dataset(Spec(n, run.seed))
    t0 = time.perf_counter()
    vectors = ds.vectors(CACHE_DIR)
    result["generate_seconds"] = round(time.perf_counter() - t0, 2)
    raw_bytes = int(vectors.nbytes)
    result["raw_vector_bytes"] = raw_bytes
    category, share = selective_category()
    result["filter"] = {"field": "metadata.category", "value": category, "share": round(share, 4)}

    nq = max(s.latency_queries, s.recall_queries, s.floor_queries)
    qv, qt, _ = ds.queries(nq, seed=run.seed + 1)
    qs = Queries(qv, qt)
    log(f"N={n:,}: exact ground truth and floor")
    truth = exact_topk(vectors, qv[: s.recall_queries], K)
    floor = floor_latency(vectors, qv[: s.floor_queries])
    result["floor_exact_numpy_1thread_ms"] = floor

    data_dir = run.data_root / f"data-{ds.spec.key}-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    # No background index build in this phase: "as served" means the exact-scan state.
    server = start_server(data_dir, admin_key=ADMIN_KEY, env={BUILD_ENV: "0"})
    try:
        pid = server.proc.pid
        result["rss_empty_server"] = rss_bytes(pid)
        collection_id = setup_collection(server.base_url)
        log(f"N={n:,}: BYO ingest")
        result["ingest_byo"] = ingest_byo(server, ds, vectors)
        log(f"  {result['ingest_byo']['docs_per_s']:,} docs/s")
        gc.collect()
        rss = rss_bytes(pid)
        result["rss_after_ingest"] = rss
        result["memory"] = memory_summary(rss, result["rss_empty_server"], raw_bytes)

        client = Client(server.base_url)
        rids: dict[str, str] = {}
        create_ms: dict[str, float] = {}
        try:
            for kind in RETRIEVERS:
                r, ms = client.call(
                    "POST",
                    "/v1/retrievers",
                    {
                        "retriever_name": f"perf-{kind}",
                        "collection_identifiers": [COLLECTION],
                        "input_schema": INPUT_SCHEMA,
                        "stages": retriever_stages(kind, category),
                    },
                )
                rids[kind] = r["retriever_id"]
                create_ms[kind] = round(ms, 1)
        finally:
            client.close()
        result["retriever_create_ms"] = create_ms  # (c) builds the category payload index

        health = health_p50(server.base_url, 200)
        result["health_ms"] = health
        log(f"N={n:,}: queries (floor p50 {floor['p50']} ms, health p50 {health['p50']} ms)")
        queries, exec_ids = measure_queries(
            run, server, rids, qs, truth, floor["p50"], health["p50"]
        )
        result["retrievers"] = queries
        log(f"N={n:,}: read paths")
        result["read_paths"] = read_paths(
            server.base_url,
            rids["c_hybrid_filter_sort"],
            exec_ids["c_hybrid_filter_sort"],
            s.read_requests,
        )
        result["rss_after_queries"] = rss_bytes(pid)
    finally:
        server.stop()

    log(f"N={n:,}: in-process execute (server stopped)")
    result["in_process"] = in_process(
        data_dir, rids, qs, s.inprocess_queries, ("a_dense", "c_hybrid_filter_sort")
    )
    for v in result["in_process"].values():
        v["ratio_p50_to_floor"] = ratio(v["plan_finish_ms"]["p50"], floor["p50"])

    if s.optimized:
        log(f"N={n:,}: HNSW built in the background by the serving process's child")
        server = start_server(data_dir, admin_key=ADMIN_KEY, env={BUILD_ENV: "1000"})
        try:
            pid = server.proc.pid
            result["optimize"] = wait_for_background_build(
                server.base_url, collection_id, run.optimize_timeout
            )
            log(f"  {result['optimize']}")
            if not result["optimize"].get("timed_out"):
                time.sleep(12)  # the replaced generation is closed ~5-10 s after the swap
                result["optimize"]["memory_before_queries"] = memory_summary(
                    rss_bytes(pid), result["rss_empty_server"], raw_bytes
                )
                health = health_p50(server.base_url, 200)
                opt, _ = measure_queries(
                    run,
                    server,
                    rids,
                    qs,
                    truth,
                    floor["p50"],
                    health["p50"],
                    throughput_kinds=("a_dense", "c_hybrid_filter_sort"),
                )
                rss = rss_bytes(pid)
                result["optimized"] = {
                    "health_ms": health,
                    "retrievers": opt,
                    "rss_after_queries": rss,
                    "memory": memory_summary(rss, result["rss_empty_server"], raw_bytes),
                }
        finally:
            server.stop()
    result["load_average_end"] = load_average()
    if not run.keep_data:
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        result["data_dir"] = str(data_dir)
    return result


def memory_summary(rss: dict[str, int], empty: dict[str, int], raw: int) -> dict[str, Any]:
    now = rss.get("VmRSS", 0)
    base = empty.get("VmRSS", 0)
    return {
        "rss_mib": round(now / 2**20, 1),
        "rss_hwm_mib": round(rss.get("VmHWM", 0) / 2**20, 1),
        "rss_anon_mib": round(rss.get("RssAnon", 0) / 2**20, 1),
        "rss_file_mib": round(rss.get("RssFile", 0) / 2**20, 1),
        "raw_vectors_mib": round(raw / 2**20, 1),
        "rss_over_raw": ratio(now, raw),
        "rss_delta_over_raw": ratio(now - base, raw),
        "rss_per_million_vectors_mib": round(now / 2**20 / (raw / (384 * 4) / 1e6), 1),
    }


# ---------------------------------------------------------------------------------------------
# CLI


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench", description="Stagewise performance benchmarks (see bench/perf.py)"
    )
    p.add_argument("--sizes", default=None, help="comma-separated N (default 10000,100000)")
    p.add_argument("--quick", action="store_true", help="CI smoke: 10k docs, small counts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="JSON results file")
    p.add_argument("--data-root", type=Path, default=RESULTS_DIR, help="where data dirs go")
    p.add_argument("--keep-data", action="store_true", help="keep the server data dirs")
    p.add_argument("--no-text", action="store_true", help="skip the text-ingest benchmark")
    p.add_argument("--no-optimized", action="store_true", help="skip the background HNSW phase")
    p.add_argument(
        "--optimize-timeout", type=float, default=3600.0, help="give up the HNSW build after S"
    )
    p.add_argument("--latency-queries", type=int, default=None)
    p.add_argument("--throughput-seconds", type=float, default=None)
    p.add_argument("--text-docs", type=int, default=None)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    overrides: dict[str, Any] = {}
    if args.no_optimized:
        overrides["optimized"] = False
    if args.latency_queries:
        overrides["latency_queries"] = args.latency_queries
        overrides["recall_queries"] = args.latency_queries
    if args.throughput_seconds:
        overrides["throughput_seconds"] = args.throughput_seconds
    if args.text_docs:
        overrides["text_docs"] = args.text_docs
    if overrides:
        settings = Settings(**{**settings.__dict__, **overrides})
    sizes = [int(x) for x in (args.sizes or ("10000" if args.quick else "10000,100000")).split(",")]
    started = datetime.now(UTC)
    run = Run(settings, args.seed, args.data_root, args.keep_data, args.optimize_timeout)
    results: dict[str, Any] = {
        "benchmark": "stagewise perf",
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "machine": machine_info(),
        "load_average_start": load_average(),
        "git": git_revision(),
        "settings": settings.__dict__,
        "seed": args.seed,
        "sizes": {},
    }
    status = 0
    try:
        for n in sizes:
            try:
                results["sizes"][str(n)] = run_size(run, n)
            except Exception as exc:
                status = 1
                results.setdefault("errors", []).append(f"N={n}: {exc!r}")
                traceback.print_exc()
        if not args.no_text:
            log("text ingest")
            try:
                results["text_ingest"] = text_ingest(
                    run.settings.text_docs, run.seed, run.data_root
                )
            except Exception as exc:
                status = 1
                results.setdefault("errors", []).append(f"text ingest: {exc!r}")
                traceback.print_exc()
    finally:
        results["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)
        results["load_average_end"] = load_average()
        results["targets"] = targets(results)
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        out = args.out or RESULTS_DIR / (
            "perf-quick.json" if args.quick else f"perf-{'-'.join(map(str, sizes))}-{stamp}.json"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(tables(results))
        for err in results.get("errors", []):
            print(f"ERROR: {err}", file=sys.stderr)
        print(f"results: {out} ({results['seconds']} s)")
    return status
