"""Soak: one server under 32 loopback clients mixing ingest, executes and reads for minutes.

    python -m bench.soak [--minutes 10] [--clients 32] [--smoke] [--out FILE]

`--smoke` (CI) runs 30 seconds. The server is a child process (`python -m stagewise serve`,
bench.common) on a fresh data dir with its defaults: the real MiniLM embedder, the per-key rate
limit (500/s, bursts of 1,000) and 64 executions at once per key. One namespace holds a text
collection (the server embeds every text) and a BYO-vector collection (384-d `emb` vectors,
bench.filter_recall's layout), pre-loaded by batched upserts, and three retrievers:

- `hybrid_filter`: dense + BM25 over the text collection fused with RRF (bench.quality's
  hybrid), then an attribute_filter on `metadata.category` (~half the documents);
- `prefilter`: dense search over the BYO collection with the templated pre-filter
  `metadata.cat == {{INPUT.c}}` (bench.filter_recall's);
- `rerank`: bench.quality's hybrid + rerank (MiniLM max-sim over the first 5 documents).

Every client has its own namespace key (POST /v1/keys with the admin key), as separate users
would, so no client spends another's rate budget. Each loops a weighted mix, with no pause:

- ingest: single text documents (embedded one by one), BYO batches of 5 vectors (new ids, or
  overwrites once the client holds 60), metadata and text patches (a text patch re-embeds),
  deletes. Each client keeps at most 20 documents of its own text and 60 vectors, deleting its
  oldest past that, so the data set keeps a steady size and RSS growth means memory the
  server keeps, not data it was given;
- executes: blocking, `wait=false` then polling the status until it ends (then the detail), and
  cursor pagination (a first page of 10, then up to two continuations);
- reads: execution detail, execution and document lists, document GETs (the text collection's
  route and the namespace's BYO route), collection GETs, retriever and collection lists,
  health and deep health.

An error is any non-2xx answer, connection failure or timeout, and any execution that did not
end `completed`; a 429 counts. The one expected non-2xx is a 404 for a document GET that raced
its owner's delete (the id is marked before the DELETE is sent), counted apart. Every 2 s the
server's RSS (VmRSS, and its heap and mapped-file parts), its CPU time and the machine's load
average are sampled. Reported: requests per operation, errors (with samples), p50/p99 per
operation in the first and the last window (a minute; a quarter of the run when that is
shorter) and their ratio (drift), each last-window p50 against GET /v1/health's under load,
GET /v1/health p50 on the idle server before and after (the trivial-route baseline), a
timeline per window (requests, server cores, server CPU-ms per request, RSS, load: a server
that slows by itself spends more CPU per request; one starved by other work gets fewer cores),
and RSS growth from the end of the warm-up (the first 20% of the run, `--warmup`) to the end.

Exit status: 1 on any error, or RSS growth over 10% (not in smoke mode: within a short run the
server's bounded caches, such as the 5,000 executions it remembers and the 4,096 query
embeddings, are still filling, so the figure is printed but measures the warm-up, not a leak);
2 when the run itself fails. Drift never changes it.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from bench import filter_recall, quality
from bench.common import Api, ApiError, BenchError, git_revision, machine_info, start_server
from bench.generate import Dataset, Spec
from bench.measure import (
    ADMIN_KEY,
    CACHE_DIR,
    JSON,
    RESULTS_DIR,
    UPSERT_BATCH,
    cpu_seconds,
    dist,
    load_average,
    log,
    r3,
    ratio,
    rss_bytes,
    self_cpu_seconds,
)
from bench.perf import _stage, health_p50

NAMESPACE = "soak"
TEXTS = "texts"
VECS = filter_recall.COLLECTION  # BYO vectors under filter_recall.FEATURE, with cat and shard
CATEGORIES = ["cat00", "cat01", "cat02"]  # the hybrid retriever's filter: ~51% of documents
OWN_TEXTS = 20  # text documents a client keeps; past it, it deletes its oldest
OWN_VECTORS = 60  # BYO vectors a client keeps before its upserts overwrite
BYO_BATCH = 5
PAGE_LIMIT = 10
RSS_EVERY_S = 2.0
WARMUP_SHARE = 0.2
MAX_RSS_GROWTH = 0.10
TIMEOUT_S = 120.0  # a request slower than this is an error (a timeout)
POLL_S = 0.1  # the status poll of a wait=false execution
# Distinct query texts: twice the server's query-embedding cache (4,096), so it evicts.
QUERY_TEXTS = 8192
FIELDS = list(filter_recall.FIELDS.items())  # BYO metadata: cat and shard, from an integer


@dataclass(frozen=True)
class Settings:
    minutes: float
    clients: int
    text_docs: int  # pre-loaded
    vector_docs: int  # pre-loaded
    seed: int


# ---------------------------------------------------------------------------------------------
# recording


@dataclass
class Recorder:
    """Per-operation (seconds since the start, wall ms), errors and expected 404s."""

    t0: float
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    expected_404: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def sample(self, op: str, start: float, ms: float) -> None:
        with self.lock:
            self.samples.setdefault(op, []).append((start - self.t0, ms))

    def error(self, op: str, what: str, status: int | None = None) -> None:
        with self.lock:
            self.errors.append(
                {"t": round(self.now(), 1), "op": op, "status": status, "what": what}
            )


@dataclass
class Shared:
    """What clients know of each other: ids to read, ids being deleted, recent executions."""

    rids: dict[str, str]
    text_ids: list[str]  # pre-loaded, never deleted
    vector_ids: list[str]  # pre-loaded, never deleted
    doomed: set[str] = field(default_factory=set)  # a DELETE was (or is about to be) sent
    executions: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=500))
    workers: list[Worker] = field(default_factory=list)


@dataclass(frozen=True)
class Inputs:
    """The query pools: texts for the text collection, vectors for the BYO one."""

    texts: list[str]
    vectors: NDArray[np.float32]
    doc_texts: list[str]  # for new and patched documents
    pool: NDArray[np.float32]  # vectors for BYO upserts


# ---------------------------------------------------------------------------------------------
# one client


class Worker:
    def __init__(
        self, index: int, base_url: str, key: str, shared: Shared, inputs: Inputs, rec: Recorder
    ) -> None:
        self.index = index
        self.api = Api(base_url, key, NAMESPACE, timeout=TIMEOUT_S)
        self.shared, self.inputs, self.rec = shared, inputs, rec
        self.rng = random.Random(index)
        self.lock = threading.Lock()
        self.texts: deque[str] = deque()
        self.vectors: list[str] = []
        self.next_vector = 0
        self.ops: list[tuple[Callable[[], None], int]] = [
            (self.create_text, 8),
            (self.upsert_vectors, 8),
            (self.patch_text, 5),
            (self.delete_vector, 4),
            (self.execute_hybrid, 12),
            (self.execute_prefilter, 10),
            (self.execute_rerank, 3),
            (self.execute_async, 6),
            (self.execute_paged, 6),
            (self.get_execution, 8),
            (self.list_executions, 3),
            (self.list_documents, 4),
            (self.get_document, 8),
            (self.get_collection, 4),
            (self.list_catalog, 3),
            (self.health, 4),
            (self.health_deep, 1),
        ]

    # ---- HTTP ---------------------------------------------------------------------------------
    def call(
        self,
        op: str,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        gone: str | None = None,
    ) -> Any:
        """The decoded answer, or None after recording an error (or an expected 404 when
        `gone` names a document that is being deleted)."""
        content = None if body is None else orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        start = time.perf_counter()
        try:
            out = self.api.request(
                method, path, content=content, headers=JSON if content else None, params=params
            )
        except ApiError as exc:
            if exc.status == 404 and gone is not None and gone in self.shared.doomed:
                with self.rec.lock:
                    self.rec.expected_404[op] += 1
            else:
                self.rec.error(op, f"{method} {path} -> {exc.body[:300]}", exc.status)
            return None
        except BenchError as exc:  # connection failures and timeouts
            self.rec.error(op, str(exc)[:300])
            return None
        self.rec.sample(op, start, (time.perf_counter() - start) * 1000)
        return out if out is not None else {}

    def completed(self, op: str, out: Any) -> bool:
        if out is None:
            return False
        if out.get("status") != "completed" or out.get("error"):
            what = f"execution {out.get('execution_id')}: {out.get('status')} {out.get('error')}"
            self.rec.error(op, what[:300])
            return False
        self.shared.executions.append((out["retriever_id"], out["execution_id"]))
        return True

    def run(self, deadline: float) -> None:
        funcs = [f for f, _ in self.ops]
        weights = [w for _, w in self.ops]
        try:
            while time.perf_counter() < deadline:
                op = self.rng.choices(funcs, weights)[0]
                try:
                    op()
                except Exception:  # a bug of this client: counted, never hidden
                    self.rec.error("client", traceback.format_exc(limit=3)[-600:])
        finally:
            self.api.close()

    # ---- ingest -------------------------------------------------------------------------------
    def doc_text(self) -> str:
        return self.rng.choice(self.inputs.doc_texts)

    def create_text(self) -> None:
        body = {"text": self.doc_text(), "metadata": self.metadata()}
        out = self.call("ingest.text_create", "POST", f"/v1/collections/{TEXTS}/documents", body)
        if out is None:
            return
        with self.lock:
            self.texts.append(out["document_id"])
            oldest = self.texts.popleft() if len(self.texts) > OWN_TEXTS else None
        if oldest is not None:
            self.delete("ingest.text_delete", f"/v1/collections/{TEXTS}/documents", oldest)

    def metadata(self) -> dict[str, Any]:
        return {
            "category": self.rng.choice([*CATEGORIES, "cat07", "cat11"]),
            "year": self.rng.randint(1990, 2024),
            "writer": self.index,
        }

    def upsert_vectors(self) -> None:
        with self.lock:
            if len(self.vectors) < OWN_VECTORS:
                ids = [f"w{self.index}-{self.next_vector + i}" for i in range(BYO_BATCH)]
                self.next_vector += BYO_BATCH
                fresh = True
            else:
                ids = self.rng.sample(self.vectors, BYO_BATCH)
                fresh = False
        pool = self.inputs.pool
        docs = [
            {
                "document_id": doc_id,
                "vectors": {filter_recall.FEATURE: pool[self.rng.randrange(len(pool))]},
                "metadata": {name: of(self.rng.randrange(100)) for name, of in FIELDS},
            }
            for doc_id in ids
        ]
        path = f"/v1/namespaces/{NAMESPACE}/documents/upsert"
        out = self.call(
            "ingest.byo_upsert", "POST", path, {"collection_id": VECS, "documents": docs}
        )
        if out is not None and fresh:
            with self.lock:
                self.vectors.extend(ids)

    def patch_text(self) -> None:
        with self.lock:
            doc_id = self.rng.choice(self.texts) if self.texts else None
        if doc_id is None:
            return self.create_text()
        if self.rng.random() < 0.25:  # a new text: the server embeds it again
            op, body = "ingest.patch_text", {"text": self.doc_text()}
        else:
            op, body = "ingest.patch_metadata", {"metadata": self.metadata()}
        self.call(op, "PATCH", f"/v1/collections/{TEXTS}/documents/{doc_id}", body)

    def delete_vector(self) -> None:
        with self.lock:
            if not self.vectors:
                doc_id = None
            else:
                doc_id = self.vectors.pop(self.rng.randrange(len(self.vectors)))
        if doc_id is not None:
            self.delete("ingest.byo_delete", f"/v1/collections/{VECS}/documents", doc_id)

    def delete(self, op: str, prefix: str, doc_id: str) -> None:
        self.shared.doomed.add(doc_id)  # before the request: a reader's 404 may come first
        self.call(op, "DELETE", f"{prefix}/{doc_id}")

    # ---- executes -----------------------------------------------------------------------------
    def text_inputs(self) -> dict[str, Any]:
        return {"query": self.rng.choice(self.inputs.texts)}

    def execute(self, op: str, kind: str, body: dict[str, Any], **params: Any) -> Any:
        rid = self.shared.rids[kind]
        return self.call(op, "POST", f"/v1/retrievers/{rid}/execute", body, params or None)

    def execute_hybrid(self) -> None:
        out = self.execute("execute.hybrid_filter", "hybrid_filter", {"inputs": self.text_inputs()})
        self.completed("execute.hybrid_filter", out)

    def execute_prefilter(self) -> None:
        vectors = self.inputs.vectors
        inputs = {"c": self.rng.randrange(10), "v": vectors[self.rng.randrange(len(vectors))]}
        out = self.execute("execute.prefilter", "prefilter", {"inputs": inputs})
        self.completed("execute.prefilter", out)

    def execute_rerank(self) -> None:
        out = self.execute("execute.rerank", "rerank", {"inputs": self.text_inputs()})
        self.completed("execute.rerank", out)

    def execute_async(self) -> None:
        """wait=false, then the status until it ends, then the detail."""
        t0 = time.perf_counter()
        body = {"inputs": self.text_inputs()}
        out = self.execute("execute.async_submit", "hybrid_filter", body, wait="false")
        if out is None:
            return
        rid, eid = self.shared.rids["hybrid_filter"], out["execution_id"]
        base = f"/v1/retrievers/{rid}/executions/{eid}"
        while True:
            status = self.call("read.execution_status", "GET", f"{base}/status")
            if status is None:
                return
            if status["status"] not in ("pending", "processing"):
                break
            if time.perf_counter() - t0 > TIMEOUT_S:
                self.rec.error("execute.async_total", f"execution {eid} still {status['status']}")
                return
            time.sleep(POLL_S)
        detail = self.call("read.execution_detail", "GET", base)
        if self.completed("execute.async_total", detail):
            self.rec.sample("execute.async_total", t0, (time.perf_counter() - t0) * 1000)

    def execute_paged(self) -> None:
        """A first page of PAGE_LIMIT by cursor, then up to two continuations."""
        inputs = self.text_inputs()
        pagination = {"method": "cursor", "limit": PAGE_LIMIT}
        op, body = "execute.page_first", {"inputs": inputs, "pagination": pagination}
        for _ in range(3):
            out = self.execute(op, "hybrid_filter", body)
            if not self.completed(op, out) or not out["pagination"]["has_next"]:
                return
            cursor = out["pagination"]["cursor"]
            op, body = (
                "execute.page_next",
                {"inputs": inputs, "pagination": {**pagination, "cursor": cursor}},
            )

    # ---- reads --------------------------------------------------------------------------------
    def get_execution(self) -> None:
        if not self.shared.executions:
            return self.health()
        rid, eid = self.rng.choice(self.shared.executions)
        self.call("read.execution_detail", "GET", f"/v1/retrievers/{rid}/executions/{eid}")

    def list_executions(self) -> None:
        rid = self.shared.rids[self.rng.choice(list(self.shared.rids))]
        self.call(
            "read.executions_list",
            "POST",
            f"/v1/retrievers/{rid}/executions/list",
            {},
            {"limit": 20},
        )

    def list_documents(self) -> None:
        cat = self.rng.choice(CATEGORIES)
        body = {
            "filters": {"AND": [{"field": "metadata.category", "operator": "eq", "value": cat}]},
            "limit": 20,
        }
        self.call("read.documents_list", "POST", f"/v1/collections/{TEXTS}/documents/list", body)

    def get_document(self) -> None:
        """A pre-loaded document, or one another client wrote (it may be deleting it)."""
        other = self.rng.choice(self.shared.workers)
        text = self.rng.random() < 0.5
        with other.lock:
            own = list(other.texts if text else other.vectors)
        fixed = self.shared.text_ids if text else self.shared.vector_ids
        doc_id = self.rng.choice(own if own and self.rng.random() < 0.5 else fixed)
        if text:
            path = f"/v1/collections/{TEXTS}/documents/{doc_id}"
            self.call("read.document_text", "GET", path, gone=doc_id)
        else:
            path = f"/v1/namespaces/{NAMESPACE}/documents/{doc_id}"
            self.call("read.document_byo", "GET", path, gone=doc_id)

    def get_collection(self) -> None:
        self.call("read.collection", "GET", f"/v1/collections/{self.rng.choice([TEXTS, VECS])}")

    def list_catalog(self) -> None:
        what = self.rng.choice(["collections", "retrievers"])
        self.call(f"read.{what}_list", "GET", f"/v1/{what}")

    def health(self) -> None:
        self.call("read.health", "GET", "/v1/health")

    def health_deep(self) -> None:
        self.call("read.health_deep", "GET", "/v1/health/deep")


# ---------------------------------------------------------------------------------------------
# setup


def setup(base_url: str, s: Settings) -> tuple[Shared, Inputs, list[str], dict[str, Any]]:
    """Namespace, collections, retrievers, pre-loaded documents and one key per client."""
    t0 = time.perf_counter()
    texts = Dataset(Spec(s.text_docs + 2000, s.seed))
    doc_rows = list(texts.docs())
    vec_ds = Dataset(Spec(s.vector_docs, s.seed))
    vectors = vec_ds.vectors(CACHE_DIR)
    query_texts = texts.queries(QUERY_TEXTS, seed=s.seed + 1)[1]
    query_vectors = vec_ds.queries(256, seed=s.seed + 1)[0]
    extractor = {"feature_extractor_name": "text_extractor", "version": "v1"}
    with Api(base_url, ADMIN_KEY) as admin, Api(base_url, ADMIN_KEY, NAMESPACE) as api:
        admin.post(
            "/v1/namespaces",
            json={
                "namespace_name": NAMESPACE,
                "feature_extractors": [extractor],
                "vector_configs": [{"name": filter_recall.FEATURE, "dimension": 384}],
            },
        )
        source = {"type": "direct_upsert"}
        api.post(
            "/v1/collections",
            json={"collection_name": TEXTS, "source": source, "feature_extractor": extractor},
        )
        api.post("/v1/collections", json={"collection_name": VECS, "source": source})
        filt = {"field": "metadata.category", "operator": "in", "value": CATEGORIES}
        filt = _stage("filter", "attribute_filter", filt)
        specs = {
            "hybrid_filter": [*quality.retriever_stages("hybrid", 0), filt],
            "rerank": quality.retriever_stages("hybrid_rerank", 5),
        }
        rids = {}
        for kind, stages in specs.items():
            body = {
                "retriever_name": kind,
                "collection_identifiers": [TEXTS],
                "input_schema": {"query": {"type": "text", "required": True}},
                "stages": stages,
            }
            rids[kind] = api.post("/v1/retrievers", json=body)["retriever_id"]
        templated = filter_recall.RETRIEVERS["templated"]
        rids["prefilter"] = api.post("/v1/retrievers", json=templated)["retriever_id"]
        upsert = f"/v1/namespaces/{NAMESPACE}/documents/upsert"
        t1 = time.perf_counter()
        for lo in range(0, s.text_docs, UPSERT_BATCH):  # the server embeds every text
            docs = [
                {
                    "document_id": d["document_id"],
                    "vectors": {},
                    "payload": {"text": d["text"]},
                    "metadata": d["metadata"],
                }
                for d in doc_rows[lo : min(lo + UPSERT_BATCH, s.text_docs)]
            ]
            api.post(upsert, json={"collection_id": TEXTS, "documents": docs})
        t2 = time.perf_counter()
        for body in filter_recall.upsert_bodies(vectors):
            api.request("POST", upsert, content=body, headers=JSON)
        t3 = time.perf_counter()
        keys = [
            admin.post("/v1/keys", json={"name": f"soak-{i}", "namespace": NAMESPACE})["key"]
            for i in range(s.clients)
        ]
    shared = Shared(
        rids=rids,
        text_ids=[d["document_id"] for d in doc_rows[: s.text_docs]],
        vector_ids=[f"p{i}" for i in range(s.vector_docs)],
    )
    inputs = Inputs(
        texts=query_texts,
        vectors=query_vectors,
        doc_texts=[d["text"] for d in doc_rows[s.text_docs :]],
        pool=np.array(vectors[: min(2000, s.vector_docs)]),
    )
    info = {
        "seconds": round(time.perf_counter() - t0, 1),
        "text_preload_docs_per_s": round(s.text_docs / (t2 - t1), 1),
        "vector_preload_docs_per_s": round(s.vector_docs / (t3 - t2), 1),
        "retrievers": rids,
    }
    return shared, inputs, keys, info


# ---------------------------------------------------------------------------------------------
# the run


def sample_server(
    pid: int, rec: Recorder, stop: threading.Event, out: list[dict[str, Any]]
) -> None:
    """Every RSS_EVERY_S: the server's RSS (heap and mapped files apart), its CPU seconds so far
    and the machine's 1-minute load average (other work on the machine)."""
    while True:
        mem = {k: round(v / 2**20, 1) for k, v in rss_bytes(pid).items()}
        out.append(
            {
                "t": round(rec.now(), 1),
                "rss_mib": mem.get("VmRSS", 0.0),
                "anon_mib": mem.get("RssAnon", 0.0),
                "file_mib": mem.get("RssFile", 0.0),
                "hwm_mib": mem.get("VmHWM", 0.0),
                "server_cpu_s": round(cpu_seconds(pid), 2),
                "load1": load_average()[0],
            }
        )
        if stop.is_set():
            return
        stop.wait(RSS_EVERY_S)


