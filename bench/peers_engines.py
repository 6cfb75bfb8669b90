"""The engines `bench.peers` compares, behind one small interface.

- `Stagewise`: `python -m stagewise serve` (this checkout's code) as a child process on its
  embedded defaults, driven over HTTP; the filter is a templated feature_search pre-filter.
- `Chroma`: `chroma run` (its Rust HTTP server) as a child process from a separate virtualenv,
  driven over its v2 REST API with httpx (no chromadb package in our environment).
- `LanceDB`: embedded, in this process (imported lazily), an IVF_PQ index.
- `Exact`: numpy brute force over the category's own rows, one BLAS thread (the floor).

Each engine: `load(vectors, categories)` -> ingest figures, `ready()` -> figures of the wait
for its index, `querier()` -> a per-thread callable (vector, category) -> row ids, `rss()`,
`close()`. Row i is document ``p<i>`` with ``category = i % N_VALUES``.
"""

from __future__ import annotations

import base64
import os
import queue
import shutil
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from numpy.typing import NDArray

from bench.common import REPO_ROOT, BenchError, free_port, start_server
from bench.measure import ADMIN_KEY, Client, completed, rss_bytes

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]
Querier = Callable[[F32, int], list[int]]

K = 10
BATCH = 1000  # documents per upsert / add call, every engine
CHROMA_VENV = Path(os.environ.get("PEERS_CHROMA_VENV", "/work/peers-venv"))
NO_TELEMETRY = {"ANONYMIZED_TELEMETRY": "False", "CHROMA_TELEMETRY": "False"}


def _batches(n: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, BATCH):
        yield lo, min(n, lo + BATCH)


def _timed_feed(bodies: Iterator[bytes], send: Callable[[bytes], None], n: int) -> dict[str, Any]:
    """Send pre-encoded bodies; a producer thread encodes the next ones meanwhile, so the rate is
    the engine's, not the client's encoder's."""
    q: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for body in bodies:
                q.put(body)
        except BaseException as exc:  # surfaced below
            failure.append(exc)
        finally:
            q.put(None)

    threading.Thread(target=produce, daemon=True).start()
    t0 = time.perf_counter()
    while (body := q.get()) is not None:
        send(body)
    seconds = time.perf_counter() - t0
    if failure:
        raise BenchError(f"encoding bodies failed: {failure[0]!r}")
    return {"documents": n, "seconds": round(seconds, 2), "docs_per_s": round(n / seconds, 1)}


# ---------------------------------------------------------------------------------------------


