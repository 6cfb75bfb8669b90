"""The index as a follower of the SQL log: two indexes over one store, as two workers have.

Worker A writes (commit, then apply its own write); worker B only reads. B must see every
write A acknowledged on a strong read, may lag on an eventual one within its staleness bound,
must honour a write token, and must apply deletes and re-writes in `seq` order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagewise.domain.records import CollectionRecord, DocumentRecord, VectorIndexSpec
from stagewise.services.follower import STRONG, Consistency, IndexFollower
from stagewise.storage.index.edge import EdgeSearchIndex
from stagewise.storage.protocols import SearchRequest
from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.testing.metadata_store import make_collection, make_doc, make_namespace

pytestmark = pytest.mark.unit

DIMS = 4


class World:
    def __init__(self, tmp: Path) -> None:
        self.store = SqlMetadataStore(f"sqlite:///{tmp / 'meta.db'}")
        ns = make_namespace()
        self.store.create_namespace(ns)
        spec = VectorIndexSpec(
            name="emb", short_name="emb", feature_uri="mixpeek://emb@v1", dimensions=DIMS
        )
        self.col: CollectionRecord = make_collection(ns.namespace_id, vector_indexes=[spec])
        self.store.create_collection(self.col)
        self.a = IndexFollower(self.store, EdgeSearchIndex(tmp / "a"), exclusive=False)
        self.b = IndexFollower(self.store, EdgeSearchIndex(tmp / "b"), exclusive=False)
        for f in (self.a, self.b):
            f.index.ensure_collection(self.col)

    def write(self, *docs: DocumentRecord) -> list[DocumentRecord]:
        with self.a.lock(self.col.collection_id):
            stored = self.store.upsert_documents(list(docs))
            self.a.apply_own_write(self.col, stored)
        return stored

    def delete(self, document_id: str) -> None:
        with self.a.lock(self.col.collection_id):
            self.store.delete_documents(self.col.collection_id, [document_id])
            self.a.catch_up(self.col)

    def doc(self, document_id: str, x: float, tag: str) -> DocumentRecord:
        return make_doc(
            self.col, document_id, vectors={"emb": [x, 1.0, 0.0, 0.0]}, metadata={"tag": tag}
        )

    def read(self, follower: IndexFollower, consistency: Consistency = STRONG) -> dict[str, str]:
        """What a search on that worker answers: document id -> tag."""
        head = self.store.collection_signature(self.col.collection_id)
        follower.ensure_fresh(self.col, head, consistency)
        (answer,) = follower.index.search(
            self.col.collection_id,
            [SearchRequest(limit=100, vector_name="emb", vector=[1.0, 1.0, 0.0, 0.0])],
        )
        return {h.document_id: h.payload["metadata"]["tag"] for h in answer.hits}

    def close(self) -> None:
        for f in (self.a, self.b):
            f.stop()
            f.index.close()
        self.store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def test_strong_read_on_another_worker_sees_every_acknowledged_write(world: World) -> None:
    for i in range(30):
        world.write(world.doc(f"d{i}", float(i), f"v{i}"))
        # B never applied anything on its own: the read itself must catch up.
        seen = world.read(world.b)
        assert f"d{i}" in seen and len(seen) == i + 1
    world.write(world.doc("d3", 3.0, "rewritten"))
    world.delete("d4")
    seen = world.read(world.b)
    assert seen["d3"] == "rewritten" and "d4" not in seen and len(seen) == 29
    assert world.read(world.a) == seen
    assert world.b.applied(world.col.collection_id) == world.store.collection_signature(
        world.col.collection_id
    )


def test_eventual_read_may_lag_within_its_bound_then_catches_up(world: World) -> None:
    world.write(world.doc("d0", 0.0, "first"))
    assert world.read(world.b) == {"d0": "first"}  # synced now
    world.write(world.doc("d1", 1.0, "second"))
    lagging = Consistency(mode="eventual", max_staleness_ms=60_000)
    assert world.read(world.b, lagging) == {"d0": "first"}  # allowed: synced < 60 s ago
    stale = Consistency(mode="eventual", max_staleness_ms=0)
    time.sleep(0.01)
    assert world.read(world.b, stale) == {"d0": "first", "d1": "second"}


def test_a_write_token_reads_strong_up_to_its_write(world: World) -> None:
    world.write(world.doc("d0", 0.0, "first"))
    world.read(world.b)
    (stored,) = world.write(world.doc("d1", 1.0, "mine"))
    token = Consistency(
        mode="eventual", max_staleness_ms=60_000, tokens=((world.col.collection_id, stored.seq),)
    )
    assert world.read(world.b, token)["d1"] == "mine"


def test_the_background_loop_catches_up_without_any_read(world: World) -> None:
    follower = IndexFollower(world.store, world.b.index, exclusive=False, poll_s=0.05)
    follower.start()
    try:
        world.write(*(world.doc(f"d{i}", float(i), "x") for i in range(5)))
        deadline = time.monotonic() + 10
        head = world.store.collection_signature(world.col.collection_id)
        while follower.applied(world.col.collection_id) < head:
            assert time.monotonic() < deadline, "the follower never caught up"
            time.sleep(0.02)
        assert world.b.index.count(world.col.collection_id) == 5
    finally:
        follower.stop()


def test_concurrent_writers_and_readers_converge(world: World) -> None:
    """Writes from two threads of worker A while B reads strong: every read answers at least
    every write acknowledged before it began, and B ends identical to A."""
    acknowledged: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def writer(prefix: str) -> None:
        for i in range(40):
            world.write(world.doc(f"{prefix}{i}", float(i), prefix))
            with lock:
                acknowledged.append(f"{prefix}{i}")

    def reader() -> None:
        for _ in range(40):
            with lock:
                before = list(acknowledged)
            seen = world.read(world.b)
            missing = set(before) - set(seen)
            if missing:
                errors.append(f"missing {sorted(missing)[:3]}")

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("p", "q")]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert world.read(world.b) == world.read(world.a)
    assert len(world.read(world.b)) == 80


def test_two_writers_apply_each_others_writes_in_order(world: World) -> None:
    """A and B both write (overwrites and deletes of the same ids, interleaved); each applies
    its own write without reading it back, and the other's from the log first: both indexes
    end equal to the store."""
    writers = (world.a, world.b)
    truth: dict[str, str] = {}
    for step in range(60):
        me = writers[step % 2]
        doc_id = f"d{step % 7}"
        with me.lock(world.col.collection_id):
            if step % 5 == 4 and doc_id in truth:
                world.store.delete_documents(world.col.collection_id, [doc_id])
                me.catch_up(world.col)
                del truth[doc_id]
            else:
                stored = world.store.upsert_documents([world.doc(doc_id, float(step), f"s{step}")])
                me.apply_own_write(world.col, stored)
                truth[doc_id] = f"s{step}"
        assert world.read(me, Consistency(mode="eventual", max_staleness_ms=60_000)) == truth
    assert world.read(world.a) == world.read(world.b) == truth
