"""Probe Qdrant Edge shard configurations for the offline HNSW build of a large collection.

    python -m bench.build_probe --n 100000 --config baseline [--seg-points 200000]
    python -m bench.build_probe --list

One run builds one fresh shard under /tmp/build-probe/ with a named configuration variant
(VARIANTS below), the way the engine does it (storage/index/edge.py: one named dense vector,
the `_sparse` slot, the `_seq` / `document_id` / `_text` payload indexes, a keyword index on
`metadata.category`, the engine's payload layout, upserts of 1,000 points), from the
deterministic synthetic data of bench/generate.py. It then times `EdgeShard.optimize()`
(wall and process CPU time, so cores used; RSS before, peak (VmHWM after a reset) and after),
closes the shard, and measures serving in a fresh child process (`--serve`), so the numbers are
a server's and not inflated by the builder's numpy arrays: RSS right after `EdgeShard.load()`
and after the queries, recall@10 of dense and of dense + filter (``metadata.category`` == the
~9% value, as bench/perf.py) against exact numpy top-10 over 200 queries near cluster centres,
and single-query p50/p99 of dense, filtered dense and BM25 (`TextQuery`) queries.

Filtered queries also run once more with ACORN (`AcornSearchParams(enable=True)`).

It prints one JSON line per run (and appends it to /tmp/build-probe/results.jsonl).
Vectors and exact ground truth are cached under /tmp/build-probe/cache. `--keep` keeps the
shard; re-measure a kept shard with other search parameters by calling the serve phase:

    python -m bench.build_probe --serve /tmp/build-probe/shard-NAME-nN --config NAME \
        --truth /tmp/build-probe/cache/truth-...npz --hnsw-ef 64 [--oversampling 4]

What the probes showed (Qdrant Edge 0.9.0): the build cost is dominated by payload-aware
HNSW sub-graphs. Every payload index with `enable_hnsw` (the default) gets an extra graph per
"payload block": each `_text` token with enough postings, each `_seq` range block. Turning
`enable_hnsw` off on `_seq`, `document_id` and `_text`, and keeping it on the filtered keyword
fields (without their sub-graphs 9%-filtered recall falls to ~0.2), cuts the build ~3x.
int8 scalar quantization makes the build faster again (the graph is built on quantized
scores), and original vectors left on disk (Memory.Cold) halve serving RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from qdrant_edge import (
    AcornSearchParams,
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    HnswIndexConfig,
    IntegerIndexParams,
    KeywordIndexParams,
    Language,
    MatchValue,
    Memory,
    PayloadSchemaType,
    Point,
    QuantizationSearchParams,
    Query,
    QueryRequest,
    ScalarQuantizationConfig,
    ScalarType,
    SearchParams,
    SnowballLanguage,
    SnowballParams,
    TextIndexParams,
    TextQuery,
    TokenizerType,
    UpdateOperation,
)

from bench.generate import Dataset, Spec, selective_category
from stagewise.ids import point_id
from stagewise.storage.payload import SEQ_FIELD, TEXT_FIELD

ROOT = Path("/tmp/build-probe")
CACHE = ROOT / "cache"
RESULTS = ROOT / "results.jsonl"
VECTOR = "all_minilm_l6_v2"  # the feature name bench/perf.py ingests under
COLLECTION = "synth"
CATEGORY_FIELD = "metadata.category"
BATCH = 1000
K = 10
N_QUERIES = 200
WARMUP = 20

I64 = NDArray[np.int64]
F32 = NDArray[np.float32]


# ---------------------------------------------------------------------------------------------
# variants


@dataclass(frozen=True)
class Variant:
    """One shard configuration. Defaults are today's engine (ensure_collection + search)."""

    m: int = 16
    ef_construct: int = 128
    full_scan_threshold: int = 10_000  # KB of vectors
    max_indexing_threads: int = 0
    payload_m: int | None = None  # None: = m. 0: no payload-aware extra HNSW links at all
    hnsw_memory: str | None = None
    phrase_matching: bool = True
    # enable_hnsw of the engine's own indexes (_seq, document_id, _text); None: Qdrant default
    own_fields_hnsw: bool | None = None
    category_hnsw: bool | None = None  # None: PayloadSchemaType.Keyword as the engine does
    late_indexes: bool = False  # create _seq/document_id/_text after the bulk upsert
    # create the metadata.category index before the upsert (else after it, as a retriever
    # created after ingest does). An index created after a segment got its HNSW graph adds
    # no payload sub-graph to that segment: filtered recall there falls to that of no index.
    category_first: bool = False
    segment_number: int | None = None
    max_segment_points: int | None = None  # -> max_segment_size in KB of vectors
    indexing_threshold_kb: int | None = None
    payload_memory: str | None = None
    vector_memory: str | None = None
    quantize_int8: bool = False
    quant_memory: str = "pinned"
    # call optimize() after every this many upserted points (bounded segments: the Edge
    # optimizer never splits an appendable segment, so max_segment_size alone does not)
    optimize_every: int | None = None
    hnsw_ef: int = 128  # the engine: max(128, limit)
    oversampling: float | None = None
    notes: str = ""