def soak(
    base_url: str, pid: int, s: Settings, shared: Shared, inputs: Inputs, keys: list[str]
) -> tuple[Recorder, list[dict[str, Any]], dict[str, Any]]:
    rec = Recorder(time.perf_counter())
    shared.workers = [Worker(i, base_url, k, shared, inputs, rec) for i, k in enumerate(keys)]
    deadline = rec.t0 + s.minutes * 60
    samples: list[dict[str, Any]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_server, args=(pid, rec, stop, samples), daemon=True)
    threads = [
        threading.Thread(target=w.run, args=(deadline,), daemon=True) for w in shared.workers
    ]
    cpu0, own0 = cpu_seconds(pid), self_cpu_seconds()
    sampler.start()
    for t in threads:
        t.start()
    next_log = rec.t0 + 60
    while any(t.is_alive() for t in threads):
        time.sleep(1.0)
        if time.perf_counter() >= next_log:
            with rec.lock:
                n = sum(len(v) for v in rec.samples.values())
            mib = samples[-1]["rss_mib"] if samples else 0
            log(f"  {rec.now():.0f} s: {n:,} requests, {len(rec.errors)} errors, RSS {mib:.0f} MiB")
            next_log += 60
        if time.perf_counter() > deadline + 2 * TIMEOUT_S:
            rec.error("client", "clients still running long after the deadline")
            break
    seconds = rec.now()
    stop.set()
    sampler.join(timeout=10)
    cpu = {
        "seconds": round(seconds, 1),
        "server_cpu_cores": r3((cpu_seconds(pid) - cpu0) / seconds),
        "client_cpu_cores": r3((self_cpu_seconds() - own0) / seconds),
    }
    return rec, samples, cpu


