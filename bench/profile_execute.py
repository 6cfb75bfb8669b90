"""Where an execution's CPU goes: retriever (c) end to end over HTTP, with py-spy attached.

    python -m bench.profile_execute [--n 100000] [--queries 400] [--seconds 20] [--no-spy]

Builds (or reuses, under --data-root) a collection of N clustered 384-d vectors through the
BYO upsert, lets the server's background builder index it, then creates retriever (c) as
users write it (hybrid dense + BM25, RRF; an attribute filter whose value is the template
`{{INPUT.category}}`; a sort) and measures:

- the server's CPU-ms per execution (utime + stime of the server process over N sequential
  executions, and over 16 concurrent clients for --seconds);
- with py-spy (unless --no-spy): a sampled profile of the server during the sequential phase,
  summarised as the share of samples in each part of the request (routing and middleware,
  auth, plan, templates, engine calls, provenance, record writing, serialisation) and the top
  functions by own and inclusive samples. Raw collapsed stacks go to --out-dir.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.common import git_revision, machine_info, start_server
from bench.generate import Dataset, Spec, selective_category
from bench.measure import (
    ADMIN_KEY,
    CACHE_DIR,
    COLLECTION,
    PAGE,
    RESULTS_DIR,
    Client,
    completed,
    cpu_seconds,
    dist,
    load_average,
    log,
    r3,
)
from bench.perf import (
    BUILD_ENV,
    INPUT_SCHEMA,
    ingest_byo,
    many_clients,
    retriever_stages,
    setup_collection,
    wait_for_background_build,
)

# Which part of a request a sampled stack belongs to: the first rule (in order) that matches
# any frame of the stack wins, so deeper, more specific parts come first.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("engine: search", ("qdrant_edge", "storage/index/edge.py:search", "edge.py:_dense")),
    ("engine: payloads, filters", ("storage/index/",)),
    ("templates", ("pipeline/templating", "jinja2")),
    ("provenance + candidates", ("stages/feature_search.py", "pipeline/fusion")),
    ("other stages", ("pipeline/stages/",)),
    ("run bookkeeping", ("pipeline/runner", "services/stats", "services/live_progress")),
    ("record writing", ("storage/write_behind", "storage/sql/", "sqlalchemy")),
    ("plan + inputs + cache", ("services/execute.py:plan", "services/inputs", "services/cursors")),
    ("serialisation", ("api/responses", "orjson", "execution_public", "pagination.py")),
    ("auth + namespace", ("api/deps", "services/keys")),
    ("validation + strict JSON", ("api/strict_json", "domain/json_values", "parse_body")),
    ("metrics + logs + request id", ("api/observability", "services/metrics", "api/logs")),
    ("routing + middleware", ("fastapi/", "starlette/", "api/middleware")),
    ("HTTP server", ("uvicorn/", "h11", "httptools", "asyncio/")),
]


def retriever_c(category_type: str) -> dict[str, Any]:
    """bench.perf's (c), its filter value templated as users write it."""
    return {
        "retriever_name": "profile-c-templated",
        "collection_identifiers": [COLLECTION],
        "input_schema": {**INPUT_SCHEMA, "category": {"type": category_type, "required": True}},
        "stages": retriever_stages("c_hybrid_filter_sort", "{{INPUT.category}}"),
    }