class Stagewise:
    name = "stagewise"
    NAMESPACE, COLLECTION, FEATURE = "peers", "pts", "emb"

    def __init__(self, data_dir: Path, build_timeout: float) -> None:
        self.data_dir = data_dir
        self.build_timeout = build_timeout
        # The child runs this checkout's code (the package may be installed from elsewhere).
        env = {"PYTHONPATH": str(REPO_ROOT / "src")}
        self.server = start_server(data_dir, admin_key=ADMIN_KEY, env=env)
        self.url = self.server.base_url
        self.rid = ""
        self.collection_id = ""

    def retriever(self) -> dict[str, Any]:
        """The filter as users write it: a templated pre-filter, typed by the input schema."""
        cond = {"field": "metadata.category", "operator": "eq", "value": "{{INPUT.category}}"}
        search = {
            "feature_uri": self.FEATURE,
            "top_k": K,
            "query": {"input_mode": "vector", "value": "{{INPUT.v}}"},
        }
        config = {
            "stage_id": "feature_search",
            "parameters": {"final_top_k": K, "searches": [search]},
            "pre_filters": {"AND": [cond]},
        }
        return {
            "retriever_name": "peers",
            "collection_identifiers": [self.COLLECTION],
            "input_schema": {"category": {"type": "integer"}, "v": {"type": "array"}},
            "stages": [{"stage_name": "search", "config": config}],
        }

    def load(self, vectors: F32, categories: I64) -> dict[str, Any]:
        """Namespace, collection and retriever first (as a user has them), then BYO upserts of
        BATCH documents over HTTP."""
        admin, client = Client(self.url, None), Client(self.url, self.NAMESPACE)
        try:
            configs = [{"name": self.FEATURE, "dimension": int(vectors.shape[1])}]
            admin.call(
                "POST",
                "/v1/namespaces",
                {"namespace_name": self.NAMESPACE, "vector_configs": configs},
            )
            body = {"collection_name": self.COLLECTION, "source": {"type": "direct_upsert"}}
            col, _ = client.call("POST", "/v1/collections", body)
            self.collection_id = str(col["collection_id"])
            self.rid = client.call("POST", "/v1/retrievers", self.retriever())[0]["retriever_id"]

            def bodies() -> Iterator[bytes]:
                for lo, hi in _batches(len(vectors)):
                    block = np.array(vectors[lo:hi])
                    docs = [
                        {
                            "document_id": f"p{i}",
                            "vectors": {self.FEATURE: row},
                            "metadata": {"category": int(categories[i])},
                        }
                        for i, row in enumerate(block, start=lo)
                    ]
                    doc = {"collection_id": self.COLLECTION, "documents": docs}
                    yield orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)

            path = f"/v1/namespaces/{self.NAMESPACE}/documents/upsert"
            return _timed_feed(bodies(), lambda b: admin.send("POST", path, b), len(vectors))
        finally:
            admin.close()
            client.close()

    def index_state(self) -> dict[str, Any]:
        client = Client(self.url, None)
        try:
            state, _ = client.call("GET", "/v1/health/deep")
        finally:
            client.close()
        return dict(state["index"][self.collection_id])

    def ready(self) -> dict[str, Any]:
        """Wait until no background build runs and none is due: the builder idle on two polls in
        a row, with a build installed (or the collection under the build threshold), or
        `build_timeout` seconds. Reports what stayed outside HNSW."""
        t0, idle = time.perf_counter(), 0
        first = self.index_state()
        while True:
            state = self.index_state()
            idle = idle + 1 if state.get("build") is None else 0
            if idle >= 3 and (
                state.get("last_build") is not None or state["unindexed_points"] < 20_000
            ):
                break
            if time.perf_counter() - t0 > self.build_timeout:
                return {
                    "timed_out": True,
                    "seconds": round(time.perf_counter() - t0, 1),
                    "state": state,
                }
            time.sleep(2.0)
        return {
            "seconds_waited": round(time.perf_counter() - t0, 1),
            "points": state.get("points"),
            "unindexed_points": state["unindexed_points"],
            "last_build": state.get("last_build"),
            "state_after_ingest": first,
        }

    def querier(self) -> Querier:
        client = Client(self.url, self.NAMESPACE)
        path = f"/v1/retrievers/{self.rid}/execute"

        def query(v: F32, category: int) -> list[int]:
            body = {"skip_cache": True, "inputs": {"category": category, "v": v}}
            out, _ = client.call("POST", path, body)
            return [int(d["document_id"][1:]) for d in completed(out)["documents"]]

        return query

    def rss(self) -> int:
        return rss_bytes(self.server.proc.pid).get("VmRSS", 0)

    def close(self) -> None:
        self.server.stop()


# ---------------------------------------------------------------------------------------------


