"""Index builds without cliffs (issue 14): the tail after an ingest, serving while a
generation builds, the first queries after a swap.

    python -m bench.build_cliffs [--n 100000] [--threshold N] [--settle-timeout 900]

Over HTTP against a `stagewise serve` child with a low build threshold (default n/5), so that
the index builder starts a build in the middle of the ingest: BYO-upserts n clustered 384-d
vectors (bench/generate.py) while one client executes a filtered dense retriever back to back
(the filter value templated, `metadata.category == {{INPUT.category}}`, the ~10% category),
and a monitor polls GET /v1/health/deep every 0.25 s. It reports:

(a) the points outside HNSW over time after the ingest ends, and how long until they are
    under the threshold with no build running;
(b) p50/p99 of the retriever while a generation builds (during the ingest, and after it) and
    in the steady state after the last build;
(c) p50/p99 of the first 100 queries after each swap, against the steady state (a swap is
    seen at a poll; its queries are those started after the poll before, so the window
    holds every query after the swap and possibly a few just before it);
(d) recall@10 of the steady state against exact filtered search (numpy).

Prints one JSON document and writes it to bench/results/build_cliffs-<time>.json.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.common import REPO_ROOT, git_revision, machine_info, start_server
from bench.generate import Dataset, Spec, category_name, selective_category
from bench.measure import (
    ADMIN_KEY,
    CACHE_DIR,
    COLLECTION,
    FEATURE,
    RESULTS_DIR,
    Client,
    K,
    completed,
    dist,
    load_average,
    log,
    r3,
    ratio,
)
from bench.perf import exact_topk, ingest_byo, setup_collection

FIRST = 100  # queries after a swap
STEADY = 300


def retriever(category_input: str = "{{INPUT.category}}") -> dict[str, Any]:
    search = {
        "feature_uri": FEATURE,
        "query": {"input_mode": "vector", "value": "{{INPUT.query_vector}}"},
        "top_k": K,
    }
    return {
        "retriever_name": "filtered-dense",
        "collection_identifiers": [COLLECTION],
        "input_schema": {
            "query_vector": {"type": "array", "required": True},
            "category": {"type": "string", "required": True},
        },
        "stages": [
            {
                "stage_name": "search",
                "config": {
                    "stage_id": "feature_search",
                    "parameters": {"searches": [search], "final_top_k": K},
                    "pre_filters": {
                        "AND": [
                            {
                                "field": "metadata.category",
                                "operator": "eq",
                                "value": category_input,
                            }
                        ]
                    },
                },
            }
        ],
    }


class Stream:
    """One client executing the retriever back to back: (start, ms, ids) per query."""

    def __init__(self, base_url: str, rid: str, bodies: list[bytes]) -> None:
        self.base_url, self.rid, self.bodies = base_url, rid, bodies
        self.samples: list[tuple[float, float, list[str]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = Client(self.base_url)
        path = f"/v1/retrievers/{self.rid}/execute"
        i = 0
        try:
            while not self.stop.is_set():
                t = time.perf_counter()
                out, ms = client.send("POST", path, self.bodies[i % len(self.bodies)])
                completed(out)
                self.samples.append((t, ms, [d["document_id"] for d in out["documents"]]))
                i += 1
        finally:
            client.close()


class Monitor:
    """Polls /v1/health/deep: (time, unindexed points, building, last build) per poll."""

    def __init__(self, base_url: str, cid: str, period: float = 0.25) -> None:
        self.base_url, self.cid, self.period = base_url, cid, period
        self.polls: list[tuple[float, int, bool, Any]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = Client(self.base_url, None)
        try:
            while not self.stop.is_set():
                state, _ = client.call("GET", "/v1/health/deep")
                index = state["index"][self.cid]
                self.polls.append(
                    (
                        time.perf_counter(),
                        int(index["unindexed_points"]),
                        index["build"] is not None,
                        index["last_build"],
                    )
                )
                self.stop.wait(self.period)
        finally:
            client.close()

    def last(self) -> tuple[float, int, bool, Any]:
        return self.polls[-1]


def swaps(polls: list[tuple[float, int, bool, Any]]) -> list[tuple[float, float, Any]]:
    """(previous poll, poll that saw it, figures) per installed generation."""
    out = []
    for before, after in itertools.pairwise(polls):
        if after[3] is not None and after[3] != before[3]:
            out.append((before[0], after[0], after[3]))
    return out


def building_at(polls: list[tuple[float, int, bool, Any]], t: float) -> bool:
    """Whether a build ran at `t` by the polls either side (both must say so)."""
    times = [p[0] for p in polls]
    i = int(np.searchsorted(times, t))
    if i == 0 or i >= len(polls):
        return False
    return polls[i - 1][2] and polls[i][2]


def run(
    n: int, threshold: int, settle_timeout: float, seed: int, data_root: Path, src: Path
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "n": n,
        "threshold": threshold,
        "git": git_revision(),
        "machine": machine_info(),
        "load_average_start": load_average(),
    }
    ds = Dataset(Spec(n, seed))
    vectors = ds.vectors(CACHE_DIR)
    category, share = selective_category()
    result["filter"] = {"value": category, "share": round(share, 4)}
    codes = ds.column("category")
    rows = np.flatnonzero(np.array([category_name(int(c)) == category for c in codes]))
    qv, _, _ = ds.queries(200, seed=seed + 1)
    # exact filtered top-10 over the category's own rows, as document numbers
    truth = rows[exact_topk(np.asarray(vectors[rows]), qv, K)]
    bodies = [
        orjson.dumps(
            {"inputs": {"query_vector": v, "category": category}, "skip_cache": True},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        for v in qv
    ]

    data_dir = data_root / f"build-cliffs-{n}-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {
        "STAGEWISE_INDEX_BUILD_MIN_POINTS": str(threshold),
        "STAGEWISE_INDEX_BUILD_POLL_S": "1",
        # the server and its build child run this checkout's code
        "PYTHONPATH": str(src) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    server = start_server(data_dir, admin_key=ADMIN_KEY, env=env)
    try:
        cid = setup_collection(server.base_url)
        client = Client(server.base_url)
        try:  # created first: the keyword index on metadata.category precedes any build
            rid = client.call("POST", "/v1/retrievers", retriever())[0]["retriever_id"]
        finally:
            client.close()
        monitor = Monitor(server.base_url, cid)
        stream = Stream(server.base_url, rid, bodies)
        monitor.thread.start()
        log(f"N={n:,}: BYO ingest with a build threshold of {threshold:,}")
        t_start = time.perf_counter()

        def start_stream_when_searchable() -> None:
            # once the collection holds some points, so that every query has hits
            while not monitor.polls or monitor.last()[1] < 1000:
                time.sleep(0.05)
            stream.thread.start()

        starter = threading.Thread(target=start_stream_when_searchable, daemon=True)
        starter.start()
        result["ingest"] = ingest_byo(server, ds, vectors)
        t_end = time.perf_counter()
        starter.join()
        log(f"  ingest done: {result['ingest']['docs_per_s']:,} docs/s; waiting for the tail")
        settled_at = None
        while time.perf_counter() - t_end < settle_timeout:
            time.sleep(0.5)
            polls = [p for p in monitor.polls if p[0] > t_end + 1.0]
            if polls and polls[-1][1] < threshold and not polls[-1][2]:
                # under the threshold, nothing building, and no build starts next round
                time.sleep(2.5)
                last = monitor.last()
                if last[1] < threshold and not last[2]:
                    settled_at = polls[-1][0]
                    break
        log(f"  settled after {None if settled_at is None else round(settled_at - t_end, 1)} s")
        t_steady = time.perf_counter()
        while len([s for s in stream.samples if s[0] > t_steady]) < STEADY:
            time.sleep(0.2)
        stream.stop.set()
        monitor.stop.set()
        stream.thread.join()
        monitor.thread.join()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    polls = monitor.polls
    samples = stream.samples
    after_end = [(round(t - t_end, 1), u, b) for t, u, b, _ in polls if t >= t_end]
    step = max(1, len(after_end) // 40)
    result["tail"] = {
        "unindexed_at_ingest_end": after_end[0][1] if after_end else None,
        "seconds_until_under_threshold_and_idle": None
        if settled_at is None
        else r3(settled_at - t_end),
        "unindexed_60s_after_ingest": next((u for s, u, _ in after_end if s >= 60), None),
        "series_s_unindexed_building": after_end[::step],
        "builds": [
            {"seen_at_s": r3(seen - t_start), "ingest_end_s": r3(t_end - t_start), **fig}
            for _, seen, fig in swaps(polls)
        ],
    }
    steady = [ms for t, ms, _ in samples if t > t_steady]
    during_ingest = [ms for t, ms, _ in samples if t < t_end and building_at(polls, t)]
    during_after = [ms for t, ms, _ in samples if t_end <= t < t_steady and building_at(polls, t)]
    firsts = []
    for before, _, _ in swaps(polls):
        window = [ms for t, ms, _ in samples if t > before][:FIRST]
        if len(window) == FIRST:
            firsts.append({**dist(window), "max": r3(max(window))})
    steady_d = dist(steady)
    build_d = dist(during_after) if during_after else dist(during_ingest)
    result["latency_ms"] = {
        "building_during_ingest": dist(during_ingest),
        "building_after_ingest": dist(during_after),
        "steady": steady_d,
        "first_100_after_each_swap": firsts,
        "ratio_p50_building_to_steady": ratio(build_d["p50"], steady_d["p50"]),
        "ratio_worst_first100_p99_to_steady_p99": ratio(
            max((f["p99"] for f in firsts), default=None), steady_d["p99"]
        )
        if firsts
        else None,
    }
    steady_samples = [s for s in samples if s[0] > t_steady]
    # the stream cycles through the 200 queries; score the steady ones by their index
    first_index = len(samples) - len(steady_samples)
    scored = []
    for j, (_, _, ids) in enumerate(steady_samples[:200]):
        exact = {f"d{int(i):07d}" for i in truth[(first_index + j) % len(truth)]}
        scored.append(len(exact & set(ids[:K])) / K)
    result["recall@10_steady"] = r3(float(np.mean(scored))) if scored else None
    result["load_average_end"] = load_average()
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--threshold", type=int, default=0, help="build threshold (default n/5)")
    parser.add_argument("--settle-timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=Path("/tmp"))
    parser.add_argument(
        "--src", type=Path, default=REPO_ROOT / "src", help="the server's code (another checkout)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    threshold = args.threshold or max(1, args.n // 5)
    result = run(args.n, threshold, args.settle_timeout, args.seed, args.data_root, args.src)
    result["src"] = str(args.src)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"build_cliffs-{stamp}.json"
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    out.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    log(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