VARIANTS: dict[str, Variant] = {
    "baseline": Variant(notes="today's ensure_collection"),
    "nophrase": Variant(phrase_matching=False),
    "threads": Variant(max_indexing_threads=2),
    "segcap": Variant(segment_number=2, max_segment_points=200_000),
    "ef64": Variant(ef_construct=64),
    "late": Variant(late_indexes=True),
    # no payload-aware HNSW sub-graphs for the engine's own fields (each _text token with
    # enough postings and each _seq range block otherwise gets an extra graph); the category
    # index keeps its sub-graphs (filtered recall)
    "nohnsw": Variant(own_fields_hnsw=False),
    "payloadm0": Variant(payload_m=0),
    "nohnsw_nocat": Variant(own_fields_hnsw=False, category_hnsw=False),
    "nohnsw_ef64": Variant(own_fields_hnsw=False, ef_construct=64),
    "nohnsw_late": Variant(own_fields_hnsw=False, late_indexes=True),
    "nohnsw_segcap": Variant(own_fields_hnsw=False, segment_number=2, max_segment_points=200_000),
    "nohnsw_ef64_chunk": Variant(
        own_fields_hnsw=False,
        ef_construct=64,
        optimize_every=250_000,
        segment_number=8,
        max_segment_points=250_000,
    ),
    "nohnsw_nophrase": Variant(own_fields_hnsw=False, phrase_matching=False),
    "nohnsw_cold": Variant(
        own_fields_hnsw=False, vector_memory="cold", payload_memory="cold", hnsw_memory="cached"
    ),
    "nohnsw_sq8": Variant(
        own_fields_hnsw=False,
        quantize_int8=True,
        vector_memory="cold",
        payload_memory="cold",
        oversampling=2.0,
    ),
    "nohnsw_ef64_sq8": Variant(
        own_fields_hnsw=False,
        ef_construct=64,
        quantize_int8=True,
        vector_memory="cold",
        payload_memory="cold",
        oversampling=2.0,
    ),
    "nohnsw_ef64_sq8_chunk": Variant(
        own_fields_hnsw=False,
        ef_construct=64,
        quantize_int8=True,
        vector_memory="cold",
        payload_memory="cold",
        oversampling=2.0,
        optimize_every=250_000,
        segment_number=8,
        max_segment_points=250_000,
    ),
    "nohnsw_ef64_sq8_chunk_cat": Variant(
        own_fields_hnsw=False,
        ef_construct=64,
        quantize_int8=True,
        vector_memory="cold",
        payload_memory="cold",
        oversampling=2.0,
        optimize_every=250_000,
        segment_number=8,
        max_segment_points=250_000,
        category_first=True,
    ),
    "nohnsw_sq8_cached": Variant(own_fields_hnsw=False, quantize_int8=True, oversampling=2.0),
}

_MEMORY = {"cold": Memory.Cold, "cached": Memory.Cached, "pinned": Memory.Pinned}


def _memory(name: str | None) -> Memory | None:
    return None if name is None else _MEMORY[name]


def text_index(v: Variant) -> TextIndexParams:
    """edge.bm25_text_index(), with the variant's phrase_matching and enable_hnsw."""
    return TextIndexParams(
        tokenizer=TokenizerType.Word,
        lowercase=True,
        stopwords=Language.English,
        stemmer=SnowballParams(SnowballLanguage.English),
        phrase_matching=v.phrase_matching,
        scoring=True,
        enable_hnsw=v.own_fields_hnsw,
    )


def own_indexes(v: Variant) -> list[tuple[str, Any]]:
    return [
        (SEQ_FIELD, IntegerIndexParams(lookup=False, range=True, enable_hnsw=v.own_fields_hnsw)),
        ("document_id", KeywordIndexParams(enable_hnsw=v.own_fields_hnsw)),
        (TEXT_FIELD, text_index(v)),
    ]


def category_index(v: Variant) -> Any:
    if v.category_hnsw is None:
        return PayloadSchemaType.Keyword  # payload_index_schema("keyword"), as the engine
    return KeywordIndexParams(enable_hnsw=v.category_hnsw)


