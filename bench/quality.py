"""Ranking quality through the HTTP API on BEIR-layout collections (cranfield, vaswani).

For each collection: ingest every document with POST /v1/collections/{name}/documents (the
server embeds the text), create four retrievers (lexical BM25, dense MiniLM, RRF hybrid,
hybrid + rerank), run every judged query through POST /v1/retrievers/{id}/execute and compute
nDCG@10 (trec_eval `ndcg_cut.10`: graded gain, log2 discount, ideal from all judged relevant
documents) and Recall@100, plus client-side query latency.

    python -m bench.quality [--collections cranfield,vaswani] [--data-dir DIR]
                            [--eval-dir DIR] [--out FILE] [--quick] [--self-test]

Exit status: 0 when every measurement ran, 1 on errors (HTTP errors, missing data, a retriever
that failed); quality numbers never change it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    Api,
    ApiError,
    BenchError,
    ensure_namespace,
    git_revision,
    machine_info,
    start_server,
)
from stagewise.eval_metrics import dcg, ndcg_at_k, recall_at_k

FEATURE_URI = "mixpeek://text_extractor@v1/all_minilm_l6_v2"
NAMESPACE = "bench-quality"
TOP_K = 100
NDCG_K = 10
RECALL_K = 100
QUICK_QUERIES = 50
RERANK_CANDIDATES = 50
QUICK_RERANK_CANDIDATES = 20  # the MiniLM max-sim rerank costs ~0.1 s per document on 2 CPUs
RETRIEVERS = ("lexical", "dense", "hybrid", "hybrid_rerank")
# Reference BM25 nDCG@10 from /work/shared/eval/README.md (a floor: more than 0.01 below is a
# regression).
REFERENCE_BM25 = {"cranfield": 0.373, "vaswani": 0.428}
BM25_TOLERANCE = 0.01

Judgments = Mapping[str, int]  # doc id -> graded gain

# ---------------------------------------------------------------------------------------------
# metrics (pure)


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100), as numpy's default."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Iterable[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else float("nan")


def self_test() -> int:
    """Metric checks against hand-computed values; returns the number of failures."""
    failures = 0

    def check(name: str, got: float | None, want: float | None) -> None:
        nonlocal failures
        ok = (got is None and want is None) or (
            got is not None and want is not None and abs(got - want) < 1e-6
        )
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: got {got}, want {want}")
        failures += 0 if ok else 1

    # d1 (gain 3) at rank 1, d3 (gain 2) at rank 3, d5 (gain 1) not retrieved, d9 judged 0.
    ranking = ["d1", "d2", "d3", "d4", "d1"]
    judged = {"d1": 3, "d3": 2, "d5": 1, "d9": 0}
    # DCG@10 = 3/log2(2) + 2/log2(4) = 3 + 1 = 4
    # IDCG@10 = 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.2618595 + 0.5 = 4.7618595
    check("dcg([3,0,2])", dcg([3, 0, 2]), 4.0)
    check("ndcg@10", ndcg_at_k(ranking, judged, 10), 4.0 / 4.7618595071429155)
    # @2: DCG = 3; IDCG = 3 + 2/log2(3) = 4.2618595
    check("ndcg@2", ndcg_at_k(ranking, judged, 2), 3.0 / 4.2618595071429155)
    check("ndcg@1", ndcg_at_k(ranking, judged, 1), 1.0)
    check("ndcg, nothing relevant retrieved", ndcg_at_k(["x", "y"], judged, 10), 0.0)
    check("ndcg, no relevant judgments", ndcg_at_k(ranking, {"d1": 0}, 10), None)
    check("recall@100", recall_at_k(ranking, judged, 100), 2 / 3)
    check("recall@2", recall_at_k(ranking, judged, 2), 1 / 3)
    # A repeated id is dropped, so d3 moves up to rank 2.
    check("recall@2, duplicates dropped", recall_at_k(["d1", "d1", "d3"], judged, 2), 2 / 3)
    check("recall, no relevant judgments", recall_at_k(ranking, {}, 100), None)
    check("p50 even", percentile([4, 1, 3, 2], 50), 2.5)
    check("p50 odd", percentile([5, 1, 3], 50), 3.0)
    check("p95", percentile(list(range(1, 101)), 95), 95.05)
    print("self-test:", "passed" if failures == 0 else f"{failures} failure(s)")
    return failures


# ---------------------------------------------------------------------------------------------
# data


@dataclass
class EvalSet:
    name: str
    docs: list[tuple[str, str]]  # (beir id, text)
    queries: list[tuple[str, str]]  # (query id, text), only queries with relevant judgments
    qrels: dict[str, dict[str, int]]
    skipped_queries: int = 0


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise BenchError(f"{path}:{n}: not JSON: {exc}") from exc


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().split()
        if header[:2] != ["query-id", "corpus-id"]:
            raise BenchError(f"{path}: expected the header 'query-id corpus-id score'")
        for n, line in enumerate(fh, 2):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise BenchError(f"{path}:{n}: expected 3 columns, got {line!r}")
            qid, did, score = parts
            qrels.setdefault(qid, {})[did] = int(float(score))
    return qrels


def load_eval_set(eval_dir: Path, name: str, max_queries: int | None = None) -> EvalSet:
    root = eval_dir / name
    candidates = (root / "corpus.jsonl", root / "corpus.jsonl.gz")
    corpus = next((p for p in candidates if p.exists()), None)
    for needed in (corpus, root / "queries.jsonl", root / "qrels.tsv"):
        if needed is None or not needed.exists():
            raise BenchError(f"missing data for '{name}': {needed or root / 'corpus.jsonl[.gz]'}")
    assert corpus is not None
    docs: list[tuple[str, str]] = []
    for row in _read_jsonl(corpus):
        text = f"{row.get('title') or ''} {row.get('text') or ''}".strip()
        docs.append((str(row["_id"]), text))
    if len({d for d, _ in docs}) != len(docs):
        raise BenchError(f"{corpus}: duplicate _id values")
    qrels = load_qrels(root / "qrels.tsv")
    queries: list[tuple[str, str]] = []
    skipped = 0
    for row in _read_jsonl(root / "queries.jsonl"):
        qid = str(row["_id"])
        if not any(g > 0 for g in qrels.get(qid, {}).values()):
            skipped += 1
            continue
        queries.append((qid, str(row["text"])))
    if max_queries is not None:
        queries = queries[:max_queries]
    if not docs or not queries:
        raise BenchError(f"'{name}': no documents or no judged queries")
    return EvalSet(name, docs, queries, qrels, skipped)


# ---------------------------------------------------------------------------------------------
# server side: collection, documents, retrievers


def ensure_collection(
    base_url: str, key: str, ev: EvalSet, workers: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """The collection with every document of `ev`; reused when a previous run completed it."""
    with Api(base_url, key, NAMESPACE) as api:
        try:
            api.get(f"/v1/collections/{ev.name}")
            count = api.get(f"/v1/collections/{ev.name}/documents/count")["count"]
            if count == len(ev.docs):
                log(f"[{ev.name}] reusing the collection ({count} documents)")
                return {"reused": True, "documents": count}
            log(f"[{ev.name}] incomplete collection ({count}/{len(ev.docs)}): recreating")
            api.delete(f"/v1/collections/{ev.name}")
        except ApiError as exc:
            if exc.status != 404:
                raise
        api.post(
            "/v1/collections",
            json={
                "collection_name": ev.name,
                "source": {"type": "direct_upsert"},
                "feature_extractor": {"feature_extractor_name": "text_extractor", "version": "v1"},
            },
        )
    local = threading.local()
    clients: list[Api] = []
    clients_lock = threading.Lock()
    done = 0

    def create(doc: tuple[str, str]) -> None:
        nonlocal done
        api = getattr(local, "api", None)
        if api is None:
            api = local.api = Api(base_url, key, NAMESPACE)
            with clients_lock:
                clients.append(api)
        beir_id, text = doc
        api.post(
            f"/v1/collections/{ev.name}/documents",
            json={"text": text, "metadata": {"beir_id": beir_id}},
        )
        with clients_lock:
            done += 1
            if done % 1000 == 0:
                log(f"[{ev.name}] ingested {done}/{len(ev.docs)}")

    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(create, ev.docs))  # re-raises the first failure
    finally:
        for api in clients:
            api.close()
    seconds = time.perf_counter() - start
    with Api(base_url, key, NAMESPACE) as api:
        count = api.get(f"/v1/collections/{ev.name}/documents/count")["count"]
    if count != len(ev.docs):
        raise BenchError(f"[{ev.name}] {count} documents stored, expected {len(ev.docs)}")
    log(f"[{ev.name}] ingested {count} documents in {seconds:.0f} s ({count / seconds:.0f}/s)")
    return {
        "reused": False,
        "documents": count,
        "seconds": round(seconds, 1),
        "docs_per_second": round(count / seconds, 1),
        "workers": workers,
    }


def search_config(lexical: bool, top_k: int = TOP_K) -> dict[str, Any]:
    """One feature_search search over the MiniLM feature (BM25 over its text when lexical)."""
    search: dict[str, Any] = {
        "feature_uri": FEATURE_URI,
        "query": {"input_mode": "text", "value": "{{INPUT.query}}"},
        "top_k": top_k,
    }
    if lexical:
        search["lexical"] = True
    return search


def retriever_stages(kind: str, rerank_candidates: int) -> list[dict[str, Any]]:
    searches = {
        "lexical": [search_config(True)],
        "dense": [search_config(False)],
        "hybrid": [search_config(True), search_config(False)],
        "hybrid_rerank": [search_config(True), search_config(False)],
    }[kind]
    params: dict[str, Any] = {"searches": searches, "final_top_k": TOP_K}
    if len(searches) > 1:
        params["fusion"] = "rrf"
    stages: list[dict[str, Any]] = [
        {
            "stage_name": "search",
            "config": {"stage_id": "feature_search", "parameters": params},
        }
    ]
    if kind == "hybrid_rerank":
        stages.append(
            {
                "stage_name": "rerank",
                "config": {
                    "stage_id": "rerank",
                    "parameters": {
                        "query": "{{INPUT.query}}",
                        "document_field": "text",
                        "max_candidates": rerank_candidates,
                    },
                },
            }
        )
    return stages


@dataclass
class RunResult:
    kind: str
    ndcg: dict[str, float | None] = field(default_factory=dict)
    recall: dict[str, float | None] = field(default_factory=dict)
    latency_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    warnings: set[str] = field(default_factory=set)
    stage_metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        out: dict[str, Any] = {
            "ndcg@10": round(mean(self.ndcg.values()), 4),
            "recall@100": round(mean(self.recall.values()), 4),
            "queries": len(self.ndcg),
            "latency_ms_p50": round(percentile(self.latency_ms, 50), 1),
            "latency_ms_p95": round(percentile(self.latency_ms, 95), 1),
            "server_ms_p50": round(percentile(self.server_ms, 50), 1) if self.server_ms else None,
        }
        if self.warnings:
            out["warnings"] = sorted(self.warnings)
        if self.stage_metadata:
            out["stage_metadata"] = self.stage_metadata
        return out


def execute_documents(
    api: Api, rid: str, query: str, limit: int = TOP_K
) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    """The first `limit` documents of one execution, its first response and the wall time (ms)."""
    body: dict[str, Any] = {
        "inputs": {"query": query},
        "pagination": {"method": "cursor", "limit": limit},
        "skip_cache": True,
    }
    start = time.perf_counter()
    first = page = api.post(f"/v1/retrievers/{rid}/execute", json=body)
    elapsed_ms = (time.perf_counter() - start) * 1000
    docs: list[dict[str, Any]] = []
    while True:
        if page.get("status") != "completed" or page.get("error"):
            raise BenchError(
                f"execution {page.get('execution_id')} status={page.get('status')} "
                f"error={page.get('error')}"
            )
        docs.extend(page.get("documents") or [])
        cursor = (page.get("pagination") or {}).get("cursor")
        if len(docs) >= limit or not cursor:
            break
        body["pagination"] = {"method": "cursor", "limit": limit, "cursor": cursor}
        page = api.post(f"/v1/retrievers/{rid}/execute", json=body)
    return docs[:limit], first, elapsed_ms


def beir_id(doc: dict[str, Any]) -> str:
    found = (doc.get("metadata") or {}).get("beir_id")
    if found is None:
        raise BenchError(f"a result has no metadata.beir_id: {json.dumps(doc)[:500]}")
    return str(found)


def execute_query(api: Api, rid: str, query: str) -> tuple[list[str], dict[str, Any], float]:
    """The ranked BEIR ids of one execution, its first response and the wall time (ms)."""
    docs, first, elapsed_ms = execute_documents(api, rid, query, TOP_K)
    return [beir_id(d) for d in docs], first, elapsed_ms


def _stage_meta(response: dict[str, Any], stage_name: str) -> dict[str, Any]:
    stages = (response.get("stage_statistics") or {}).get("stages") or {}
    if isinstance(stages, dict):  # keyed by stage name
        found = stages.get(stage_name)
    else:
        found = next((s for s in stages if s.get("stage_name") == stage_name), None)
    meta = found.get("metadata") if isinstance(found, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def run_retriever(
    api: Api, ev: EvalSet, kind: str, rerank_candidates: int, log: Callable[[str], None]
) -> RunResult:
    result = RunResult(kind)
    name = f"quality-{ev.name}-{kind}-{uuid.uuid4().hex[:8]}"
    try:
        created = api.post(
            "/v1/retrievers",
            json={
                "retriever_name": name,
                "collection_identifiers": [ev.name],
                "input_schema": {"query": {"type": "text", "required": True}},
                "stages": retriever_stages(kind, rerank_candidates),
            },
        )
    except BenchError as exc:
        result.error = f"could not create the retriever: {exc}"
        log(f"[{ev.name}] {kind}: {result.error}")
        return result
    rid = created["retriever_id"]
    try:
        execute_query(api, rid, ev.queries[0][1])  # warm-up, not timed
        for i, (qid, text) in enumerate(ev.queries, 1):
            ids, response, ms = execute_query(api, rid, text)
            result.ndcg[qid] = ndcg_at_k(ids, ev.qrels[qid])
            result.recall[qid] = recall_at_k(ids, ev.qrels[qid])
            result.latency_ms.append(ms)
            server_ms = (response.get("stage_statistics") or {}).get("total_time_ms")
            if isinstance(server_ms, int | float):
                result.server_ms.append(float(server_ms))
            result.warnings.update(str(w) for w in response.get("warnings") or [])
            if kind == "hybrid_rerank" and not result.stage_metadata:
                meta = _stage_meta(response, "rerank")
                keep = ("scorer", "inference_name", "scored")
                result.stage_metadata = {k: meta[k] for k in keep if k in meta}
            if i % 50 == 0:
                log(f"[{ev.name}] {kind}: {i}/{len(ev.queries)} queries")
    except BenchError as exc:
        result.error = str(exc)
        log(f"[{ev.name}] {kind}: FAILED: {exc}")
    finally:
        try:
            api.delete(f"/v1/retrievers/{rid}")
        except BenchError as exc:
            log(f"[{ev.name}] {kind}: could not delete retriever {rid}: {exc}")
    return result


# ---------------------------------------------------------------------------------------------
# report


def format_table(results: dict[str, dict[str, Any]]) -> str:
    header = (
        "| collection | retriever | nDCG@10 | Recall@100 | p50 latency (ms) | p95 (ms) | queries |"
    )
    lines = [header, "|---|---|---:|---:|---:|---:|---:|"]
    for col, entry in results.items():
        for kind, s in entry["retrievers"].items():
            if "error" in s:
                lines.append(f"| {col} | {kind} | not measured: {s['error'][:80]} | | | | |")
                continue
            lines.append(
                f"| {col} | {kind} | {s['ndcg@10']:.4f} | {s['recall@100']:.4f} | "
                f"{s['latency_ms_p50']:.1f} | {s['latency_ms_p95']:.1f} | {s['queries']} |"
            )
    return "\n".join(lines)


def default_eval_dir() -> Path:
    env = os.environ.get("STAGEWISE_EVAL_DIR")
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "eval").resolve()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n")[0])
    p.add_argument("--collections", default="cranfield,vaswani", help="comma-separated names")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="server data dir, kept and reused (default: a temporary dir, removed afterwards)",
    )
    p.add_argument(
        "--eval-dir",
        type=Path,
        default=None,
        help="BEIR-layout collections (default: $STAGEWISE_EVAL_DIR, else ../shared/eval)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON results (default: bench/results/quality.json; quality-quick.json with --quick)",
    )
    p.add_argument("--quick", action="store_true", help=f"cranfield, first {QUICK_QUERIES} queries")
    p.add_argument("--workers", type=int, default=4, help="concurrent ingestion clients")
    p.add_argument(
        "--rerank-candidates",
        type=int,
        default=None,
        help=f"max_candidates of the rerank stage (default {RERANK_CANDIDATES}; "
        f"{QUICK_RERANK_CANDIDATES} with --quick)",
    )
    p.add_argument("--self-test", action="store_true", help="check the metric functions and exit")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    cli_args = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(cli_args)
    if args.self_test:
        return 1 if self_test() else 0

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)

    names = ["cranfield"] if args.quick else [n for n in args.collections.split(",") if n]
    max_queries = QUICK_QUERIES if args.quick else None
    if args.rerank_candidates is None:
        args.rerank_candidates = QUICK_RERANK_CANDIDATES if args.quick else RERANK_CANDIDATES
    eval_dir = args.eval_dir or default_eval_dir()
    out = args.out or REPO_ROOT / "bench" / "results" / (
        "quality-quick.json" if args.quick else "quality.json"
    )
    temp_dir = None if args.data_dir else Path(tempfile.mkdtemp(prefix="stagewise-quality-"))
    data_dir = args.data_dir or temp_dir
    assert data_dir is not None
    started = datetime.now(UTC)
    results: dict[str, dict[str, Any]] = {}
    failed = False
    try:
        sets = [load_eval_set(eval_dir, n, max_queries) for n in names]
        key = f"bench-{uuid.uuid4().hex}"
        log(f"starting the server (data dir {data_dir})")
        with start_server(data_dir, admin_key=key) as server:
            try:
                with Api(server.base_url, key) as admin:
                    ensure_namespace(admin, NAMESPACE)
                for ev in sets:
                    ingest = ensure_collection(server.base_url, key, ev, args.workers, log)
                    entry: dict[str, Any] = {
                        "documents": len(ev.docs),
                        "queries": len(ev.queries),
                        "queries_without_relevant_judgments": ev.skipped_queries,
                        "ingest": ingest,
                        "retrievers": {},
                    }
                    with Api(server.base_url, key, NAMESPACE) as api:
                        for kind in RETRIEVERS:
                            log(f"[{ev.name}] {kind}: {len(ev.queries)} queries")
                            r = run_retriever(api, ev, kind, args.rerank_candidates, log)
                            failed |= r.error is not None
                            entry["retrievers"][kind] = r.summary()
                            entry.setdefault("per_query", {})[kind] = {
                                "ndcg@10": r.ndcg,
                                "recall@100": r.recall,
                            }
                    ref = REFERENCE_BM25.get(ev.name)
                    lex = entry["retrievers"].get("lexical", {})
                    if ref is not None and "ndcg@10" in lex and not args.quick:
                        entry["bm25_reference_ndcg@10"] = ref
                        entry["bm25_within_tolerance"] = lex["ndcg@10"] >= ref - BM25_TOLERANCE
                    results[ev.name] = entry
            except BenchError:
                log("server log tail:\n" + server.log_tail())
                raise
    except BenchError as exc:
        log(f"ERROR: {exc}")
        failed = True
    finally:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
    if results:
        report = {
            "date": started.isoformat(timespec="seconds"),
            "command": " ".join(["python -m bench.quality", *cli_args]),
            "machine": machine_info(),
            "git": git_revision(),
            "quick": args.quick,
            "rerank_max_candidates": args.rerank_candidates,
            "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
            "collections": results,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(format_table(results))
        for name, entry in results.items():
            if "bm25_reference_ndcg@10" in entry:
                verdict = "ok" if entry["bm25_within_tolerance"] else "BELOW the reference floor"
                lex = entry["retrievers"]["lexical"]["ndcg@10"]
                print(
                    f"{name}: BM25 nDCG@10 {lex:.4f} vs reference "
                    f"{entry['bm25_reference_ndcg@10']:.3f}: {verdict}"
                )
        print(f"results: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
