"""Filtered dense search after the background HNSW build, over HTTP: recall@10 against exact
filtered search, and latency, whatever the filter's origin.

    python -m bench.filter_recall [--n 100000] [--queries 200] [--out FILE]

N clustered 384-d vectors (bench/generate.py), BYO-upserted with the integers
``metadata.cat = i % 10`` and ``metadata.shard = (i // 10) % 10`` (each value 10%). The
retrievers exist before the data, as a user would have them, so the payload indexes their
filters ask for exist before HNSW is built; no stage filters ``metadata.shard``, so it has no
index. The server (a child process) builds HNSW by itself once all N points are in; then, each
query filtering on ``query index % 10``, with ``skip_cache``:

- (a)  a retriever whose feature_search pre-filter is ``metadata.cat == {{INPUT.c}}``;
- (a') the same with a literal value (one retriever per value);
- (b)  a retriever without pre-filters, executed with ``filters`` on ``metadata.shard``;
- (c)  the same retriever with an execute-time templated filter ``metadata.cat == {{INPUT.c}}``.

Per scenario: recall@10 against exact numpy top-10 over the matching rows, short pages,
documents without the value, wall p50/p99 (1 client), the filter paths the stage reports.
Baselines of the same run: numpy exact filtered search (one BLAS thread, over the matching
rows gathered in advance) and GET /v1/health. Exit status 1 when a scenario's recall@10 < 0.95,
a page is short or a document lacks the value (the gate); 2 when the run fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from bench.build_probe import exact_topk
from bench.common import BenchError, git_revision, machine_info, start_server
from bench.generate import Dataset, Spec
from bench.measure import (
    ADMIN_KEY,
    CACHE_DIR,
    RESULTS_DIR,
    UPSERT_BATCH,
    Client,
    K,
    completed,
    dist,
    load_average,
    log,
)
from bench.perf import floor_latency, health_p50, wait_for_background_build

NAMESPACE = "filtrecall"
COLLECTION = "pts"
FEATURE = "emb"
MIN_RECALL = 0.95
WARMUP = 20  # untimed executions per scenario (the new generation's pages come in)


# metadata field -> its value for document p<i> (arrays of i): 10 values, 10% each
FIELDS: dict[str, Callable[[Any], Any]] = {"cat": lambda i: i % 10, "shard": lambda i: i // 10 % 10}


def eq(path: str, value: Any) -> dict[str, Any]:
    return {"AND": [{"field": path, "operator": "eq", "value": value}]}


def retriever(name: str, pre_filters: dict[str, Any] | None = None) -> dict[str, Any]:
    query = {"input_mode": "vector", "value": "{{INPUT.v}}"}
    search = {"feature_uri": FEATURE, "top_k": K, "query": query}
    params = {"final_top_k": K, "searches": [search]}
    config: dict[str, Any] = {"stage_id": "feature_search", "parameters": params}
    if pre_filters is not None:
        config["pre_filters"] = pre_filters
    return {
        "retriever_name": name,
        "collection_identifiers": [COLLECTION],
        "input_schema": {"c": {"type": "integer"}, "v": {"type": "array"}},
        "stages": [{"stage_name": "search", "config": config}],
    }


RETRIEVERS = {
    "templated": retriever("templated", eq("metadata.cat", "{{INPUT.c}}")),
    "plain": retriever("plain"),
    **{f"literal{v}": retriever(f"literal{v}", eq("metadata.cat", v)) for v in range(10)},
}


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    field: str  # the filtered field, under metadata
    retriever: str  # a RETRIEVERS key; {v} stands for the filter value
    request: str | None = None  # an execute-time filter: "literal" or "templated"

    def values(self, n: int) -> NDArray[np.int64]:
        return FIELDS[self.field](np.arange(n))

    def body(self, v: int, vector: NDArray[np.float32]) -> dict[str, Any]:
        out: dict[str, Any] = {"skip_cache": True, "inputs": {"c": v, "v": vector}}
        if self.request is not None:
            value = v if self.request == "literal" else "{{INPUT.c}}"
            out["filters"] = eq(f"metadata.{self.field}", value)
        return out


SCENARIOS = (
    Scenario("a", "(a) templated pre-filter", "cat", "templated"),
    Scenario("a_literal", "(a') literal pre-filter", "cat", "literal{v}"),
    Scenario("b", "(b) execute-time filter, unindexed field", "shard", "plain", "literal"),
    Scenario("c", "(c) execute-time templated filter", "cat", "plain", "templated"),
)


def upsert_bodies(vectors: NDArray[np.float32]) -> Iterator[bytes]:
    """BYO upsert bodies of UPSERT_BATCH documents p<i>, with cat and shard."""
    for lo in range(0, len(vectors), UPSERT_BATCH):
        block = np.array(vectors[lo : lo + UPSERT_BATCH])  # a plain array, not a memory map
        docs = [
            {
                "document_id": f"p{i}",
                "vectors": {FEATURE: row},
                "metadata": {name: of(i) for name, of in FIELDS.items()},
            }
            for i, row in enumerate(block, start=lo)
        ]
        body = {"collection_id": COLLECTION, "documents": docs}
        yield orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def load(base_url: str, vectors: NDArray[np.float32]) -> tuple[str, dict[str, str]]:
    """Namespace, collection, RETRIEVERS (before any point), then every vector: returns the
    collection id and the retriever ids."""
    admin, client = Client(base_url, None), Client(base_url, NAMESPACE)
    try:
        configs = [{"name": FEATURE, "dimension": int(vectors.shape[1])}]
        body = {"namespace_name": NAMESPACE, "vector_configs": configs}
        admin.call("POST", "/v1/namespaces", body)
        body = {"collection_name": COLLECTION, "source": {"type": "direct_upsert"}}
        col, _ = client.call("POST", "/v1/collections", body)
        rids = {
            key: client.call("POST", "/v1/retrievers", spec)[0]["retriever_id"]
            for key, spec in RETRIEVERS.items()
        }
        for upsert in upsert_bodies(vectors):
            admin.send("POST", f"/v1/namespaces/{NAMESPACE}/documents/upsert", upsert)
    finally:
        admin.close()
        client.close()
    return str(col["collection_id"]), rids


def wait_built(base_url: str, collection_id: str, timeout: float) -> dict[str, Any]:
    """perf's wait for the background build, which must leave (nearly) every point in HNSW."""
    state = wait_for_background_build(base_url, collection_id, timeout)
    if state.get("timed_out") or state["unindexed_points_after"] >= 1000:
        raise BenchError(f"no HNSW over the collection within {timeout:.0f} s: {state}")
    return state