def window_stats(rec: Recorder, seconds: float, window: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op in sorted(rec.samples):
        t = np.array([x for x, _ in rec.samples[op]])
        ms = np.array([y for _, y in rec.samples[op]])
        first, last = dist(ms[t < window]), dist(ms[t >= seconds - window])
        out[op] = {
            "n": len(ms),
            "per_s": round(len(ms) / seconds, 2),
            "all": dist(ms),
            "first": first,
            "last": last,
            "drift_p50": ratio(last["p50"], first["p50"]),
            "drift_p99": ratio(last["p99"], first["p99"]),
            "expected_404": rec.expected_404.get(op, 0),
            "errors": sum(e["op"] == op for e in rec.errors),
        }
    return out


def rss_summary(samples: list[dict[str, Any]], seconds: float, warmup: float) -> dict[str, Any]:
    """Growth from the sample nearest the end of the warm-up (`warmup` of the run) to the
    last one, and the least-squares slope after the warm-up."""

    def nearest(share: float) -> dict[str, Any]:
        return min(samples, key=lambda x: abs(x["t"] - share * seconds))

    base = nearest(warmup)
    end = samples[-1]
    after = [x for x in samples if x["t"] >= base["t"]]
    slope = None
    if len(after) > 2:
        fit = np.polyfit([x["t"] for x in after], [x["rss_mib"] for x in after], 1)
        slope = round(float(fit[0]) * 60, 2)
    return {
        "warmup_share": warmup,
        "warmup_end_s": base["t"],
        "start_mib": samples[0]["rss_mib"],
        "warmup_end_mib": base["rss_mib"],
        "end_mib": end["rss_mib"],
        "peak_mib": max(x["rss_mib"] for x in samples),
        "growth_pct": round((end["rss_mib"] / base["rss_mib"] - 1) * 100, 2),
        "anon_growth_mib": round(end["anon_mib"] - base["anon_mib"], 1),
        "file_growth_mib": round(end["file_mib"] - base["file_mib"], 1),
        "slope_after_warmup_mib_per_min": slope,
        # the same growth from other warm-up ends, for reading the curve (never gated)
        "growth_pct_from": {
            f"{share:.0%}": round((end["rss_mib"] / nearest(share)["rss_mib"] - 1) * 100, 2)
            for share in (0.1, 0.2, 0.3, 0.5, 0.75)
        },
    }


def timeline(rec: Recorder, samples: list[dict[str, Any]], step: float) -> list[dict[str, Any]]:
    """Per `step` seconds (the last step takes the run's tail): requests, errors, the server's
    CPU (cores, CPU-ms per request between the step's first and last sample), its RSS at the
    end of the step and the machine's load. Drift from the server itself shows as more CPU per
    request; drift from other work on the machine as fewer cores for the server."""
    starts = np.sort(np.array([t for op in rec.samples.values() for t, _ in op]))
    err_t = np.array([e["t"] for e in rec.errors])
    end = samples[-1]["t"]
    steps = max(1, int(end // step))
    out = []
    for i in range(steps):
        lo, hi = i * step, (end if i == steps - 1 else (i + 1) * step)
        inside = [x for x in samples if lo <= x["t"] <= hi]
        first, last = inside[0], inside[-1]
        span = last["t"] - first["t"]
        cpu = last["server_cpu_s"] - first["server_cpu_s"]
        between = int(np.searchsorted(starts, last["t"]) - np.searchsorted(starts, first["t"]))
        out.append(
            {
                "from_s": lo,
                "requests": int(np.searchsorted(starts, hi) - np.searchsorted(starts, lo)),
                "errors": int(((err_t >= lo) & (err_t < hi)).sum()),
                "server_cores": r3(cpu / span) if span else None,
                "server_cpu_ms_per_request": r3(1000 * cpu / between) if between else None,
                "rss_mib": last["rss_mib"],
                "anon_mib": last["anon_mib"],
                "load1": last["load1"],
            }
        )
    return out


def table(result: dict[str, Any]) -> str:
    w, r, cpu, ops = result["window_s"], result["rss"], result["cpu"], result["ops"]
    expected = sum(o["expected_404"] for o in ops.values())
    health = result["health_ms"]
    lines = [
        f"{result['clients']} clients, {result['seconds']} s, {result['requests']:,} requests "
        f"({result['requests_per_s']}/s), {result['errors']['count']} errors, {expected} "
        f"expected 404s; server {cpu['server_cpu_cores']} cores, client {cpu['client_cpu_cores']}",
        f"RSS {r['start_mib']} MiB at the start, {r['warmup_end_mib']} MiB at "
        f"{r['warmup_end_s']} s (warm-up end), {r['end_mib']} MiB at the end: "
        f"{r['growth_pct']:+.1f}% (heap {r['anon_growth_mib']:+} MiB, mapped files "
        f"{r['file_growth_mib']:+} MiB; {r['slope_after_warmup_mib_per_min']} MiB/min after "
        f"the warm-up; peak {r['peak_mib']} MiB); growth from other warm-up ends: "
        + ", ".join(f"{k} {v:+.1f}%" for k, v in r["growth_pct_from"].items()),
        f"GET /v1/health p50 on the idle server: {health['idle_before']['p50']} ms before, "
        f"{health['idle_after']['p50']} ms after",
        "",
        f"| operation | n | p50 first {w:.0f} s | p50 last {w:.0f} s | drift "
        "| p99 first | p99 last | drift | p50 last / health |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op, o in ops.items():
        f, last = o["first"], o["last"]
        lines.append(
            f"| {op} | {o['n']:,} | {f['p50']} | {last['p50']} | {o['drift_p50']} "
            f"| {f['p99']} | {last['p99']} | {o['drift_p99']} | {o['last_p50_to_health']} |"
        )
    lines += [
        "",
        "| from s | requests | errors | server cores | server CPU-ms / request | RSS MiB "
        "| heap MiB | load (1 min) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for x in result["timeline"]:
        lines.append(
            f"| {x['from_s']:.0f} | {x['requests']:,} | {x['errors']} | {x['server_cores']} "
            f"| {x['server_cpu_ms_per_request']} | {x['rss_mib']} | {x['anon_mib']} "
            f"| {x['load1']} |"
        )
    return "\n".join(lines)


def summarize(
    result: dict[str, Any], rec: Recorder, samples: list[dict[str, Any]], warmup: float
) -> bool:
    """Fill in the figures; True when the run passed (no error, RSS growth within bounds)."""
    seconds = result["cpu"]["seconds"]
    window = min(60.0, seconds / 4)
    ops = window_stats(rec, seconds, window)
    under_load = ops.get("read.health", {}).get("last", {}).get("p50")
    for o in ops.values():
        o["last_p50_to_health"] = ratio(o["last"]["p50"], under_load)
    result.update(
        seconds=seconds,
        window_s=window,
        requests=sum(o["n"] for o in ops.values()),
        requests_per_s=round(sum(o["n"] for o in ops.values()) / seconds, 1),
        ops=ops,
        errors={
            "count": len(rec.errors),
            "by_op": dict(Counter(f"{e['op']} {e['status']}" for e in rec.errors)),
            "samples": rec.errors[:20],
        },
        rss=rss_summary(samples, seconds, warmup),
        timeline=timeline(rec, samples, window),
        samples=samples,
        load_average_end=load_average(),
    )
    result["health_ms"]["under_load_last_window"] = ops.get("read.health", {}).get("last")
    rss_ok = result["rss"]["growth_pct"] <= MAX_RSS_GROWTH * 100
    result["passed"] = {
        "no_errors": not rec.errors,
        "rss_growth_within_10pct": rss_ok,
        "rss_gated": result["rss_gated"],
    }
    return not rec.errors and (rss_ok or not result["rss_gated"])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--smoke", action="store_true", help="CI: 30 seconds, 500 pre-loaded texts")
    p.add_argument("--warmup", type=float, default=WARMUP_SHARE, help="share of the run")
    p.add_argument("--text-docs", type=int, default=None, help="pre-loaded texts (2000)")
    p.add_argument("--vector-docs", type=int, default=10_000, help="pre-loaded BYO vectors")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", type=Path, default=RESULTS_DIR, help="where the data dir goes")
    p.add_argument("--keep-data", action="store_true")
    p.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = p.parse_args(argv)
    s = Settings(
        0.5 if args.smoke else args.minutes,
        args.clients,
        args.text_docs or (500 if args.smoke else 2000),
        args.vector_docs,
        args.seed,
    )
    result: dict[str, Any] = {
        "benchmark": "stagewise soak",
        "command": " ".join(["python -m bench.soak", *(sys.argv[1:] if argv is None else argv)]),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": machine_info(),
        "git": git_revision(),
        "load_average_start": load_average(),
        "settings": s.__dict__,
        "clients": s.clients,
        "rss_gated": not args.smoke,  # see the module doc
        "health_ms": {},
    }
    args.data_root.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="soak-", dir=args.data_root))
    try:
        with start_server(data_dir, admin_key=ADMIN_KEY) as server:
            log(f"soak: setup (pre-loading {s.text_docs:,} texts and {s.vector_docs:,} vectors)")
            shared, inputs, keys, result["setup"] = setup(server.base_url, s)
            result["health_ms"]["idle_before"] = health_p50(server.base_url, 200)
            log(f"soak: {s.clients} clients for {s.minutes:g} min")
            pid = server.proc.pid
            rec, samples, result["cpu"] = soak(server.base_url, pid, s, shared, inputs, keys)
            time.sleep(5)  # queued execution records are written behind: let them settle
            result["health_ms"]["idle_after"] = health_p50(server.base_url, 200)
            with Api(server.base_url, ADMIN_KEY) as admin:
                result["index_after"] = admin.get("/v1/health/deep").get("index")
            if server.proc.poll() is not None:
                rec.error("server", f"the server exited with {server.proc.returncode}")
            result["server_log_tail"] = server.log_tail(2000)
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
    passed = summarize(result, rec, samples, args.warmup)
    out = args.out or RESULTS_DIR / ("soak-smoke.json" if args.smoke else "soak.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(table(result))
    for e in rec.errors[:10]:
        print(f"ERROR sample: {e}", file=sys.stderr)
    if rec.errors:
        print(f"FAIL: {len(rec.errors)} errors: {result['errors']['by_op']}", file=sys.stderr)
    if not result["passed"]["rss_growth_within_10pct"]:
        gated = "FAIL" if result["rss_gated"] else "NOTE (not gated in smoke mode)"
        print(
            f"{gated}: RSS grew {result['rss']['growth_pct']}% after the warm-up", file=sys.stderr
        )
    print(f"results: {out}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
