"""What the performance benchmarks share: constants, statistics, process readings, and the
HTTP client they drive the server with."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from bench.common import REPO_ROOT, BenchError

RESULTS_DIR = REPO_ROOT / "bench" / "results"
CACHE_DIR = RESULTS_DIR / "cache"
ADMIN_KEY = "sk-bench-perf"
NAMESPACE = "perf"
COLLECTION = "synth"
FEATURE = "all_minilm_l6_v2"  # the text extractor's feature: BYO vectors go under its name
RETRIEVERS = ("a_dense", "b_hybrid", "c_hybrid_filter_sort", "d_hybrid_filter_sort_mmr")
UPSERT_BATCH = 1000
PAGE = 10
K = 10
JSON = {"content-type": "application/json"}


# ---------------------------------------------------------------------------------------------
# statistics


def pct(xs: Sequence[float], p: float) -> float | None:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), p)) if len(xs) else None


def dist(xs: Sequence[float]) -> dict[str, Any]:
    return {
        "p50": r3(pct(xs, 50)),
        "p99": r3(pct(xs, 99)),
        "mean": r3(float(np.mean(xs))) if len(xs) else None,
        "n": len(xs),
    }


def r3(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 4)


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine skews every timing."""
    return [round(x, 2) for x in os.getloadavg()]


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# process memory


def rss_bytes(pid: int) -> dict[str, int]:
    """VmRSS (resident now), VmHWM (peak), and RssAnon / RssFile (heap vs mapped files, such
    as on-disk vectors the engine has read) of a process, from /proc."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    return time.process_time()


# ---------------------------------------------------------------------------------------------
# HTTP


class Client:
    """One keep-alive connection; JSON bodies encoded with orjson (numpy arrays included)."""

    def __init__(self, base_url: str, namespace: str | None = NAMESPACE) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        if namespace:
            headers["X-Namespace"] = namespace
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=600)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, body: Any = None) -> tuple[Any, float]:
        """(decoded body, wall ms). Raises BenchError on a non-2xx answer."""
        content = None if body is None else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        return self.send(method, path, content)

    def send(self, method: str, path: str, content: bytes | None) -> tuple[Any, float]:
        t0 = time.perf_counter()
        try:
            r = self.http.request(method, path, content=content, headers=JSON if content else None)
        except httpx.HTTPError as exc:
            raise BenchError(f"{method} {path} failed: {exc!r}") from exc
        ms = (time.perf_counter() - t0) * 1000
        if not r.is_success:
            raise BenchError(f"{method} {path} -> HTTP {r.status_code}: {r.text[:2000]}")
        return (orjson.loads(r.content) if r.content else None), ms


def completed(out: dict[str, Any]) -> dict[str, Any]:
    if out.get("status") != "completed" or out.get("error"):
        raise BenchError(
            f"execution {out.get('execution_id')}: status={out.get('status')} "
            f"error={out.get('error')}"
        )
    return out
