"""No drift: retriever (c) at 32 clients for 10 minutes, throughput and p99 minute by minute.

    python -m bench.drift [--n 100000] [--clients 32] [--minutes 10] [--window 60]
                          [--keep-executions N]

Uses bench.profile_execute's server and retriever (c) (templated filter value, skip_cache so
every request runs). The clients run back to back in windows of --window seconds (fresh
connections each window); after each window the server's RSS, its CPU-ms per execution and
the size of its data directory are sampled. Drift is the second half of the run against the first
(mean throughput and mean p99; target: within 5%), with the least-squares trend over the
windows (% of the mean per window), the window-to-window spread (CV), and the last window
against the first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.measure import load_average, log, r3, rss_bytes
from bench.perf import many_clients
from bench.profile_execute import _Queries, add_common_arguments, serving_c


def _dir_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def drift(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The last window against the first (the first one warms caches too: also reported
    against the second)."""
    first, second, last = windows[0], windows[min(1, len(windows) - 1)], windows[-1]

    def ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
        if key == "p99":
            x, y = a["wall_ms"]["p99"], b["wall_ms"]["p99"]
        else:
            x, y = a[key], b[key]
        return r3(y / x) if x else None

    def trend(values: list[float]) -> float | None:
        """Least-squares slope over the windows, as % of the mean per window: a window's
        noise moves it little, a steady decline shows."""
        if len(values) < 3 or not np.mean(values):
            return None
        slope = float(np.polyfit(np.arange(len(values)), values, 1)[0])
        return r3(100 * slope / float(np.mean(values)))

    def halves(values: list[float]) -> float | None:
        """Mean of the second half of the windows over the first half's."""
        half = len(values) // 2
        first_half = float(np.mean(values[:half]))
        return r3(float(np.mean(values[half:])) / first_half) if first_half else None

    qps = [w["executions_per_s"] for w in windows]
    return {
        "throughput_second_half_over_first": halves(qps),
        "p99_second_half_over_first": halves([w["wall_ms"]["p99"] for w in windows]),
        "throughput_trend_pct_per_window": trend(qps),
        "p99_trend_pct_per_window": trend([w["wall_ms"]["p99"] for w in windows]),
        "throughput_cv_pct": r3(
            100
            * float(np.std([w["executions_per_s"] for w in windows]))
            / float(np.mean([w["executions_per_s"] for w in windows]))
        ),
        "throughput_last_over_first": ratio(first, last, "executions_per_s"),
        "throughput_last_over_second": ratio(second, last, "executions_per_s"),
        "p99_last_over_first": ratio(first, last, "p99"),
        "p99_last_over_second": ratio(second, last, "p99"),
        "rss_last_over_first": ratio(first, last, "rss_bytes"),
        "cpu_ms_last_over_first": ratio(first, last, "server_cpu_ms_per_execution"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(p)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--window", type=float, default=60.0, help="seconds per window")
    p.add_argument(
        "--keep-executions",
        type=int,
        default=None,
        help="the server's execution_retention_per_namespace (default: its own default)",
    )
    args = p.parse_args(argv)
    if args.keep_executions is not None:
        keep = str(args.keep_executions)
        args.server_env = {"STAGEWISE_EXECUTION_RETENTION_PER_NAMESPACE": keep}
    n_windows = max(2, round(args.minutes * 60 / args.window))
    windows: list[dict[str, Any]] = []
    with serving_c(args) as (server, rid, payloads, result):
        pid = server.proc.pid
        queries = _Queries(payloads)
        for w in range(n_windows):
            window = many_clients(server.base_url, rid, queries, args.clients, args.window, pid)
            window["rss_bytes"] = rss_bytes(pid)["VmRSS"]
            window["data_dir_bytes"] = _dir_bytes(server.data_dir)
            window["load_average"] = load_average()
            windows.append(window)
            log(
                f"window {w + 1}/{n_windows}: {window['executions_per_s']}/s, "
                f"p50 {window['wall_ms']['p50']} ms, p99 {window['wall_ms']['p99']} ms, "
                f"{window['server_cpu_ms_per_execution']} CPU-ms, "
                f"RSS {window['rss_bytes'] / 2**20:.0f} MiB, "
                f"data {window['data_dir_bytes'] / 2**20:.0f} MiB"
            )
    result["windows"] = windows
    result["drift"] = drift(windows)
    result["load_average_end"] = load_average()
    out = args.out_dir / f"drift-{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result["drift"], indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