def bodies(ds: Dataset, category: Any, n: int, seed: int) -> list[bytes]:
    qv, qt, _ = ds.queries(n, seed=seed)
    return [
        orjson.dumps(
            {
                "inputs": {"query_vector": v, "query_text": t, "category": category},
                "skip_cache": True,
                "limit": PAGE,
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        for v, t in zip(qv, qt, strict=True)
    ]


def sequential(base_url: str, rid: str, payloads: list[bytes], pid: int) -> dict[str, Any]:
    client = Client(base_url)
    path = f"/v1/retrievers/{rid}/execute"
    try:
        for body in payloads[:20]:  # warm-up
            completed(client.send("POST", path, body)[0])
        wall, server = [], []
        cpu0 = cpu_seconds(pid)
        for body in payloads:
            out, ms = client.send("POST", path, body)
            completed(out)
            wall.append(ms)
            server.append(float(out["stage_statistics"]["total_time_ms"]))
        cpu = cpu_seconds(pid) - cpu0
    finally:
        client.close()
    return {
        "executions": len(payloads),
        "server_cpu_ms_per_execution": r3(cpu * 1000 / len(payloads)),
        "wall_ms": dist(wall),
        "server_total_ms": dist(server),
    }


def spy_on(pid: int, raw: Path, rate: int) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` into `raw` (collapsed stacks) until stop_spy."""
    command = ["py-spy", "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
    spy = subprocess.Popen(
        [*command, "--output", str(raw), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached before the measured phase starts
    return spy


def stop_spy(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
    spy.wait(timeout=60)


def summarise(raw: Path) -> dict[str, Any]:
    """Collapsed stacks (py-spy --format raw) -> shares by part, top own and inclusive."""
    parts: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        part = next(
            (name for name, keys in PARTS if any(k in f for f in frames for k in keys)),
            "other",
        )
        parts[part] += count

    def share(counter: Counter[str], top: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)]

    return {
        "samples": total,
        "parts_percent": share(parts, len(PARTS) + 1),
        "own_top_percent": share(own, 25),
        "inclusive_top_percent": [
            (k, p) for k, p in share(inclusive, 80) if "stagewise" in k or "qdrant" in k
        ][:40],
    }


@contextlib.contextmanager
def serving_c(args: argparse.Namespace) -> Iterator[tuple[Any, str, list[bytes], dict[str, Any]]]:
    """A server over N clustered vectors (built, or reused under --data-root), its HNSW
    build finished, and retriever (c) templated: (server, retriever id, request bodies, the
    result dict with the run's facts)."""
    ds = Dataset(Spec(args.n, args.seed))
    vectors = ds.vectors(CACHE_DIR)
    category, share = selective_category()
    data_dir = args.data_root / f"profile-{ds.spec.key}"
    fresh = args.fresh or not (data_dir / "ready").exists()
    if fresh:
        shutil.rmtree(data_dir, ignore_errors=True)
    result: dict[str, Any] = {
        "n": args.n,
        "label": args.label,
        "machine": machine_info(),
        "git": git_revision(),
        "filter": {"category": category, "share": round(share, 4), "templated": True},
        "load_average_start": load_average(),
    }
    env = {BUILD_ENV: "1000", **getattr(args, "server_env", {})}
    with start_server(data_dir, admin_key=ADMIN_KEY, env=env) as server:
        if fresh:
            setup_collection(server.base_url)
            log(f"ingesting {args.n:,} vectors")
            result["ingest"] = ingest_byo(server, ds, vectors)
        client = Client(server.base_url)
        try:
            col, _ = client.call("GET", f"/v1/collections/{COLLECTION}")
            ctype = "integer" if isinstance(category, int) else "string"
            existing, _ = client.call("GET", "/v1/retrievers")
            found = [r for r in existing["results"] if r["retriever_name"] == "profile-c-templated"]
            if found:
                rid = found[0]["retriever_id"]
            else:
                rid = client.call("POST", "/v1/retrievers", retriever_c(ctype))[0]["retriever_id"]
        finally:
            client.close()
        log("waiting for the background index build")
        result["build"] = wait_for_background_build(server.base_url, col["collection_id"], 1800)
        (data_dir / "ready").touch()
        # The replaced generation is deleted 5 s after the swap: not per-execution work.
        time.sleep(8)
        yield server, rid, bodies(ds, category, args.queries, args.seed + 1), result


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=400)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data-root", type=Path, default=Path("/work/bench-data"))
    p.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    p.add_argument("--fresh", action="store_true", help="rebuild the collection")
    p.add_argument("--label", default="run")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(p)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--no-spy", action="store_true")
    args = p.parse_args(argv)

    with serving_c(args) as (server, rid, payloads, result):
        pid = server.proc.pid
        spy = None
        raw = args.out_dir / f"profile-execute-{args.label}.txt"
        if not args.no_spy:
            args.out_dir.mkdir(parents=True, exist_ok=True)
            spy = spy_on(pid, raw, rate=400)
        log(f"{len(payloads)} sequential executions of (c)")
        result["sequential"] = sequential(server.base_url, rid, payloads, pid)
        if spy is not None:
            stop_spy(spy)
            result["profile"] = summarise(raw)
        log(f"16 clients for {args.seconds:.0f} s")
        queries = _Queries(payloads)
        result["clients_16"] = many_clients(server.base_url, rid, queries, 16, args.seconds, pid)
    result["load_average_end"] = load_average()
    out = args.out_dir / f"profile-execute-{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: result[k] for k in ("sequential", "clients_16")}, indent=2))
    print(f"load average {result['load_average_start']} -> {result['load_average_end']}")
    for name, pct_ in result.get("profile", {}).get("parts_percent", []):
        print(f"  {pct_:5.1f}%  {name}")
    for name, pct_ in result.get("profile", {}).get("own_top_percent", [])[:15]:
        print(f"  own {pct_:5.1f}%  {name}")
    print(f"results: {out}")
    return 0


class _Queries:
    """What many_clients reads: pre-encoded bodies."""

    def __init__(self, payloads: list[bytes]) -> None:
        self.bodies = payloads
        self.vectors = np.zeros((len(payloads), 1), dtype=np.float32)


if __name__ == "__main__":
    sys.exit(main())
