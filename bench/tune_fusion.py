"""Fusion tuned from judged queries on BEIR-layout collections (cranfield, vaswani), issue 15.

For each collection: ingest it as bench/quality.py does (the server embeds with MiniLM), run
every judged query once through a dense-only and a BM25-only retriever (top_k DEPTH each,
through POST /v1/retrievers/{id}/execute), then run stagewise.tuning offline: split the
queries half and half (seeded, by id), pick the fusion with the best nDCG@10 on the tune half,
and report it and the baseline (rrf k=60, top_k 100 per source) on both halves.

    python -m bench.tune_fusion [--collections cranfield,vaswani] [--data-dir DIR]
                                [--eval-dir DIR] [--out FILE] [--seed N]

Exit status: 0 when every measurement ran, 1 on errors; the gain never changes it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    Api,
    BenchError,
    ensure_namespace,
    git_revision,
    machine_info,
    start_server,
)
from bench.quality import (
    NAMESPACE,
    TOP_K,
    EvalSet,
    beir_id,
    default_eval_dir,
    ensure_collection,
    execute_documents,
    load_eval_set,
    search_config,
)
from stagewise.eval_metrics import mean, ndcg_at_k
from stagewise.pipeline.fusion import RRF_K
from stagewise.tuning import FusionConfig, Scores, TuneResult, tune

DEPTH = 200  # the deepest per-source top_k the grid searches
SOURCES = ("bm25", "dense")

Lists = dict[str, dict[str, list[tuple[str, float]]]]


def _create_search_retriever(api: Api, ev: EvalSet, label: str, parameters: dict[str, Any]) -> str:
    """A one-stage feature_search retriever over the collection, taking `query` as text."""
    created = api.post(
        "/v1/retrievers",
        json={
            "retriever_name": f"tune-{ev.name}-{label}-{uuid.uuid4().hex[:8]}",
            "collection_identifiers": [ev.name],
            "input_schema": {"query": {"type": "text", "required": True}},
            "stages": [
                {
                    "stage_name": "search",
                    "config": {"stage_id": "feature_search", "parameters": parameters},
                }
            ],
        },
    )
    return str(created["retriever_id"])


def collect_lists(
    api: Api, ev: EvalSet, log: Callable[[str], None]
) -> tuple[Lists, dict[str, str]]:
    """Per query, each source's (document id, raw score) best first; and document id -> BEIR id."""
    lists: Lists = {qid: {} for qid, _ in ev.queries}
    to_beir: dict[str, str] = {}
    for source in SOURCES:
        rid = _create_search_retriever(
            api,
            ev,
            source,
            {"searches": [search_config(source == "bm25", DEPTH)], "final_top_k": DEPTH},
        )
        try:
            for i, (qid, text) in enumerate(ev.queries, 1):
                docs, _, _ = execute_documents(api, rid, text, DEPTH)
                hits = []
                for d in docs:
                    to_beir[str(d["document_id"])] = beir_id(d)
                    hits.append((str(d["document_id"]), float(d["score"])))
                lists[qid][source] = hits
                if i % 100 == 0:
                    log(f"[{ev.name}] {source}: {i}/{len(ev.queries)} queries")
        finally:
            api.delete(f"/v1/retrievers/{rid}")
    return lists, to_beir


def served_ndcg(
    api: Api, ev: EvalSet, config: FusionConfig, queries: Sequence[str]
) -> float | None:
    """`config` run as a hybrid retriever through the server, mean nDCG@10 over `queries`;
    None when the stage cannot run it (its rrf k is fixed at RRF_K)."""
    if config.method == "rrf" and config.k != RRF_K:
        return None
    searches = [
        {**search_config(name == "bm25", top_k), "weight": weight}
        for name, weight, top_k in zip(SOURCES, config.weights, config.top_ks, strict=True)
    ]
    rid = _create_search_retriever(
        api,
        ev,
        "check",
        {"searches": searches, "fusion": config.method, "final_top_k": TOP_K},
    )
    text = dict(ev.queries)
    try:
        scores = []
        for qid in queries:
            docs, _, _ = execute_documents(api, rid, text[qid], TOP_K)
            scores.append(ndcg_at_k([beir_id(d) for d in docs], ev.qrels[qid], 10))
    finally:
        api.delete(f"/v1/retrievers/{rid}")
    return mean(scores)


def qrels_by_document_id(ev: EvalSet, to_beir: dict[str, str]) -> dict[str, dict[str, float]]:
    """The qrels keyed by Stagewise document id (the key the stage breaks ties on)."""
    to_doc = {b: d for d, b in to_beir.items()}
    return {
        qid: {to_doc.get(b, f"beir:{b}"): float(g) for b, g in ev.qrels[qid].items()}
        for qid, _ in ev.queries
    }