class Chroma:
    name = "chroma"
    BASE = "/api/v2/tenants/default_tenant/databases/default_database/collections"

    def __init__(self, data_dir: Path, startup_timeout: float = 120) -> None:
        exe = CHROMA_VENV / "bin" / "chroma"
        if not exe.exists():
            raise BenchError(
                f"{exe} not found: make a virtualenv with `pip install chromadb` there, or set "
                "PEERS_CHROMA_VENV (see bench/peers.py)"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (data_dir.parent / f"{data_dir.name}.log").open("ab")
        env = {**os.environ, **NO_TELEMETRY}
        cmd = [
            str(exe),
            "run",
            "--path",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.http = httpx.Client(base_url=self.url, timeout=600)
        deadline = time.monotonic() + startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"chroma exited with code {self.proc.returncode} at start-up")
            try:
                if self.http.get("/api/v2/heartbeat").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise BenchError("chroma did not start")
            time.sleep(0.2)
        self.cid = ""

    def _post(self, http: httpx.Client, path: str, content: bytes) -> Any:
        r = http.post(path, content=content, headers={"content-type": "application/json"})
        if not r.is_success:
            raise BenchError(f"chroma POST {path} -> HTTP {r.status_code}: {r.text[:1000]}")
        return orjson.loads(r.content) if r.content else None

    def load(self, vectors: F32, categories: I64) -> dict[str, Any]:
        """A cosine HNSW collection (Chroma's default HNSW settings), then `add` calls of BATCH
        documents with base64 float32 embeddings, as chromadb's own HTTP client sends them."""
        body = {"name": "pts", "configuration": {"hnsw": {"space": "cosine"}}}
        self.cid = self._post(self.http, self.BASE, orjson.dumps(body))["id"]

        def bodies() -> Iterator[bytes]:
            for lo, hi in _batches(len(vectors)):
                block = np.ascontiguousarray(vectors[lo:hi], dtype="<f4")
                doc = {
                    "ids": [f"p{i}" for i in range(lo, hi)],
                    "embeddings": [base64.b64encode(row.tobytes()).decode() for row in block],
                    "metadatas": [{"category": int(c)} for c in categories[lo:hi]],
                }
                yield orjson.dumps(doc)

        path = f"{self.BASE}/{self.cid}/add"
        return _timed_feed(bodies(), lambda b: self._post(self.http, path, b), len(vectors))

    def ready(self) -> dict[str, Any]:
        return {"note": "served as is (Chroma applies its log on its own)"}

    def querier(self) -> Querier:
        http = httpx.Client(base_url=self.url, timeout=600)
        path = f"{self.BASE}/{self.cid}/query"

        def query(v: F32, category: int) -> list[int]:
            body = {
                "query_embeddings": [v],
                "n_results": K,
                "where": {"category": category},
                "include": [],
            }
            out = self._post(http, path, orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY))
            return [int(i[1:]) for i in out["ids"][0]]

        return query

    def rss(self) -> int:
        return rss_bytes(self.proc.pid).get("VmRSS", 0)

    def close(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()  # our own child, by its handle
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.log.close()


# ---------------------------------------------------------------------------------------------


class LanceDB:
    """Embedded; table created from all rows in one call, then an IVF_PQ index (cosine, the
    library's default partitions and sub-vectors) and a BITMAP scalar index on category."""

    name = "lancedb"

    def __init__(self, data_dir: Path, refine_factor: int | None = None) -> None:
        import lancedb  # lazy: bench --quick must not need the peers

        self.lancedb = lancedb
        self.data_dir = data_dir
        self.rss0 = rss_bytes(os.getpid()).get("VmRSS", 0)
        self.db = lancedb.connect(str(data_dir))
        self.table: Any = None
        self.refine_factor = refine_factor

    def variant(self, name: str, refine_factor: int) -> LanceDB:
        """The same table and process, queried with `refine_factor` (IVF_PQ candidates re-ranked
        by their full vectors)."""
        other = object.__new__(LanceDB)
        other.__dict__.update(self.__dict__)
        other.name, other.refine_factor = name, refine_factor
        return other

    def load(self, vectors: F32, categories: I64) -> dict[str, Any]:
        import pyarrow as pa

        n, dim = vectors.shape
        t0 = time.perf_counter()
        flat = pa.array(np.asarray(vectors, dtype=np.float32).reshape(-1))
        data = pa.table(
            {
                "id": pa.array(np.arange(n, dtype=np.int64)),
                "category": pa.array(categories.astype(np.int64)),
                "vector": pa.FixedSizeListArray.from_arrays(flat, int(dim)),
            }
        )
        self.table = self.db.create_table("pts", data=data, mode="overwrite")
        create_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        with warnings.catch_warnings():  # the older call style, still documented
            warnings.simplefilter("ignore")
            self.table.create_index(
                metric="cosine", vector_column_name="vector", index_type="IVF_PQ"
            )
            index_s = time.perf_counter() - t1
            t2 = time.perf_counter()
            self.table.create_scalar_index("category", index_type="BITMAP")
        scalar_s = time.perf_counter() - t2
        return {
            "documents": n,
            "seconds": round(create_s, 2),
            "docs_per_s": round(n / create_s, 1),
            "index": "IVF_PQ (the default type), cosine, default partitions, sub-vectors, nprobes; "
            "BITMAP on category",
            "vector_index_seconds": round(index_s, 2),
            "scalar_index_seconds": round(scalar_s, 2),
            "docs_per_s_with_indexes": round(n / (create_s + index_s + scalar_s), 1),
        }

    def ready(self) -> dict[str, Any]:
        return {"indices": [str(i) for i in self.table.list_indices()]}

    def querier(self) -> Querier:
        table = self.db.open_table("pts")

        def query(v: F32, category: int) -> list[int]:
            q = (
                table.search(v, vector_column_name="vector")
                .distance_type("cosine")
                .where(f"category = {int(category)}", prefilter=True)
                .select(["id", "_distance"])  # without _distance: a warning per query
                .limit(K)
            )
            if self.refine_factor:
                q = q.refine_factor(self.refine_factor)
            return [int(i) for i in q.to_arrow()["id"].to_pylist()]

        return query

    def rss(self) -> int:
        """The bench process's RSS growth since this engine was opened."""
        return rss_bytes(os.getpid()).get("VmRSS", 0) - self.rss0

    def close(self) -> None:
        if self.name != "lancedb":
            return  # a variant: the base engine owns the table
        self.table = None
        shutil.rmtree(self.data_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------


class Exact:
    """numpy brute force over the category's own rows (gathered in advance), one BLAS thread at
    query time (the caller limits it)."""

    name = "exact"

    def __init__(self, vectors: F32, categories: I64) -> None:
        self.rows = {int(c): np.flatnonzero(categories == c) for c in np.unique(categories)}
        self.mats = {c: np.ascontiguousarray(vectors[r]) for c, r in self.rows.items()}

    def querier(self) -> Querier:
        def query(v: F32, category: int) -> list[int]:
            s = self.mats[category] @ v
            top = np.argpartition(-s, K - 1)[:K]
            return [int(i) for i in self.rows[category][top[np.argsort(-s[top])]]]

        return query

    def rss(self) -> int:
        return 0