def edge_config(v: Variant, dim: int) -> EdgeConfig:
    optimizers = None
    if v.segment_number is not None or v.max_segment_points or v.indexing_threshold_kb:
        optimizers = EdgeOptimizersConfig(
            default_segment_number=v.segment_number,
            max_segment_size=(
                v.max_segment_points * dim * 4 // 1024 if v.max_segment_points else None
            ),
            indexing_threshold=v.indexing_threshold_kb,
        )
    quant = (
        ScalarQuantizationConfig(ScalarType.Int8, quantile=0.99, memory=_memory(v.quant_memory))
        if v.quantize_int8
        else None
    )
    return EdgeConfig(
        vectors={
            VECTOR: EdgeVectorParams(
                size=dim,
                distance=Distance.Cosine,
                quantization_config=quant,
                memory=_memory(v.vector_memory),
            )
        },
        sparse_vectors={"_sparse": EdgeSparseVectorParams()},
        hnsw_config=HnswIndexConfig(
            m=v.m,
            ef_construct=v.ef_construct,
            full_scan_threshold=v.full_scan_threshold,
            max_indexing_threads=v.max_indexing_threads,
            payload_m=v.payload_m,
            memory=_memory(v.hnsw_memory),
        ),
        optimizers=optimizers,
        payload_memory=_memory(v.payload_memory),
    )


def search_params(v: Variant, acorn: bool = False) -> SearchParams:
    quant = (
        QuantizationSearchParams(rescore=True, oversampling=v.oversampling)
        if v.quantize_int8
        else None
    )
    return SearchParams(
        hnsw_ef=v.hnsw_ef,
        quantization=quant,
        acorn=AcornSearchParams(enable=True) if acorn else None,
    )


# ---------------------------------------------------------------------------------------------
# process figures


def mem() -> dict[str, int]:
    """VmRSS and VmHWM of this process, MiB."""
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) // 1024
    return out


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux clear_refs 5), so the next peak is a phase's."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def threads_now() -> int:
    return len(os.listdir("/proc/self/task"))


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(xs: Sequence[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(xs, dtype=np.float64), p)), 3)


# ---------------------------------------------------------------------------------------------
# ground truth


