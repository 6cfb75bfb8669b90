"""Issue 14, "no cliffs": filters the engine cannot run, counts, batches, at 100k points.

Builds one embedded shard through the index layer (no HTTP), then prints medians (ms) of:
ends_with and regex searches, a batch of two searches under the same ends_with filter,
counts with a fully native filter and with a narrowed residual. Run it twice:

    PYTHONPATH=src python -m bench.cliffs --points 100000 --before   # old behaviour
    PYTHONPATH=src python -m bench.cliffs --points 100000            # scan cap + reuse

`--before` disables the scan cap and the per-batch reuse, which is what the code did before
(every request scanned every payload its residual touched).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stagewise.domain.filters import parse_filter
from stagewise.domain.records import DocumentRecord
from stagewise.errors import FilterScanTooLarge
from stagewise.pipeline.docpath import sort_key
from stagewise.services.document_listing import _first_in_order, document_view
from stagewise.storage.index.edge import EdgeSearchIndex
from stagewise.storage.index.scan import DEFAULT_SCAN_CAP, reuse_residuals
from stagewise.storage.payload import get_path
from stagewise.storage.protocols import SearchRequest
from stagewise.testing.search_index_data import DIM, TEXT_VECTOR, make_collection, point


def _median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, str]:
    times, outcome = [], "ok"
    for _ in range(runs):
        t = time.perf_counter()
        try:
            fn()
        except FilterScanTooLarge:
            outcome = "422 filter_scan_too_large"
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), outcome


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--before", action="store_true", help="no scan cap, no batch reuse")
    args = ap.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        index = EdgeSearchIndex(Path(tmp), scan_cap=0 if args.before else DEFAULT_SCAN_CAP)
        col = make_collection()
        cid = col.collection_id
        index.ensure_collection(col)
        index.ensure_payload_index(cid, "metadata.cat", "float")
        index.ensure_payload_index(cid, "metadata.name", "keyword")
        t = time.perf_counter()
        for start in range(0, args.points, 2000):
            pts = [
                point(
                    f"d{i}",
                    i + 1,
                    {"metadata": {"name": f"item-{i:06d}", "cat": i % 10}},
                    {TEXT_VECTOR: [rng.random() for _ in range(DIM)]},
                )
                for i in range(start, min(start + 2000, args.points))
            ]
            index.upsert(cid, pts)
        build_s = time.perf_counter() - t
        vec = [rng.random() for _ in range(DIM)]

        def search(raw: dict[str, Any]) -> Callable[[], Any]:
            flt = parse_filter(raw)
            req = SearchRequest(limit=10, vector_name=TEXT_VECTOR, vector=vec, filter=flt)
            return lambda: index.search(cid, [req])

        def batch_of_two(raw: dict[str, Any]) -> Callable[[], Any]:
            one = search(raw)

            def run() -> None:
                if args.before:
                    one(), one()
                else:
                    with reuse_residuals():
                        one(), one()

            return run

        ends = {"field": "metadata.name", "operator": "ends_with", "value": "7"}
        regex = {"field": "metadata.name", "operator": "regex", "value": "^item-0+1"}
        cat3 = {"field": "metadata.cat", "operator": "eq", "value": 3}
        # cat = 3 and a native prefix: 1% of the points, under the scan cap at 100k
        prefix = {"field": "metadata.name", "operator": "starts_with", "value": "item-01"}
        regex3 = {"field": "metadata.name", "operator": "regex", "value": "3$"}
        narrow = {"AND": [cat3, prefix, regex3]}
        narrowed = {"AND": [cat3, prefix, ends]}
        probes: list[tuple[str, Callable[[], Any]]] = [
            ("search, ends_with", search({"AND": [ends]})),
            ("search, regex", search({"AND": [regex]})),
            ("batch of two, ends_with", batch_of_two({"AND": [ends]})),
            ("count, native filter (cat = 3)", lambda: index.count(cid, parse_filter(cat3))),
            ("count, ends_with", lambda: index.count(cid, parse_filter({"AND": [ends]}))),
            (
                "count, cat = 3 AND starts_with AND regex (1%)",
                lambda: index.count(cid, parse_filter(narrow)),
            ),
            ("search, cat = 3 AND starts_with AND ends_with (1%)", search(narrowed)),
            ("batch of two, the same (1%)", batch_of_two(narrowed)),
        ]
        load = os.getloadavg()[0]
        print(f"points {args.points}, built in {build_s:.1f} s, before={args.before}")
        print(f"load average (1 min) at start {load:.2f}")
        print(f"| probe | median ms ({args.runs} runs) | outcome |")
        print("|---|---:|---|")
        for name, fn in probes:
            ms, outcome = _median_ms(fn, args.runs)
            print(f"| {name} | {ms:.1f} | {outcome} |")
        print(f"residual scans run: {index.residual_scans}")
        index.close()
    _listing(args.points, args.runs, args.before)
    print(f"load average (1 min) at end {os.getloadavg()[0]:.2f}")


def _listing(points: int, runs: int, before: bool) -> None:
    """The ordering step of a sorted listing over documents already read (the SQL reads are
    the same either way): the old full sort against the heap, first page and a deep page."""
    rng = random.Random(5)
    docs = [
        DocumentRecord(
            document_id=f"d{i}",
            collection_id="c",
            namespace_id="n",
            metadata={"year": rng.randint(1990, 2025)},
            seq=i + 1,
        )
        for i in range(points)
    ]

    def full_sort(count: int) -> list[DocumentRecord]:  # the code before, as it was
        ordered = sorted(docs, key=lambda d: d.seq)
        field = "metadata.year"
        present = [d for d in ordered if get_path(document_view(d), field) is not None]
        missing = [d for d in ordered if get_path(document_view(d), field) is None]
        present.sort(key=lambda d: sort_key(get_path(document_view(d), field)))
        return (present + missing)[:count]

    for name, count in (("first page (10)", 10), ("a page deep (offset 10,000)", 10_010)):
        if before:
            fn: Callable[[], Any] = lambda c=count: full_sort(c)  # noqa: E731
        else:
            fn = lambda c=count: _first_in_order(iter(docs), "metadata.year", False, c)  # noqa: E731
        ms, _ = _median_ms(fn, runs)
        tracemalloc.start()  # one more run, traced: its peak (tracing slows it down)
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"| sorted listing order, {name} | {ms:.1f} | peak +{peak / 1e6:.1f} MB |")


if __name__ == "__main__":
    main()