@dataclass
class Outcome:
    """One scenario's executions, per query: recall@10, wall ms, (value asked, the returned
    documents' values), the stage's filter report and the execution's warnings."""

    recall: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    values: list[tuple[int, list[Any]]] = field(default_factory=list)
    filters: list[Any] = field(default_factory=list)
    warnings: list[list[str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        reports = [f for f in self.filters if f]
        return {
            "recall@10": round(float(np.mean(self.recall)), 4),
            "recall@10_min": min(self.recall),
            "short_pages": sum(len(got) < K for _, got in self.values),
            "wrong_values": sum(x != asked for asked, got in self.values for x in got),
            "wall_ms": dist(self.ms),
            "paths": sorted({p for f in reports for ps in f["paths"].values() for p in ps}),
            "unindexed_fields": sorted({u for f in reports for u in f["unindexed_fields"]}),
        }

    def passed(self) -> bool:
        s = self.summary()
        return s["recall@10"] >= MIN_RECALL and not s["short_pages"] and not s["wrong_values"]


def run_scenario(
    base_url: str,
    rids: dict[str, str],
    sc: Scenario,
    vectors: NDArray[np.float32],
    queries: NDArray[np.float32],
) -> Outcome:
    """Execute each query once, filtering on the value (query index % 10), after WARMUP
    untimed executions; score each page against exact search over the matching rows."""
    values = sc.values(len(vectors))
    asked = np.arange(len(queries)) % 10
    truth = np.zeros((len(queries), K), dtype=np.int64)
    for v in range(10):
        truth[asked == v] = exact_topk(vectors, queries[asked == v], K, np.flatnonzero(values == v))
    client, out = Client(base_url, NAMESPACE), Outcome()

    def execute(i: int) -> tuple[dict[str, Any], float]:
        v = int(asked[i])
        rid = rids[sc.retriever.format(v=v)]
        answer, ms = client.call("POST", f"/v1/retrievers/{rid}/execute", sc.body(v, queries[i]))
        return completed(answer), ms

    try:
        for i in range(min(WARMUP, len(queries))):
            execute(i)
        for i in range(len(queries)):
            answer, ms = execute(i)
            docs = answer["documents"]
            out.ms.append(ms)
            out.values.append((int(asked[i]), [d["metadata"][sc.field] for d in docs]))
            hits = {d["document_id"] for d in docs}
            out.recall.append(len(hits & {f"p{j}" for j in truth[i]}) / K)
            out.filters.append(
                answer["stage_statistics"]["stages"]["search"]["metadata"].get("filter")
            )
            out.warnings.append(answer["warnings"])
    finally:
        client.close()
    return out


def table(result: dict[str, Any]) -> str:
    floor, health = result["floor_exact_filtered_ms"]["p50"], result["health_ms"]["p50"]
    lines = [
        f"N={result['n']:,}, {result['queries']} queries, 10% filters, HNSW swapped in "
        f"{result['build']['seconds_until_installed']} s after the ingest; baselines p50: numpy "
        f"exact filtered search {floor} ms, GET /v1/health {health} ms",
        "| scenario | recall@10 (min) | short pages | wrong values | p50 ms | p99 ms "
        "| p50 / exact | p50 / health | filter path | unindexed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for s in result["scenarios"].values():
        p50, p99 = s["wall_ms"]["p50"], s["wall_ms"]["p99"]
        lines.append(
            f"| {s['label']} | {s['recall@10']:.3f} ({s['recall@10_min']:.1f}) "
            f"| {s['short_pages']} | {s['wrong_values']} | {p50:.1f} | {p99:.1f} "
            f"| {p50 / floor:.1f}x | {p50 / health:.1f}x | {', '.join(s['paths'])} "
            f"| {', '.join(s['unindexed_fields'])} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.filter_recall", description=__doc__)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--build-timeout", type=float, default=1800.0, help="seconds")
    p.add_argument("--data-root", type=Path, default=RESULTS_DIR, help="where the data dir goes")
    p.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = p.parse_args(argv)
    ds = Dataset(Spec(args.n, args.seed))
    vectors = ds.vectors(CACHE_DIR)
    queries, _, _ = ds.queries(args.queries, seed=args.seed + 1)
    result: dict[str, Any] = {
        "benchmark": "stagewise filter recall",
        "command": " ".join(["python -m bench.filter_recall", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "git": git_revision(),
        "load_average_start": load_average(),
        "n": args.n,
        "queries": args.queries,
        "scenarios": {},
    }
    rows = np.flatnonzero(FIELDS["cat"](np.arange(args.n)) == 0)  # every value has the same share
    result["floor_exact_filtered_ms"] = floor_latency(np.ascontiguousarray(vectors[rows]), queries)
    args.data_root.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="filter-recall-", dir=args.data_root))
    env = {"STAGEWISE_INDEX_BUILD_MIN_POINTS": str(args.n), "STAGEWISE_INDEX_BUILD_POLL_S": "0.5"}
    outcomes: list[Outcome] = []
    try:
        with start_server(data_dir, admin_key=ADMIN_KEY, env=env) as server:
            log(f"N={args.n:,}: retrievers, then BYO ingest (HNSW built past {args.n:,} points)")
            collection_id, rids = load(server.base_url, vectors)
            log("waiting for the background HNSW build to swap in")
            result["build"] = wait_built(server.base_url, collection_id, args.build_timeout)
            result["health_ms"] = health_p50(server.base_url, 200)
            for sc in SCENARIOS:
                outcomes.append(run_scenario(server.base_url, rids, sc, vectors, queries))
                result["scenarios"][sc.key] = {"label": sc.label, **outcomes[-1].summary()}
                log(f"  {sc.label}: {result['scenarios'][sc.key]}")
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    result["load_average_end"] = load_average()
    out = args.out or RESULTS_DIR / f"filter-recall-n{args.n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(table(result))
    failed = [sc.label for sc, o in zip(SCENARIOS, outcomes, strict=True) if not o.passed()]
    for label in failed:
        print(f"GATE: {label}: recall@10 < {MIN_RECALL}, short pages or wrong values")
    print(f"results: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
