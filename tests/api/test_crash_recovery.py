"""Crash recovery (the hardening issue, point 2): executions are never left pending for good,
an acknowledged background execution survives a kill -9, and after every restart the
store holds every acknowledged write and the index agrees with it.

The crash test kills a server subprocess with SIGKILL at seeded random moments while client
threads write documents (text and BYO, and deletes) and run executions (blocking and
`wait=false`, named and adhoc). Reproduce a failure with the seed it prints:
STAGEWISE_CRASH_SEED=<seed> [STAGEWISE_CRASH_CYCLES=<n>] pytest tests/api/test_crash_recovery.py
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from stagewise.config import Settings
from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.ids import new_id, utc_now
from stagewise.services import execute as exe
from stagewise.services.context import open_stores
from stagewise.storage.protocols import MetadataStore
from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.storage.write_behind import WriteBehindExecutions
from tests.conftest import ADMIN_KEY
from tests.support.killable_server import KillableServer
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]

# A fixed default, so a failure reproduces; ~20 cycles take about a minute.
SEED = int(os.environ.get("STAGEWISE_CRASH_SEED", "20261129"))
CYCLES = int(os.environ.get("STAGEWISE_CRASH_CYCLES", "20"))

# Spelled out rather than imported, so this file also runs (and fails) on a main without it.
INTERRUPTED = "interrupted by server restart"
DIMS = 384
VECTOR = "all_minilm_l6_v2"
STORED_VECTOR = "text_extractor_v1_all_minilm_l6_v2"  # how a document answers it back
NS, COLLECTION = "crash", "notes"
SEARCH = {
    "stage_name": "search",
    "config": {
        "stage_id": "feature_search",
        "parameters": {
            "searches": [
                {
                    "feature_uri": "mixpeek://text_extractor@v1/all_minilm_l6_v2",
                    "query": {"input_mode": "text", "value": "{{INPUT.query}}"},
                    "top_k": 50,
                }
            ],
            "final_top_k": 20,
        },
    },
}
RETRIEVER = {
    "retriever_name": "crashes",
    "collection_identifiers": [COLLECTION],
    "input_schema": {"query": {"type": "text"}},
    "stages": [SEARCH],
}
WORDS = ["river", "garden", "stone", "window", "cloud", "engine", "paper", "signal"]
EVERY_DOC = {"AND": [{"field": "metadata.c", "operator": "gte", "value": -1}]}


def _headers(namespace: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    if namespace is not None:
        headers["X-Namespace"] = namespace
    return headers


def _ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, f"{resp.request.method} {resp.request.url}: {resp.text}"
    body: dict[str, Any] = resp.json()
    return body


# ---- deterministic checks


class _StalledWriter:
    """A MetadataStore whose write-behind writer thread is stalled until released: what the
    store holds meanwhile is what a kill -9 at that moment would leave."""

    def __init__(self, inner: MetadataStore) -> None:
        self.inner = inner
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def save_executions(self, items: Any) -> None:
        if threading.current_thread().name == "stagewise-exec-writer":
            self.release.wait(30)
        self.inner.save_executions(items)


def test_background_execution_is_committed_before_it_is_acknowledged(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", embedder="hash")
    stores = open_stores(settings)
    wrapper = stores.metadata
    assert isinstance(wrapper, WriteBehindExecutions)
    stalled = _StalledWriter(wrapper.inner)
    wrapper.inner = stalled
    ns = NamespaceRecord(namespace_id=new_id("ns_"), namespace_name="bg")
    stores.metadata.create_namespace(ns)
    target = exe.Target(stages=[], collection_ids=[], input_schema={}, budget_limits={})
    try:
        answer = exe.start_in_background(stores, exe.plan(stores, ns=ns, target=target, body={}))
        assert answer.status == "pending"
        # Another connection sees exactly what the database file holds right now.
        other = SqlMetadataStore(settings.resolved_database_url())
        try:
            stored = other.get_execution(ns.namespace_id, answer.execution_id)
        finally:
            other.close()
        assert stored is not None, "the acknowledged pending record is not committed"
        assert stored.status == "pending"
        deadline = time.monotonic() + 30
        while (run := exe.lookup(stores, ns.namespace_id, answer.execution_id)) is not None:
            if run.status in ("completed", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert run is not None and run.status == "completed"
    finally:
        stalled.release.set()
        stores.close()


def test_restart_fails_every_unfinished_execution(
    fresh_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = fresh_server(data, embedder="hash")
    _ok(first.client(ADMIN_KEY).post("/v1/namespaces", json={"namespace_name": NS}))
    http = first.client(ADMIN_KEY, NS)
    _ok(http.post("/v1/collections", json=_collection_body()))
    _ok(http.post(f"/v1/collections/{COLLECTION}/documents", json={"text": "a river stone"}))
    rid = _ok(http.post("/v1/retrievers", json=RETRIEVER))["retriever_id"]
    done = _ok(http.post(f"/v1/retrievers/{rid}/execute", json={"inputs": {"query": "river"}}))
    ns_id = _ok(first.client(ADMIN_KEY).get(f"/v1/namespaces/{NS}"))["namespace_id"]
    first.stop()

    # What a killed process leaves behind: runs it had acknowledged or started.
    store = SqlMetadataStore(Settings(data_dir=data).resolved_database_url())
    unfinished = {
        "named-pending": ExecutionRecord(
            execution_id=new_id("exec_", 16), namespace_id=ns_id, retriever_id=rid
        ),
        "named-processing": ExecutionRecord(
            execution_id=new_id("exec_", 16),
            namespace_id=ns_id,
            retriever_id=rid,
            status="processing",
            current_stage="search",
            started_at=utc_now(),
            total_stages=1,
        ),
        "adhoc-pending": ExecutionRecord(
            execution_id=new_id("exec_", 16), namespace_id=ns_id, mode="adhoc"
        ),
    }
    try:
        store.save_executions([(x, None) for x in unfinished.values()])
    finally:
        store.close()

    second = fresh_server(data, embedder="hash")
    http = second.client(ADMIN_KEY, NS)
    for name, x in unfinished.items():
        path = (
            f"/v1/retrievers/{rid}/executions/{x.execution_id}"
            if x.mode == "named"
            else f"/v1/retrievers/executions/{x.execution_id}"
        )
        body = _ok(http.get(path))
        assert body["status"] == "failed", name
        assert body["error"] == INTERRUPTED, name
        assert body["completed_at"] is not None, name
        assert body["current_stage"] is None, name
    again = _ok(http.get(f"/v1/retrievers/{rid}/executions/{done['execution_id']}"))
    assert again["status"] == "completed"
    assert [d["document_id"] for d in again["documents"]] == [
        d["document_id"] for d in done["documents"]
    ]
    running = {"status": "running"}
    assert (
        _ok(http.post(f"/v1/retrievers/{rid}/executions/list", json=running))["pagination"]["total"]
        == 0
    )
    assert _ok(http.post("/v1/retrievers/executions/list", json=running))["total"] == 0


# ---- the kill -9 test


def _collection_body() -> dict[str, Any]:
    return {
        "collection_name": COLLECTION,
        "source": {"type": "direct_upsert"},
        "feature_extractor": {"feature_extractor_name": "text_extractor", "version": "v1"},
    }


def _vector(n: int) -> list[float]:
    v = [0.0] * DIMS
    v[n % DIMS] = 1.0
    v[(7 * n + 3) % DIMS] += 0.5
    return v


@dataclass
class Doc:
    metadata: dict[str, Any]
    text: str | None = None  # text documents
    vector: list[float] | None = None  # BYO documents


@dataclass
class Ack:
    """An execute answered with a 200."""

    execution_id: str
    mode: str  # named | adhoc
    pending: bool  # answered pending (wait=false); else answered with a finished run
    thread: str
    order: int  # the answer's position among its thread's finished-run answers
    page: list[str]  # the answered page's document ids (finished runs)


@dataclass
class Ledger:
    """What the clients were told, and what is uncertain because it was in flight."""

    docs: dict[str, Doc] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    maybe_docs: dict[str, Doc] = field(default_factory=dict)  # BYO upserts in flight
    maybe_text: dict[str, Doc] = field(default_factory=dict)  # text creates in flight, by token
    maybe_deleted: set[str] = field(default_factory=set)
    acks: list[Ack] = field(default_factory=list)  # this cycle's
    settled: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # id: mode, status, n
    lost: set[str] = field(default_factory=set)  # finished runs answered but not stored
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


Worker = Callable[[httpx.Client, random.Random, Ledger, int, str], None]


def _text_writer(http: httpx.Client, rng: random.Random, led: Ledger, cycle: int, me: str) -> None:
    mine: list[str] = []
    for n in itertools.count():
        if mine and rng.random() < 0.15:
            victim = mine.pop(rng.randrange(len(mine)))
            with led.lock:
                led.maybe_deleted.add(victim)
            resp = http.delete(f"/v1/collections/{COLLECTION}/documents/{victim}")
            with led.lock:
                if resp.status_code != 200:
                    led.errors.append(f"delete {victim}: {resp.status_code} {resp.text}")
                    return
                led.maybe_deleted.discard(victim)
                led.docs.pop(victim)
                led.deleted.add(victim)
            continue
        token = f"t{cycle}-{n}"
        doc = Doc({"c": cycle, "token": token}, text=f"{rng.choice(WORDS)} note {token}")
        with led.lock:
            led.maybe_text[token] = doc
        resp = http.post(
            f"/v1/collections/{COLLECTION}/documents",
            json={"text": doc.text, "metadata": doc.metadata},
        )
        with led.lock:
            if resp.status_code != 200:
                led.errors.append(f"create {token}: {resp.status_code} {resp.text}")
                return
            del led.maybe_text[token]
            led.docs[resp.json()["document_id"]] = doc
        mine.append(resp.json()["document_id"])


def _byo_writer(http: httpx.Client, rng: random.Random, led: Ledger, cycle: int, me: str) -> None:
    n = 0
    while True:
        batch: dict[str, Doc] = {}
        for _ in range(rng.randint(1, 5)):
            doc_id = f"b{cycle}-{n}"
            batch[doc_id] = Doc({"c": cycle, "token": doc_id}, vector=_vector(cycle * 1000 + n))
            n += 1
        with led.lock:
            led.maybe_docs.update(batch)
        resp = http.post(
            f"/v1/namespaces/{NS}/documents/upsert",
            json={
                "collection_id": COLLECTION,
                "documents": [
                    {"document_id": i, "vectors": {VECTOR: d.vector}, "metadata": d.metadata}
                    for i, d in batch.items()
                ],
            },
        )
        with led.lock:
            if resp.status_code != 200:
                led.errors.append(f"upsert: {resp.status_code} {resp.text}")
                return
            for doc_id, doc in batch.items():
                del led.maybe_docs[doc_id]
                led.docs[doc_id] = doc


def _executor(background_share: float, adhoc_share: float, rid: str) -> Worker:
    def run(http: httpx.Client, rng: random.Random, led: Ledger, cycle: int, me: str) -> None:
        finished = 0
        while True:
            adhoc = rng.random() < adhoc_share
            params = {"wait": "false"} if rng.random() < background_share else {}
            query = {"query": f"{rng.choice(WORDS)} {rng.randrange(50)}"}
            if adhoc:
                body = {"collection_identifiers": [COLLECTION], "stages": [SEARCH]}
                body.update(input_schema=RETRIEVER["input_schema"], inputs=query)
                resp = http.post("/v1/retrievers/execute", json=body, params=params)
            else:
                resp = http.post(
                    f"/v1/retrievers/{rid}/execute", json={"inputs": query}, params=params
                )
            with led.lock:
                if resp.status_code != 200:
                    led.errors.append(f"execute: {resp.status_code} {resp.text}")
                    return
                out = resp.json()
                pending = out["status"] == "pending"
                if not pending and out["status"] != "completed":
                    led.errors.append(f"execute answered {out['status']}: {out.get('error')}")
                    return
                page = [d["document_id"] for d in out["documents"]]
                mode = "adhoc" if adhoc else "named"
                led.acks.append(Ack(out["execution_id"], mode, pending, me, finished, page))
            finished += 0 if pending else 1

    return run


def _client_loop(
    base_url: str, work: Worker, rng: random.Random, led: Ledger, cycle: int, me: str
) -> None:
    with httpx.Client(base_url=base_url, headers=_headers(NS), timeout=30) as http:
        try:
            work(http, rng, led, cycle, me)
        except httpx.TransportError:
            return  # the server was killed: what was in flight stays uncertain
        except Exception as exc:  # anything else is a failure, not a quiet thread death
            with led.lock:
                led.errors.append(f"{me}: {exc!r}")


def _list_all(
    http: httpx.Client, filters: dict[str, Any] | None, *, vectors: bool = False
) -> dict[str, dict[str, Any]]:
    """Every document, from the store (no filter) or through the index (a filter)."""
    out: dict[str, dict[str, Any]] = {}
    body: dict[str, Any] = {"limit": 1000, "return_vectors": vectors}
    if filters is not None:
        body["filters"] = filters
    for _ in range(1000):
        page = _ok(http.post(f"/v1/collections/{COLLECTION}/documents/list", json=body))
        out.update((d["document_id"], d) for d in page["results"])
        cursor = page["pagination"].get("next_cursor")
        if not cursor:
            return out
        body["cursor"] = cursor
    raise AssertionError("the document list did not end")


def _intact(doc_id: str, got: dict[str, Any], want: Doc, where: str) -> None:
    assert got["metadata"] == want.metadata, f"{where}: {doc_id} metadata changed"
    if want.text is not None:
        assert got.get("text") == want.text, f"{where}: {doc_id} text changed"
    if want.vector is not None and "vectors" in got:
        assert got["vectors"] == {STORED_VECTOR: pytest.approx(want.vector, abs=1e-6)}, (
            f"{where}: {doc_id} vector changed"
        )


def _verify_documents(http: httpx.Client, led: Ledger, cycle: int, where: str) -> int:
    stored = _list_all(http, None)
    for doc_id, doc in led.docs.items():
        assert doc_id in stored or doc_id in led.maybe_deleted, f"{where}: lost {doc_id}"
        if doc_id in stored:
            _intact(doc_id, stored[doc_id], doc, where)
    for doc_id in led.deleted:
        assert doc_id not in stored, f"{where}: deleted {doc_id} is back"
    for doc_id in led.maybe_deleted:
        if doc_id not in stored:
            led.docs.pop(doc_id)
            led.deleted.add(doc_id)
    for doc_id, doc in led.maybe_docs.items():
        if doc_id in stored:  # in flight at the kill: either outcome, but whole
            _intact(doc_id, stored[doc_id], doc, where)
            led.docs[doc_id] = doc
    by_token = {d.metadata["token"]: d for d in led.docs.values()}
    for doc_id, got in stored.items():
        if doc_id in led.docs:
            continue
        token = got["metadata"].get("token")
        want = led.maybe_text.get(token)
        assert want is not None and token not in by_token, f"{where}: unknown {doc_id} {token}"
        _intact(doc_id, got, want, where)
        led.docs[doc_id] = want
        del led.maybe_text[token]
    led.maybe_docs.clear()
    led.maybe_text.clear()
    led.maybe_deleted.clear()
    assert set(stored) == set(led.docs), where

    # The index agrees with the store: as many points as live documents, and a listing
    # through the index (a filter every document matches) finds every one of them.
    count = _ok(http.get(f"/v1/collections/{COLLECTION}/documents/count"))["count"]
    col = _ok(http.get(f"/v1/collections/{COLLECTION}"))
    assert count == col["document_count"] == len(stored), where
    assert col["indexing_status"] == "quiesced", f"{where}: index and store disagree: {col}"
    assert set(_list_all(http, EVERY_DOC)) == set(stored), f"{where}: the index misses documents"
    # This cycle's documents once more, with their vectors (earlier ones were checked then).
    this_cycle = {"AND": [{"field": "metadata.c", "operator": "eq", "value": cycle}]}
    fresh = _list_all(http, this_cycle, vectors=True)
    assert set(fresh) == {i for i, d in led.docs.items() if d.metadata["c"] == cycle}, where
    for doc_id, got in fresh.items():
        _intact(doc_id, got, led.docs[doc_id], where)
    return len(stored)


def _verify_executions(http: httpx.Client, led: Ledger, rid: str, where: str) -> int:
    """Checks this cycle's answers one by one, then every stored run through the lists.
    Returns how many acknowledged background runs the restart found interrupted."""
    interrupted = 0
    completed: dict[str, list[tuple[int, bool]]] = {}
    for ack in led.acks:
        path = (
            f"/v1/retrievers/{rid}/executions/{ack.execution_id}"
            if ack.mode == "named"
            else f"/v1/retrievers/executions/{ack.execution_id}"
        )
        resp = http.get(path, params={"limit": 1000})
        if resp.status_code == 404:
            # Only a finished run's record may be lost (written behind its answer).
            assert not ack.pending, f"{where}: acknowledged background run {ack} was lost"
            led.lost.add(ack.execution_id)
            completed.setdefault(ack.thread, []).append((ack.order, False))
            continue
        x = _ok(resp)
        assert x["status"] in ("completed", "failed"), f"{where}: {ack} left {x['status']}"
        if x["status"] == "failed":
            assert x["error"] == INTERRUPTED, f"{where}: {ack} failed: {x['error']}"
            assert x["completed_at"] is not None and x["current_stage"] is None, where
            interrupted += ack.pending
        else:
            assert len(x["documents"]) == min(x["total_returned"], 1000), where
        if not ack.pending:
            ok = x["status"] == "completed"
            if ok:
                got = [d["document_id"] for d in x["documents"]][: len(ack.page)]
                assert got == ack.page, f"{where}: {ack} came back with other results"
            else:
                led.lost.add(ack.execution_id)  # its outcome was lost, its progress was not
            completed.setdefault(ack.thread, []).append((ack.order, ok))
        led.settled[ack.execution_id] = (ack.mode, x["status"], x["total_returned"])
    # Records are committed in the order they were queued: of each thread's finished runs,
    # what survived is a prefix.
    for thread, marks in completed.items():
        flags = [ok for _, ok in sorted(marks)]
        assert flags == sorted(flags, reverse=True), f"{where}: {thread} kept a non-prefix"
    led.acks.clear()

    running = {"status": "running"}
    named = f"/v1/retrievers/{rid}/executions/list"
    assert _ok(http.post(named, json=running))["pagination"]["total"] == 0, where
    assert _ok(http.post("/v1/retrievers/executions/list", json=running))["total"] == 0, where
    listed: dict[str, tuple[str, str, int]] = {}
    for mode, path, size in (
        ("named", named, 1000),
        ("adhoc", "/v1/retrievers/executions/list", 100),
    ):
        for offset in range(0, 10**6, size):
            page = _ok(http.post(path, params={"limit": size, "offset": offset}, json={}))
            for row in page["results"]:
                listed[row["execution_id"]] = (mode, row["status"], row["total_returned"])
            if not page["pagination"]["has_next"]:
                break
    assert all(status in ("completed", "failed") for _, status, _ in listed.values()), where
    for execution_id, state in led.settled.items():
        assert listed.get(execution_id) == state, f"{where}: {execution_id} changed or vanished"
    assert not led.lost & set(listed), f"{where}: a lost run came back"
    return interrupted


@pytest.fixture
def killable(tmp_path: Path) -> Iterator[KillableServer]:
    server = KillableServer(tmp_path / "data", ADMIN_KEY, {"STAGEWISE_EMBEDDER": "hash"})
    yield server
    server.kill()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill_9_at_random_points_loses_nothing_acknowledged(killable: KillableServer) -> None:
    rng = random.Random(SEED)
    led = Ledger()
    killable.start()
    with httpx.Client(base_url=killable.base_url, headers=_headers(), timeout=30) as admin:
        _ok(admin.post("/v1/namespaces", json={"namespace_name": NS}))
    with httpx.Client(base_url=killable.base_url, headers=_headers(NS), timeout=30) as http:
        _ok(http.post("/v1/collections", json=_collection_body()))
        rid = str(_ok(http.post("/v1/retrievers", json=RETRIEVER))["retriever_id"])
        for i in range(20):
            doc = Doc({"c": -1, "token": f"seed-{i}"}, text=f"{WORDS[i % len(WORDS)]} seed {i}")
            body = {"text": doc.text, "metadata": doc.metadata}
            led.docs[
                _ok(http.post(f"/v1/collections/{COLLECTION}/documents", json=body))["document_id"]
            ] = doc
    workers: dict[str, Worker] = {
        "text": _text_writer,
        "byo": _byo_writer,
        "mixed": _executor(0.5, 0.3, rid),
        "burst-1": _executor(0.9, 0.5, rid),
        "burst-2": _executor(0.9, 0.5, rid),
    }
    docs = 0
    totals = {"acks": 0, "background": 0, "interrupted": 0}
    for cycle in range(CYCLES):
        where = f"seed {SEED}, cycle {cycle}"
        threads = [
            threading.Thread(
                target=_client_loop,
                args=(
                    killable.base_url,
                    work,
                    random.Random(f"{SEED}:{cycle}:{name}"),
                    led,
                    cycle,
                    name,
                ),
                name=f"crash-{name}",
            )
            for name, work in workers.items()
        ]
        for t in threads:
            t.start()
        # The kill lands at a random point of the load (a deliberate wait, not a sync one).
        time.sleep(rng.uniform(0.1, 1.0))
        killable.kill()
        for t in threads:
            t.join(timeout=60)
            assert not t.is_alive(), f"{where}: client thread {t.name} hung"
        assert not led.errors, f"{where}: {led.errors[:5]}"
        totals["acks"] += len(led.acks)
        totals["background"] += sum(a.pending for a in led.acks)
        killable.start()
        with httpx.Client(base_url=killable.base_url, headers=_headers(NS), timeout=60) as http:
            docs = _verify_documents(http, led, cycle, where)
            totals["interrupted"] += _verify_executions(http, led, rid, where)
    lost = len(led.lost)
    print(f"crash test: seed {SEED}, {CYCLES} cycles, {docs} documents, {totals}, lost {lost}")
    # The load did what the test is about: background runs were in flight at kills.
    assert totals["background"] >= CYCLES and totals["interrupted"] > 0, totals
