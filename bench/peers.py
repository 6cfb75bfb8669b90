"""Stagewise side by side with Chroma and LanceDB on one workload, in one run (issue 14).

    python -m bench.peers [--n 100000] [--queries 300] [--duration 15] [--rounds 2] [--quick]

N clustered 384-d unit vectors (bench/generate.py), row i is document ``p<i>`` with the integer
``category = i % 10`` (each value 10% of the rows). Every query filters on
``category = query index % 10`` and asks for the 10 nearest by cosine:

- Stagewise: ``python -m stagewise serve`` (this checkout) as a child process on its embedded
  defaults, over HTTP; a feature_search pre-filter ``metadata.category == {{INPUT.category}}``
  (the retriever's input schema types category as an integer), created before the ingest; BYO
  upserts of 1,000; queried once no background HNSW build runs (deep health);
- Chroma: ``chroma run`` as a child process (from the virtualenv PEERS_CHROMA_VENV, default
  /work/peers-venv, so chromadb's pins never touch ours), over its REST API with httpx,
  ``where={"category": c}``; ``add`` in batches of 1,000;
- LanceDB: embedded in this process, IVF_PQ (cosine, default settings) plus a BITMAP index on
  category, ``.where("category = c", prefilter=True)``; queried twice over, with the defaults
  ("lancedb") and with ``refine_factor=50`` ("lancedb_refine": candidates re-ranked by their
  full vectors, the same table and index);
- exact: numpy over the category's own rows, one BLAS thread: the floor and the ground truth.

Per engine: ingest docs/s, p50/p99 at 1 client (--queries, after 20 warm-up queries), queries/s
at 16 client threads for --duration seconds, RSS (child process; LanceDB: this process's growth)
and recall@10. The query phases run interleaved, A B C D A B C D ... (--rounds), so that noise
hits every engine alike; the table shows medians over rounds, the JSON has every round.
Results: bench/results/peers-n<N>.json and a markdown table on stdout.

Set-up: ``pip install -e .[bench]`` (LanceDB), and the Chroma server in a virtualenv of its own
(its requirements conflict with our pins): see bench/requirements-chroma.txt. Only loopback is
used: Chroma runs with ``ANONYMIZED_TELEMETRY=False``; LanceDB on a local path sends nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bench.build_probe import exact_topk
from bench.common import BenchError, git_revision, machine_info
from bench.generate import Dataset, Spec
from bench.measure import CACHE_DIR, RESULTS_DIR, dist, load_average, log
from bench.peers_engines import I64, K, Querier

N_VALUES = 10
REFINED = "lancedb_refine"
REFINE_FACTOR = 50
WARMUP = 20
METRICS = (  # (key, label, higher is better)
    ("ingest_docs_per_s", "ingest docs/s", True),
    ("indexed_after_s", "indexed after s", False),
    ("p50_ms", "p50 ms", False),
    ("p99_ms", "p99 ms", False),
    ("qps_16", "queries/s, 16 clients", True),
    ("rss_mb", "RSS MB", False),
    ("recall@10", "recall@10", True),
)


# ---------------------------------------------------------------------------------------------
# pure parts (unit-tested)


def recall_at_k(got: Sequence[Sequence[int]], truth: Sequence[Sequence[int]], k: int = K) -> float:
    """Mean over queries of |got[:k] & truth[:k]| / k (a short answer counts its misses)."""
    if not truth:
        return float("nan")
    hits = [len(set(g[:k]) & set(t[:k])) / k for g, t in zip(got, truth, strict=True)]
    return float(np.mean(hits))


def median_rounds(rounds: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    """Per metric, the median over the rounds that have it."""
    keys = {k for r in rounds for k in r}
    out: dict[str, float | None] = {}
    for key in sorted(keys):
        xs = [r[key] for r in rounds if r.get(key) is not None]
        out[key] = round(float(np.median(xs)), 4) if xs else None
    return out


def ratio_table(
    figures: dict[str, dict[str, float | None]], subject: str = "stagewise"
) -> dict[str, dict[str, float | None]]:
    """`subject`'s figure divided by every other engine's, per metric: {"vs <engine>": {metric:
    ratio}}; None where either side is missing or zero."""
    own = figures.get(subject, {})
    out: dict[str, dict[str, float | None]] = {}
    for other, theirs in figures.items():
        if other == subject:
            continue
        row: dict[str, float | None] = {}
        for key, _, _ in METRICS:
            a, b = own.get(key), theirs.get(key)
            row[key] = None if a is None or not b else round(a / b, 3)
        out[f"vs {other}"] = row
    return out


def floor_ratios(figures: dict[str, dict[str, float | None]]) -> dict[str, float | None]:
    """Each engine's p50 over the exact floor's p50."""
    floor = figures.get("exact", {}).get("p50_ms")
    return {
        e: (None if not floor or f.get("p50_ms") is None else round(f["p50_ms"] / floor, 2))  # type: ignore[operator]
        for e, f in figures.items()
    }


def _fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def markdown(figures: dict[str, dict[str, float | None]], labels: dict[str, str]) -> str:
    """The engines' medians, then Stagewise's ratios to each peer and every p50 to the floor."""
    floors = floor_ratios(figures)
    head = [label for _, label, _ in METRICS]
    lines = [
        "| engine | " + " | ".join(head) + " | p50 / exact |",
        "|---|" + "---:|" * (len(head) + 1),
    ]
    for e, f in figures.items():
        cells = [
            _fmt(f.get(key), 3 if key == "recall@10" else (2 if key.endswith("ms") else 0))
            for key, _, _ in METRICS
        ]
        lines.append(f"| {labels.get(e, e)} | " + " | ".join(cells) + f" | {_fmt(floors[e], 2)}x |")
    lines += ["", "| Stagewise ÷ | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for other, row in ratio_table(figures).items():
        cells = [_fmt(row[key], 2) for key, _, _ in METRICS]
        lines.append(f"| {other.removeprefix('vs ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# measuring


def one_client(
    query: Querier, vecs: np.ndarray, cats: I64
) -> tuple[list[list[int]], dict[str, Any]]:
    for i in range(min(WARMUP, len(vecs))):
        query(vecs[i], int(cats[i]))
    got, ms = [], []
    for v, c in zip(vecs, cats, strict=True):
        t0 = time.perf_counter()
        got.append(query(v, int(c)))
        ms.append((time.perf_counter() - t0) * 1000)
    return got, dist(ms)


def many_clients(make: Any, vecs: np.ndarray, cats: I64, clients: int, seconds: float) -> float:
    """Queries/s of `clients` threads, each with its own querier, cycling over the queries."""
    counts = [0] * clients
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(w: int) -> None:
        try:
            query = make()
            query(vecs[w % len(vecs)], int(cats[w % len(vecs)]))  # connect before the clock
            start.wait()
            i = w
            while time.perf_counter() < stop_at[0]:
                query(vecs[i % len(vecs)], int(cats[i % len(vecs)]))
                counts[w] += 1
                i += clients
        except BaseException as exc:
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600
    start.wait()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    for t in threads:
        t.join()
    if errors:
        raise BenchError(f"a client failed: {errors[0]!r}")
    return round(sum(counts) / (time.perf_counter() - t0), 1)


def query_round(
    engine: Any, vecs: np.ndarray, cats: I64, truth: I64, args: argparse.Namespace
) -> dict[str, Any]:
    exact = engine.name == "exact"
    with threadpool_limits(limits=1) if exact else _Null():
        got, lat = one_client(engine.querier(), vecs, cats)
    out: dict[str, Any] = {
        "p50_ms": lat["p50"],
        "p99_ms": lat["p99"],
        "latency": lat,
        "recall@10": round(recall_at_k(got, truth.tolist()), 4),
        "short_answers": sum(len(g) < K for g in got),
        "wrong_category": sum(
            int(i) % N_VALUES != c for g, c in zip(got, cats, strict=True) for i in g
        ),
    }
    if not exact:
        out["qps_16"] = many_clients(engine.querier, vecs, cats, args.clients, args.duration)
        out["rss_mb"] = round(engine.rss() / 2**20, 1)
    out["load_average"] = load_average()
    return out


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=300, help="1-client queries per round")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of the 16-client phase")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--engines", default="stagewise,chroma,lancedb", help="comma-separated")
    p.add_argument("--build-timeout", type=float, default=900.0, help="seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", type=Path, default=RESULTS_DIR)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="5k vectors, 50 queries, 3 s, 2 rounds")
    p.add_argument("--report", type=Path, default=None, help="re-print the table of a JSON file")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.queries, args.duration, args.rounds = 5000, 50, 3.0, 2
    return args


LABELS = {
    "stagewise": "Stagewise, HTTP, templated pre-filter",
    "chroma": "Chroma server, HTTP",
    "lancedb": "LanceDB embedded, IVF_PQ (defaults)",
    REFINED: f"LanceDB embedded, IVF_PQ, refine_factor={REFINE_FACTOR}",
    "exact": "numpy exact over the category's rows",
}


def main(argv: Sequence[str] | None = None) -> int:
    from bench import peers_engines as pe

    args = parse_args(argv)
    if args.report is not None:
        result = json.loads(args.report.read_text())
        summarise(result)
        print(report(result))
        return 0
    wanted = [e for e in args.engines.split(",") if e]
    result: dict[str, Any] = {
        "benchmark": "stagewise peers (issue 14)",
        "command": " ".join(["python -m bench.peers", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine_info(),
        "git": git_revision(),
        "load_average_start": load_average(),
        "n": args.n,
        "queries": args.queries,
        "clients": args.clients,
        "duration_s": args.duration,
        "filter": f"category = query index % {N_VALUES} (each value {100 // N_VALUES}% of rows)",
        "engines": {},
    }
    ds = Dataset(Spec(args.n, args.seed))
    vectors = ds.vectors(CACHE_DIR)
    cats = (np.arange(args.n) % N_VALUES).astype(np.int64)
    qv, _, _ = ds.queries(args.queries, seed=args.seed + 1)
    qc = (np.arange(args.queries) % N_VALUES).astype(np.int64)
    truth = np.zeros((args.queries, K), dtype=np.int64)
    for v in range(N_VALUES):
        truth[qc == v] = exact_topk(vectors, qv[qc == v], K, np.flatnonzero(cats == v))
    args.data_root.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="peers-", dir=args.data_root))
    engines: dict[str, Any] = {}
    # Made before LanceDB opens, so that its RSS growth does not count the floor's matrices.
    exact = pe.Exact(vectors, cats)
    try:
        for name in wanted:
            log(f"{name}: ingest of {args.n:,}")
            if name == "stagewise":
                eng = pe.Stagewise(root / "stagewise", args.build_timeout)
            elif name == "chroma":
                eng = pe.Chroma(root / "chroma")
            elif name == "lancedb":
                eng = pe.LanceDB(root / "lancedb")
            else:
                raise BenchError(f"unknown engine {name}")
            engines[name] = eng
            rec: dict[str, Any] = {"load_average_before": load_average()}
            rec["ingest"] = eng.load(vectors, cats)
            log(f"  {rec['ingest']}")
            if name == "stagewise":  # as served right after the ingest, before waiting
                got, lat = one_client(eng.querier(), qv[:100], qc[:100])
                rec["before_build"] = {
                    "latency": lat,
                    "recall@10": round(recall_at_k(got, truth[:100].tolist()), 4),
                    "index_state": eng.index_state(),
                }
                log(f"  as served before the build: {rec['before_build']['latency']}")
            rec["ready"] = eng.ready()
            log(f"  ready: {rec['ready']}")
            rec["rss_mb_after_ingest"] = round(eng.rss() / 2**20, 1)
            result["engines"][name] = rec
            if name == "lancedb":  # the same index, candidates re-ranked by full vectors
                engines[REFINED] = eng.variant(REFINED, REFINE_FACTOR)
                result["engines"][REFINED] = {
                    "ingest": rec["ingest"],
                    "note": f"lancedb's table and index, refine_factor={REFINE_FACTOR}",
                }
        engines["exact"] = exact
        result["engines"]["exact"] = {}
        for r in range(args.rounds):
            for name, eng in engines.items():
                out = query_round(eng, qv, qc, truth, args)
                result["engines"][name].setdefault("rounds", []).append(out)
                log(
                    f"round {r + 1} {name}: p50 {out['p50_ms']} ms, qps {out.get('qps_16')}, "
                    f"recall {out['recall@10']}, load {out['load_average']}"
                )
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    finally:
        for eng in engines.values():
            if hasattr(eng, "close"):
                eng.close()
        shutil.rmtree(root, ignore_errors=True)
    result["load_average_end"] = load_average()
    result["versions"] = versions()
    summarise(result)
    out = args.out or RESULTS_DIR / f"peers-n{args.n}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(report(result))
    print(f"results: {out}")
    return 0


def ready_seconds(name: str, rec: dict[str, Any]) -> float | None:
    """Seconds from the first document sent to an index over all of them: Stagewise's ingest
    plus its wait for the background build, Chroma's ingest (it indexes as it adds), LanceDB's
    table creation plus both index builds."""
    ingest, ready = rec.get("ingest") or {}, rec.get("ready") or {}
    if "seconds" not in ingest or name == "lancedb_refine":
        return None
    extra = ready.get("seconds_waited", 0.0) + ingest.get("vector_index_seconds", 0.0)
    return round(ingest["seconds"] + extra + ingest.get("scalar_index_seconds", 0.0), 1)


def summarise(result: dict[str, Any]) -> None:
    """Medians over rounds, ratios to each peer and to the floor, into `result`."""
    figures: dict[str, dict[str, float | None]] = {}
    for name, rec in result["engines"].items():
        keys = ("p50_ms", "p99_ms", "qps_16", "rss_mb", "recall@10")
        med = median_rounds([{k: x.get(k) for k in keys} for x in rec["rounds"]])
        med["ingest_docs_per_s"] = (rec.get("ingest") or {}).get("docs_per_s")
        med["indexed_after_s"] = ready_seconds(name, rec)
        figures[name] = med
    result["medians"] = figures
    result["ratios"] = ratio_table(figures)
    result["p50_over_exact"] = floor_ratios(figures)


def report(result: dict[str, Any]) -> str:
    rounds = len(result["engines"]["exact"]["rounds"])
    lines = [
        f"N={result['n']:,}, {result['queries']} queries x {rounds} rounds, "
        f"{result['clients']} clients x {result['duration_s']} s, load average "
        f"{result['load_average_start']} -> {result['load_average_end']}",
        markdown(result["medians"], LABELS),
    ]
    before = result["engines"].get("stagewise", {}).get("before_build")
    if before:
        lines.append(
            f"Stagewise as served right after the ingest (build pending or running): p50 "
            f"{before['latency']['p50']} ms, recall@10 {before['recall@10']} over 100 queries"
        )
    return "\n".join(lines)


def versions() -> dict[str, str | None]:
    from importlib import metadata

    from bench.peers_engines import CHROMA_VENV

    out: dict[str, str | None] = {}
    for pkg in ("lancedb", "qdrant-edge-py", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    dists = sorted(CHROMA_VENV.glob("lib/python*/site-packages/chromadb-*.dist-info"))
    out["chromadb (server venv)"] = (
        dists[0].name.removeprefix("chromadb-").removesuffix(".dist-info") if dists else None
    )
    return out


if __name__ == "__main__":
    sys.exit(main())
