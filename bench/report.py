"""The benchmark report: each target checked against the results, and the printed tables."""

from __future__ import annotations

import json
from typing import Any


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    sizes = {int(k): v for k, v in results.get("sizes", {}).items()}
    rows: list[dict[str, Any]] = []

    def add(name: str, value: Any, limit: float, le: bool = True, note: str = "") -> None:
        met = None if value is None else (value <= limit if le else value >= limit)
        rows.append({"target": name, "value": value, "limit": limit, "met": met, "note": note})

    c = "c_hybrid_filter_sort"
    for n, label in ((100_000, "100k"), (1_000_000, "1M")):
        r = sizes.get(n)
        if r is None:
            continue
        views = [("as served", r)]
        if "optimized" in r:
            views.append(("after the background HNSW build", r["optimized"]))
        for view, v in views:
            rc = _get(v, "retrievers", c)
            if label == "100k":
                add(f"100k (c) HTTP 1 client p50 <= 10 ms [{view}]", _get(rc, "wall_ms", "p50"), 10)
                add(f"100k (c) p99 <= 30 ms [{view}]", _get(rc, "wall_ms", "p99"), 30)
                add(f"100k (c) p50/floor <= 0.3 [{view}]", _get(rc, "ratio_p50_to_floor"), 0.3)
                add(
                    f"100k (c) throughput at 32 clients >= 300/s [{view}]",
                    _get(rc, "throughput", "32", "executions_per_s"),
                    300,
                    le=False,
                    note="one embedded server process",
                )
            else:
                add(f"1M (c) p50/floor <= 0.1 [{view}]", _get(rc, "ratio_p50_to_floor"), 0.1)
                add(f"1M (c) p50 <= 30 ms [{view}]", _get(rc, "wall_ms", "p50"), 30)
                add(
                    f"1M recall@10 >= 0.95 [{view}]",
                    _get(v, "retrievers", "a_dense", "recall", "recall@10_mean"),
                    0.95,
                    le=False,
                )
        if label == "1M":
            add(
                "memory at 1M x 384 <= 1.6x raw (RSS after ingest)",
                _get(r, "memory", "rss_over_raw"),
                1.6,
            )
            if "optimized" in r:
                add(
                    "memory at 1M x 384 <= 1.6x raw (RSS after HNSW build, queries)",
                    _get(r, "optimized", "memory", "rss_over_raw"),
                    1.6,
                )
    for n in sorted(sizes):
        r = sizes[n]
        add(
            f"N={n:,}: GET execution detail p50 <= 2x GET /v1/health",
            _get(r, "read_paths", "execution_detail", "ratio_to_health_p50"),
            2.0,
        )
        add(
            f"N={n:,}: BYO upsert >= 20k docs/s", _get(r, "ingest_byo", "docs_per_s"), 20_000, False
        )
    t = results.get("text_ingest")
    if t:
        for key in ("single_post_4_clients_ratio_to_bare", "batched_upsert_ratio_to_bare"):
            add(f"text ingest >= 80% of bare model ({key})", t.get(key), 0.8, le=False)
    return rows


def tables(results: dict[str, Any]) -> str:
    lines = []
    for n, r in sorted(results.get("sizes", {}).items(), key=lambda kv: int(kv[0])):
        lines.append(
            f"\n== N = {int(n):,} x 384 == (load average {r.get('load_average_start')} -> "
            f"{r.get('load_average_end')})"
        )
        lines.append(
            f"floor (numpy exact, 1 BLAS thread) p50 {r['floor_exact_numpy_1thread_ms']['p50']} ms"
            f" | GET /v1/health p50 {r['health_ms']['p50']} ms"
            f" | BYO ingest {r['ingest_byo']['docs_per_s']:,} docs/s"
            f" | RSS {r['memory']['rss_mib']} MiB = {r['memory']['rss_over_raw']}x raw"
        )
        views = [("as served (no HNSW)", r)]
        o = r.get("optimize")
        if o and o.get("timed_out"):
            lines.append(f"background HNSW build: gave up after {o['seconds']} s")
        elif o:
            lines.append(
                f"background HNSW build: installed {o['seconds_until_installed']} s after "
                f"start-up ({o['build']}); unindexed points after: "
                f"{o['unindexed_points_after']} of {o['points']}"
            )
        if "optimized" in r:
            views.append(("after the background HNSW build", r["optimized"]))
        for view, v in views:
            lines.append(f"-- {view}")
            lines.append(
                f"{'retriever':<28}{'p50 ms':>9}{'p99 ms':>9}{'srv p50':>9}{'cpu/ex':>8}"
                f"{'/floor':>8}{'/health':>9}{'8c /s':>8}{'32c /s':>8}{'32c cores':>10}"
                f"{'recall':>8}"
            )
            for kind, x in v["retrievers"].items():
                tp = x.get("throughput", {})
                lines.append(
                    f"{kind:<28}{x['wall_ms']['p50']:>9}{x['wall_ms']['p99']:>9}"
                    f"{x['server_total_ms']['p50']:>9}{x.get('server_cpu_ms_per_execution')!s:>8}"
                    f"{x['ratio_p50_to_floor']!s:>8}{x['ratio_p50_to_health']!s:>9}"
                    f"{_get(tp, '8', 'executions_per_s')!s:>8}"
                    f"{_get(tp, '32', 'executions_per_s')!s:>8}"
                    f"{_get(tp, '32', 'server_cpu_cores')!s:>10}"
                    f"{_get(x, 'recall', 'recall@10_mean')!s:>8}"
                )
            c = v["retrievers"]["c_hybrid_filter_sort"]
            lines.append(
                f"(c) stages p50 ms: {c['stages_ms_p50']}; server total p50 "
                f"{c['server_total_ms']['p50']}; HTTP+serialisation overhead p50 "
                f"{c['http_overhead_ms']['p50']} ms"
            )
        rp = r["read_paths"]
        lines.append(
            f"read paths (as served) p50 ms: health {rp['health']['p50']}, execution detail "
            f"{rp['execution_detail']['p50']} ({rp['execution_detail']['ratio_to_health_p50']}x)"
            f", executions/list {rp['executions_list']['p50']} "
            f"({rp['executions_list']['ratio_to_health_p50']}x)"
        )
        for kind, x in r.get("in_process", {}).items():
            lines.append(
                f"in-process (as served, server stopped) {kind}: plan+finish p50 "
                f"{x['plan_finish_ms']['p50']} ms, "
                f"+serialise {x['plan_finish_serialize_ms']['p50']} ms, run total "
                f"{x['run_total_time_ms']['p50']} ms"
            )
    t = results.get("text_ingest")
    if t:
        lines.append("\n== text ingest (server embeds with MiniLM) ==")
        lines.append(json.dumps(t))
    lines.append("\n== targets ==")
    for row in results.get("targets", []):
        mark = {True: "met", False: "MISSED", None: "n/a"}[row["met"]]
        lines.append(f"{mark:>7}  {row['target']}: {row['value']} (limit {row['limit']})")
    return "\n".join(lines)