def _scores(s: Scores) -> dict[str, Any]:
    return {
        "ndcg@10": round(s.ndcg, 4),
        "recall@100": round(s.recall, 4),
        "map": round(s.map, 4),
        "mrr": round(s.mrr, 4),
        "queries": s.queries,
    }


def summarise(r: TuneResult) -> dict[str, Any]:
    return {
        "baseline": r.baseline.describe(r.sources),
        "pick": r.pick.describe(r.sources),
        "picked_baseline": r.pick == r.baseline,
        "grid_points": r.searched,
        "baseline_tune": _scores(r.baseline_tune),
        "baseline_test": _scores(r.baseline_test),
        "pick_tune": _scores(r.pick_tune),
        "pick_test": _scores(r.pick_test),
        "test_gain_ndcg@10": round(r.test_gain, 4),
        "top_on_tune": [
            {"fusion": c.describe(r.sources), "ndcg@10": round(v, 4)} for c, v in r.top
        ],
    }


def _fmt(value: float | None) -> str:
    return "not runnable" if value is None else f"{value:.4f}"


def format_table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| collection | baseline test nDCG@10 | picked fusion | picked test nDCG@10 | test gain "
        "| baseline / picked tune nDCG@10 | picked test Recall@100 / MAP / MRR "
        "| served test nDCG@10 (baseline / pick) |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in results.items():
        pt = s["pick_test"]
        served = s.get("served_test_ndcg@10") or {}
        lines.append(
            f"| {name} | {s['baseline_test']['ndcg@10']:.4f} | {s['pick']} | "
            f"{pt['ndcg@10']:.4f} | {s['test_gain_ndcg@10']:+.4f} | "
            f"{s['baseline_tune']['ndcg@10']:.4f} / {s['pick_tune']['ndcg@10']:.4f} | "
            f"{pt['recall@100']:.4f} / {pt['map']:.4f} / {pt['mrr']:.4f} | "
            f"{_fmt(served.get('baseline'))} / {_fmt(served.get('pick'))} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.tune_fusion", description=__doc__.split("\n")[0]
    )
    p.add_argument("--collections", default="cranfield,vaswani", help="comma-separated names")
    p.add_argument("--data-dir", type=Path, default=None, help="server data dir, kept and reused")
    p.add_argument("--eval-dir", type=Path, default=None, help="BEIR-layout collections")
    p.add_argument("--out", type=Path, default=None, help="JSON results")
    p.add_argument("--seed", type=int, default=0, help="seed of the tune/test split")
    p.add_argument("--workers", type=int, default=4, help="concurrent ingestion clients")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    cli_args = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(cli_args)

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)

    names = [n for n in args.collections.split(",") if n]
    out = args.out or REPO_ROOT / "bench" / "results" / "tune_fusion.json"
    temp_dir = None if args.data_dir else Path(tempfile.mkdtemp(prefix="stagewise-tune-"))
    data_dir = args.data_dir or temp_dir
    assert data_dir is not None
    started = datetime.now(UTC)
    results: dict[str, dict[str, Any]] = {}
    failed = False
    try:
        sets = [load_eval_set(args.eval_dir or default_eval_dir(), n) for n in names]
        key = f"bench-{uuid.uuid4().hex}"
        with start_server(data_dir, admin_key=key) as server:
            with Api(server.base_url, key) as admin:
                ensure_namespace(admin, NAMESPACE)
            for ev in sets:
                ensure_collection(server.base_url, key, ev, args.workers, log)
                with Api(server.base_url, key, NAMESPACE) as api:
                    lists, to_beir = collect_lists(api, ev, log)
                t0 = time.perf_counter()
                r = tune(
                    lists,
                    qrels_by_document_id(ev, to_beir),
                    SOURCES,
                    default_top_k=TOP_K,
                    seed=args.seed,
                )
                results[ev.name] = summarise(r) | {
                    "tune_seconds": round(time.perf_counter() - t0, 1)
                }
                log(f"[{ev.name}] picked {results[ev.name]['pick']}; running it on the server")
                with Api(server.base_url, key, NAMESPACE) as api:
                    served = {
                        "baseline": served_ndcg(api, ev, r.baseline, r.test_queries),
                        "pick": served_ndcg(api, ev, r.pick, r.test_queries),
                    }
                results[ev.name]["served_test_ndcg@10"] = {
                    k: None if v is None else round(v, 4) for k, v in served.items()
                }
    except BenchError as exc:
        log(f"ERROR: {exc}")
        failed = True
    finally:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
    if results:
        report = {
            "date": started.isoformat(timespec="seconds"),
            "command": " ".join(["python -m bench.tune_fusion", *cli_args]),
            "machine": machine_info(),
            "git": git_revision(),
            "depth": DEPTH,
            "seed": args.seed,
            "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
            "collections": results,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(format_table(results))
        print(f"results: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