def exact_topk(vectors: F32, queries: F32, k: int, rows: I64 | None = None) -> I64:
    """Exact top-k row ids by inner product (unit vectors), over `rows` or all rows."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    total = len(vectors) if rows is None else len(rows)
    step = 100_000
    for start in range(0, total, step):
        ids = (
            np.arange(start, min(total, start + step))
            if rows is None
            else rows[start : start + step]
        )
        block = np.asarray(vectors[start : start + step]) if rows is None else vectors[ids]
        s = queries @ block.T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        cand_i = np.concatenate([best_i, ids[part]], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(cand_s, order, 1)
        best_i = np.take_along_axis(cand_i, order, 1)
    return best_i


def truth(ds: Dataset, vectors: F32) -> Path:
    """Cache (queries, texts, dense truth, filtered truth, category) for the serve phase."""
    path = CACHE / f"truth-{ds.spec.key}-q{N_QUERIES}.npz"
    if path.exists():
        return path
    t0 = time.perf_counter()
    qv, qt, _ = ds.queries(N_QUERIES, seed=1)
    category, _share = selective_category()
    code = int(category[3:])
    rows = np.flatnonzero(ds.column("category") == code).astype(np.int64)
    dense = exact_topk(vectors, qv, K)
    filtered = exact_topk(vectors, qv, K, rows)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, qv=qv, qt=np.asarray(qt), dense=dense, filtered=filtered, category=category)
    os.replace(tmp, path)
    log(f"ground truth in {time.perf_counter() - t0:.1f}s ({len(rows)} rows in {category})")
    return path


# ---------------------------------------------------------------------------------------------
# build


def payload(doc: dict[str, Any], seq: int) -> dict[str, Any]:
    """document_payload() of a BYO document whose text sits in payload.text, plus _seq (edge
    upsert): {text, metadata, document_id, collection_id, _text, _seq}."""
    return {
        "text": doc["text"],
        "metadata": doc["metadata"],
        "document_id": doc["document_id"],
        "collection_id": COLLECTION,
        TEXT_FIELD: doc["text"],
        SEQ_FIELD: seq,
    }


def add_index(shard: EdgeShard, name: str, schema: Any) -> float:
    """Create one payload index; its wall time."""
    t0 = time.perf_counter()
    shard.update(UpdateOperation.create_field_index(name, schema))
    return time.perf_counter() - t0


def build(args: argparse.Namespace, v: Variant) -> dict[str, Any]:
    ds = Dataset(Spec(args.n))
    vectors = ds.vectors(CACHE)
    truth_path = truth(ds, vectors)
    shard_dir = ROOT / f"shard-{args.config}-n{args.n}"
    shutil.rmtree(shard_dir, ignore_errors=True)
    res: dict[str, Any] = {"config": args.config, "n": args.n, "variant": asdict(v)}

    shard = EdgeShard.create(str(shard_dir), edge_config(v, ds.spec.dim))
    index_s = 0.0
    early: list[tuple[str, Any]] = [] if v.late_indexes else own_indexes(v)
    if v.category_first:
        early.append((CATEGORY_FIELD, category_index(v)))
    for name, schema in early:
        index_s += add_index(shard, name, schema)

    log(f"{args.config}: upserting {args.n:,}")
    chunk_s, chunk_peak = 0.0, 0
    t0 = time.perf_counter()
    docs = ds.docs()
    for start in range(0, args.n, BATCH):
        block = np.array(vectors[start : start + BATCH])
        batch = []
        for i, row in enumerate(block):
            doc = next(docs)
            batch.append(
                Point(
                    point_id(doc["document_id"]),
                    {VECTOR: row.tolist()},
                    payload(doc, start + i + 1),
                )
            )
        shard.update(UpdateOperation.upsert_points(batch))
        done = start + BATCH
        if v.optimize_every and done % v.optimize_every == 0 and done < args.n:
            reset_peak()
            t1 = time.perf_counter()
            shard.optimize()
            chunk_s += time.perf_counter() - t1
            chunk_peak = max(chunk_peak, mem()["VmHWM"])
            log(f"  chunk optimize at {done:,}: {time.perf_counter() - t1:.1f}s")
        if (start + BATCH) % 100_000 == 0:
            log(f"  {start + BATCH:,} upserted ({time.perf_counter() - t0:.0f}s)")
    res["upsert_s"] = round(time.perf_counter() - t0 - chunk_s, 2)
    res["chunk_optimize_s"] = round(chunk_s, 2)
    del vectors, block, batch
    gc.collect()

    late: list[tuple[str, Any]] = own_indexes(v) if v.late_indexes else []
    if not v.category_first:
        late.append((CATEGORY_FIELD, category_index(v)))  # a retriever adds it after ingest
    for name, schema in late:
        index_s += add_index(shard, name, schema)
    res["field_index_s"] = round(index_s, 2)
    info = shard.info()
    res["segments_before"] = info.segments_count

    m0 = mem()
    res["rss_before_optimize_mib"] = m0["VmRSS"]
    reset_peak()
    log(f"{args.config}: optimize (rss {m0['VmRSS']} MiB, {threads_now()} threads)")
    c0, b0, t0 = time.process_time(), busy_seconds(), time.perf_counter()
    changed = shard.optimize()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    others = busy_seconds() - b0 - cpu
    m1 = mem()
    info = shard.info()
    res.update(
        optimize_s=round(wall + chunk_s, 2),
        final_optimize_s=round(wall, 2),
        optimize_cpu_cores=round(cpu / wall, 2) if wall else None,
        other_procs_cpu_cores=round(others / wall, 2) if wall else None,
        optimize_changed=bool(changed),
        peak_rss_optimize_mib=max(m1["VmHWM"], chunk_peak),
        rss_after_optimize_mib=m1["VmRSS"],
        segments=info.segments_count,
        points=info.points_count,
        indexed_vectors=info.indexed_vectors_count,
    )
    log(f"{args.config}: optimize {wall:.1f}s, {cpu / wall:.2f} cores, peak {m1['VmHWM']} MiB")
    shard.close()
    gc.collect()
    res["disk_mib"] = sum(f.stat().st_size for f in shard_dir.rglob("*") if f.is_file()) >> 20

    # serve in a fresh process: the RSS a server would have
    cmd = [sys.executable, "-m", "bench.build_probe", "--serve", str(shard_dir)]
    cmd += ["--config", args.config, "--truth", str(truth_path), "--hnsw-ef", str(v.hnsw_ef)]
    if args.seg_points is not None:
        cmd += ["--seg-points", str(args.seg_points)]
    if args.oversampling is not None:
        cmd += ["--oversampling", str(args.oversampling)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800)
    res.update(json.loads(out.stdout.strip().splitlines()[-1]))
    if not args.keep:
        shutil.rmtree(shard_dir, ignore_errors=True)
    return res


# ---------------------------------------------------------------------------------------------
# serve


@dataclass
class Timings:
    ms: list[float] = field(default_factory=list)
    hits: list[list[int]] = field(default_factory=list)


def run_queries(shard: EdgeShard, requests: list[QueryRequest]) -> Timings:
    out = Timings()
    for req in requests[:WARMUP]:
        shard.query(req)
    for req in requests:
        t0 = time.perf_counter()
        points = shard.query(req)
        out.ms.append((time.perf_counter() - t0) * 1000)
        out.hits.append([int(str((p.payload or {})["document_id"])[1:]) for p in points])
    return out


def recall(hits: list[list[int]], truth_ids: I64) -> float:
    got = sum(len(set(h[:K]) & set(t.tolist())) for h, t in zip(hits, truth_ids, strict=True))
    return round(got / (K * len(hits)), 4)


def serve(args: argparse.Namespace, v: Variant) -> dict[str, Any]:
    data = np.load(args.truth)
    qv: F32 = data["qv"]
    texts = [str(t) for t in data["qt"]]
    category = str(data["category"])
    base = mem()["VmRSS"]
    t0 = time.perf_counter()
    shard = EdgeShard.load(args.serve)
    load_s = time.perf_counter() - t0
    after_load = mem()["VmRSS"]
    params = search_params(v)
    flt = Filter(must=[FieldCondition(key=CATEGORY_FIELD, match=MatchValue(category))])
    dense = [
        QueryRequest(
            limit=K, query=Query.Nearest(q.tolist(), using=VECTOR), with_payload=True, params=params
        )
        for q in qv
    ]
    filtered = [
        QueryRequest(
            limit=K,
            query=Query.Nearest(q.tolist(), using=VECTOR),
            filter=flt,
            with_payload=True,
            params=ps,
        )
        for ps in (params, search_params(v, acorn=True))
        for q in qv
    ]
    bm25 = [QueryRequest(limit=K, query=TextQuery(TEXT_FIELD, t), with_payload=True) for t in texts]
    d = run_queries(shard, dense)
    f = run_queries(shard, filtered[: len(qv)])
    fa = run_queries(shard, filtered[len(qv) :])  # the same, with ACORN
    b = run_queries(shard, bm25)
    m = mem()
    shard.close()
    return {
        "python_base_rss_mib": base,
        "load_s": round(load_s, 2),
        "rss_after_load_mib": after_load,
        "rss_serving_mib": m["VmRSS"],
        "peak_rss_serving_mib": m["VmHWM"],
        "recall10": recall(d.hits, data["dense"]),
        "recall10_filtered": recall(f.hits, data["filtered"]),
        "filtered_full_pages": round(sum(len(h) == K for h in f.hits) / len(f.hits), 4),
        "dense_p50_ms": pct(d.ms, 50),
        "dense_p99_ms": pct(d.ms, 99),
        "filtered_p50_ms": pct(f.ms, 50),
        "filtered_p99_ms": pct(f.ms, 99),
        "recall10_filtered_acorn": recall(fa.hits, data["filtered"]),
        "filtered_acorn_p50_ms": pct(fa.ms, 50),
        "bm25_p50_ms": pct(b.ms, 50),
        "bm25_p99_ms": pct(b.ms, 99),
        "filter_value": category,
    }


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--config", default="baseline", help="a name from --list")
    p.add_argument("--seg-points", type=int, default=None, help="override max_segment_points")
    p.add_argument("--hnsw-ef", type=int, default=None, help="override the query hnsw_ef")
    p.add_argument("--oversampling", type=float, default=None, help="override (quantized)")
    p.add_argument("--keep", action="store_true", help="keep the shard directory")
    p.add_argument("--list", action="store_true")
    p.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    p.add_argument("--truth", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.list:
        for name, var in VARIANTS.items():
            print(name, {k: x for k, x in asdict(var).items() if x != getattr(Variant(), k)})
        return 0
    v = VARIANTS[args.config]
    if args.seg_points is not None:
        v = replace(v, max_segment_points=args.seg_points)
    if args.hnsw_ef is not None:
        v = replace(v, hnsw_ef=args.hnsw_ef)
    if args.oversampling is not None:
        v = replace(v, oversampling=args.oversampling)
    if args.serve:
        print(json.dumps(serve(args, v)))
        return 0
    ROOT.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    res = build(args, v)
    res["hnsw_ef"] = v.hnsw_ef
    res["raw_vectors_mib"] = args.n * 384 * 4 >> 20
    res["when"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    line = json.dumps(res)
    with RESULTS.open("a") as fh:
        fh.write(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
