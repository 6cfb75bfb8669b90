"""The conformance suite every `MetadataStore` backend must pass.

Subclass `MetadataStoreConformance` in a test module whose class name starts with ``Test`` and
override the `store` fixture so that it yields a fresh, empty store for every test::

    class TestMyStore(MetadataStoreConformance):
        integrity_error = (MyDuplicateError,)

        @pytest.fixture
        def store(self, tmp_path: Path) -> Iterator[MetadataStore]:
            s = MyStore(tmp_path)
            yield s
            s.close()

Everything is checked by value, through the `MetadataStore` protocol only.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from stagewise.domain.pipeline_records import ExecutionRecord, RetrieverRecord
from stagewise.domain.records import (
    ApiKeyRecord,
    CollectionRecord,
    DocumentRecord,
    IdempotencyRecord,
    NamespaceRecord,
    VectorIndexSpec,
)
from stagewise.ids import new_id
from stagewise.storage.protocols import MetadataStore
from stagewise.testing.metadata_datasets import DatasetConformance
from stagewise.testing.metadata_interactions import InteractionConformance

# A fixed, microsecond-precise base time: every backend must keep microseconds.
T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
VECTOR_TOLERANCE = 1e-6


# ---------------------------------------------------------------------------------------------
# record builders


def make_namespace(name: str | None = None, *, at: datetime = T0, **kw: Any) -> NamespaceRecord:
    return NamespaceRecord(
        namespace_id=new_id("ns_"),
        namespace_name=name or new_id("name_"),
        created_at=at,
        updated_at=at,
        **kw,
    )


def make_collection(
    namespace_id: str, name: str | None = None, *, at: datetime = T0, **kw: Any
) -> CollectionRecord:
    return CollectionRecord(
        collection_id=new_id("col_"),
        namespace_id=namespace_id,
        collection_name=name or new_id("c_"),
        created_at=at,
        updated_at=at,
        **kw,
    )


def make_doc(col: CollectionRecord, document_id: str | None = None, **kw: Any) -> DocumentRecord:
    return DocumentRecord(
        document_id=document_id or new_id("doc_"),
        collection_id=col.collection_id,
        namespace_id=col.namespace_id,
        **kw,
    )


def make_docs(col: CollectionRecord, n: int, prefix: str = "doc") -> list[DocumentRecord]:
    return [make_doc(col, f"{prefix}_{i:05d}", fields={"i": i}) for i in range(n)]


def assert_utc(ts: datetime | None) -> None:
    assert ts is not None
    assert ts.tzinfo is not None, f"naive timestamp came back: {ts!r}"
    assert ts.utcoffset() == timedelta(0), f"timestamp is not UTC: {ts!r}"


def assert_vectors_close(got: dict[str, list[float]], want: dict[str, list[float]]) -> None:
    assert set(got) == set(want)
    for name, values in want.items():
        assert len(got[name]) == len(values), name
        for a, b in zip(got[name], values, strict=True):
            assert isinstance(a, float)
            assert math.isclose(a, b, rel_tol=0.0, abs_tol=VECTOR_TOLERANCE), (name, a, b)


def all_changes(store: MetadataStore, collection_id: str, *, limit: int) -> list[DocumentRecord]:
    """Walk changes_since from 0 to the end, page by page."""
    out: list[DocumentRecord] = []
    cursor = 0
    while True:
        page = store.changes_since(collection_id, cursor, limit=limit)
        assert len(page) <= limit
        if not page:
            return out
        out.extend(page)
        cursor = page[-1].seq


def all_live(store: MetadataStore, collection_id: str, *, limit: int) -> list[DocumentRecord]:
    """Walk list_documents by after_seq until next_after_seq is None."""
    out: list[DocumentRecord] = []
    after = 0
    for _ in range(100_000):
        page = store.list_documents(collection_id, after_seq=after, limit=limit)
        assert len(page.documents) <= limit
        assert all(d.seq > after for d in page.documents)
        out.extend(page.documents)
        if page.next_after_seq is None:
            return out
        assert page.documents, "a page with a next cursor must not be empty"
        assert page.next_after_seq == page.documents[-1].seq
        after = page.next_after_seq
    raise AssertionError("list_documents never ended")


def seqs(docs: Sequence[DocumentRecord]) -> list[int]:
    return [d.seq for d in docs]


# ---------------------------------------------------------------------------------------------
# the suite


class MetadataStoreConformance(InteractionConformance, DatasetConformance):
    """Shared behaviour of every MetadataStore. Subclasses provide the `store` fixture."""

    # What a duplicate (unique name, primary key) raises. Backends narrow it.
    integrity_error: tuple[type[BaseException], ...] = (Exception,)

    @pytest.fixture
    def store(self) -> MetadataStore:
        raise NotImplementedError(
            "subclasses must provide a `store` fixture yielding an empty store"
        )

    # ---- keys

    def test_key_create_and_lookup_by_hash(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        global_key = ApiKeyRecord(key_id=new_id("key_"), key_hash="h" * 64, name="admin")
        scoped = ApiKeyRecord(
            key_id=new_id("key_"),
            key_hash="s" * 64,
            name="reader",
            namespace_id=ns.namespace_id,
            read_only=True,
            created_at=T0,
        )
        store.create_key(global_key)
        store.create_key(scoped)
        assert store.get_key_by_hash("h" * 64) == global_key
        assert store.get_key_by_hash("s" * 64) == scoped
        assert store.get_key_by_hash("unknown") is None
        assert store.get_key_by_hash("h" * 63) is None

    def test_key_hash_is_unique(self, store: MetadataStore) -> None:
        first = ApiKeyRecord(key_id=new_id("key_"), key_hash="dup", name="first")
        store.create_key(first)
        with pytest.raises(self.integrity_error):
            store.create_key(ApiKeyRecord(key_id=new_id("key_"), key_hash="dup", name="second"))
        assert store.get_key_by_hash("dup") == first

    def test_key_expiry_revocation_and_prefix_round_trip(self, store: MetadataStore) -> None:
        key = ApiKeyRecord(
            key_id=new_id("key_"),
            key_hash="e" * 64,
            key_prefix="sk_abcdefg",
            created_at=T0,
            expires_at=T0 + timedelta(days=30, microseconds=7),
            revoked_at=T0.astimezone(timezone(timedelta(hours=-5))),  # stored as UTC
        )
        store.create_key(key)
        for found in (store.get_key_by_hash("e" * 64), store.get_key(key.key_id)):
            assert found is not None
            assert found == key.model_copy(update={"revoked_at": T0})
            assert found.expires_at is not None and found.revoked_at is not None
            assert_utc(found.expires_at)
            assert_utc(found.revoked_at)

    def test_get_and_list_keys(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        made = [
            ApiKeyRecord(
                key_id=new_id("key_"),
                key_hash=f"{i}" * 64,
                name=f"k{i}",
                namespace_id=ns.namespace_id if i % 2 else None,
                read_only=i == 2,
                created_at=T0 + timedelta(minutes=3 - i),
            )
            for i in range(4)
        ]
        assert store.list_keys() == []
        for key in made:
            store.create_key(key)
        store.revoke_key(made[1].key_id, T0)
        listed = store.list_keys()
        assert [k.key_id for k in listed] == [k.key_id for k in reversed(made)]  # oldest first
        assert listed[2].revoked_at == T0  # revoked keys are still listed
        assert store.get_key(made[0].key_id) == made[0]
        assert store.get_key("key_unknown") is None

    def test_revoke_key_holds_on_the_next_lookup(self, store: MetadataStore) -> None:
        key = ApiKeyRecord(key_id=new_id("key_"), key_hash="r" * 64, created_at=T0)
        other = ApiKeyRecord(key_id=new_id("key_"), key_hash="o" * 64, created_at=T0)
        store.create_key(key)
        store.create_key(other)
        # Looked up first, as a request would: a caching backend must not serve this again.
        assert store.get_key_by_hash("r" * 64) == key
        at = T0 + timedelta(hours=1)
        revoked = store.revoke_key(key.key_id, at)
        assert revoked == key.model_copy(update={"revoked_at": at})
        assert store.get_key_by_hash("r" * 64) == revoked
        assert store.get_key(key.key_id) == revoked
        # Revoking again keeps the first time; other keys are untouched; unknown is None.
        assert store.revoke_key(key.key_id, at + timedelta(hours=1)) == revoked
        assert store.get_key_by_hash("o" * 64) == other
        assert store.revoke_key("key_unknown", at) is None

    # ---- namespaces

    def test_namespace_create_and_get_by_id_and_name(self, store: MetadataStore) -> None:
        ns = make_namespace(
            "products",
            description="Catalogue - ünïcode ✓",
            feature_extractors=[{"feature_extractor_name": "text_extractor", "version": "v1"}],
            payload_indexes=[{"field_name": "metadata.brand", "type": "keyword"}],
            vector_configs=[{"name": "v", "dimensions": 3}],
            settings={"nested": {"list": [1, 2.5, None, True, "x"]}, "empty": {}},
        )
        store.create_namespace(ns)
        assert store.get_namespace(ns.namespace_id) == ns
        assert store.get_namespace("products") == ns
        assert store.get_namespace("missing") is None
        assert store.get_namespace("") is None

    def test_namespace_id_match_wins_over_name(self, store: MetadataStore) -> None:
        a = make_namespace("alpha", at=T0)
        b = make_namespace(a.namespace_id, at=T0 + timedelta(seconds=1))  # b's name = a's id
        store.create_namespace(a)
        store.create_namespace(b)
        got = store.get_namespace(a.namespace_id)
        assert got is not None and got.namespace_id == a.namespace_id
        got = store.get_namespace(b.namespace_id)
        assert got is not None and got.namespace_id == b.namespace_id

    def test_list_namespaces(self, store: MetadataStore) -> None:
        assert store.list_namespaces() == []
        created = [make_namespace(f"ns{i}", at=T0 + timedelta(minutes=i)) for i in range(3)]
        for ns in reversed(created):
            store.create_namespace(ns)
        assert store.list_namespaces() == created  # oldest first

    def test_update_namespace(self, store: MetadataStore) -> None:
        ns = make_namespace("before", description="old")
        other = make_namespace("other")
        store.create_namespace(ns)
        store.create_namespace(other)
        changed = ns.model_copy(
            update={
                "namespace_name": "after",
                "description": "new",
                "settings": {"k": [1, 2]},
                "payload_indexes": [{"field_name": "f", "type": "integer"}],
                "updated_at": T0 + timedelta(hours=1),
            }
        )
        store.update_namespace(changed)
        assert store.get_namespace(ns.namespace_id) == changed
        assert store.get_namespace("after") == changed
        assert store.get_namespace("before") is None
        assert store.get_namespace(other.namespace_id) == other
        assert len(store.list_namespaces()) == 2

    def test_namespace_name_is_unique(self, store: MetadataStore) -> None:
        first = make_namespace("taken", description="first")
        store.create_namespace(first)
        dup = make_namespace("taken", description="second")
        with pytest.raises(self.integrity_error):
            store.create_namespace(dup)
        # Nothing of the failed insert is visible, and the original is untouched.
        assert store.get_namespace(dup.namespace_id) is None
        assert store.get_namespace("taken") == first
        assert store.list_namespaces() == [first]
        # The store still works after the failure.
        ok = make_namespace("free")
        store.create_namespace(ok)
        assert store.get_namespace("free") == ok

    def test_rename_namespace_onto_taken_name_fails(self, store: MetadataStore) -> None:
        a = make_namespace("a")
        b = make_namespace("b")
        store.create_namespace(a)
        store.create_namespace(b)
        with pytest.raises(self.integrity_error):
            store.update_namespace(b.model_copy(update={"namespace_name": "a", "description": "x"}))
        assert store.get_namespace(a.namespace_id) == a
        assert store.get_namespace(b.namespace_id) == b

    def test_delete_namespace(self, store: MetadataStore) -> None:
        ns = make_namespace("gone")
        keep = make_namespace("kept")
        store.create_namespace(ns)
        store.create_namespace(keep)
        store.delete_namespace(ns.namespace_id)
        assert store.get_namespace(ns.namespace_id) is None
        assert store.get_namespace("gone") is None
        assert store.list_namespaces() == [keep]
        store.delete_namespace(ns.namespace_id)  # deleting twice is a no-op
        store.delete_namespace("ns_unknown")
        assert store.list_namespaces() == [keep]
        # The name is free again.
        again = make_namespace("gone")
        store.create_namespace(again)
        assert store.get_namespace("gone") == again

    def test_delete_namespace_cascades_but_spares_other_namespaces(
        self, store: MetadataStore
    ) -> None:
        def populate(ns: NamespaceRecord, tag: str) -> tuple[CollectionRecord, ApiKeyRecord]:
            store.create_namespace(ns)
            col = make_collection(ns.namespace_id, "shared-name")
            store.create_collection(col)
            store.upsert_documents(make_docs(col, 7))
            store.delete_documents(col.collection_id, ["doc_00000"])  # leaves a tombstone
            store.put_idempotency(
                IdempotencyRecord(
                    namespace_id=ns.namespace_id, key="idem", request_hash=tag, response={"t": tag}
                )
            )
            key = ApiKeyRecord(
                key_id=new_id("key_"), key_hash=f"hash-{tag}", namespace_id=ns.namespace_id
            )
            store.create_key(key)
            store.create_retriever(
                RetrieverRecord(
                    retriever_id=new_id("ret_"),
                    namespace_id=ns.namespace_id,
                    retriever_name="shared-retriever",
                    collection_ids=[col.collection_id],
                )
            )
            store.save_execution(
                ExecutionRecord(execution_id=f"exec_{tag}", namespace_id=ns.namespace_id),
                [{"document_id": "doc_00001"}],
            )
            return col, key

        a, b = make_namespace("ns-a"), make_namespace("ns-b")
        col_a, key_a = populate(a, "a")
        col_b, key_b = populate(b, "b")
        global_key = ApiKeyRecord(key_id=new_id("key_"), key_hash="hash-global")
        store.create_key(global_key)

        store.delete_namespace(a.namespace_id)

        assert store.get_namespace(a.namespace_id) is None
        assert store.get_collection(a.namespace_id, col_a.collection_id) is None
        assert store.get_collection(a.namespace_id, "shared-name") is None
        assert store.list_collections(a.namespace_id) == []
        assert store.count_documents(col_a.collection_id) == 0
        assert store.get_documents(col_a.collection_id, ["doc_00001", "doc_00002"]) == {}
        assert store.changes_since(col_a.collection_id, 0) == []  # tombstones go too
        assert store.get_idempotency(a.namespace_id, "idem") is None
        assert store.get_key_by_hash("hash-a") is None
        assert store.get_retriever(a.namespace_id, "shared-retriever") is None
        assert store.get_execution(a.namespace_id, "exec_a") is None
        assert store.get_execution_results("exec_a", 0, 10) == []

        assert store.get_namespace(b.namespace_id) == b
        assert store.get_collection(b.namespace_id, "shared-name") == col_b
        assert store.count_documents(col_b.collection_id) == 6
        assert len(store.changes_since(col_b.collection_id, 0)) == 7
        idem_b = store.get_idempotency(b.namespace_id, "idem")
        assert idem_b is not None and idem_b.response == {"t": "b"}
        assert store.get_key_by_hash("hash-b") == key_b
        assert store.get_key_by_hash("hash-global") == global_key
        assert store.get_retriever(b.namespace_id, "shared-retriever") is not None
        assert store.get_execution(b.namespace_id, "exec_b") is not None
        assert store.get_execution_results("exec_b", 0, 10) == [{"document_id": "doc_00001"}]
        assert key_a != key_b

    # ---- collections

    def test_collection_create_and_get_by_id_and_name(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col = make_collection(
            ns.namespace_id,
            "articles",
            description="news",
            source={"type": "direct"},
            feature_extractor={"feature_extractor_name": "text_extractor", "version": "v1"},
            vector_indexes=[
                VectorIndexSpec(
                    name="text_extractor_v1_embedding",
                    short_name="embedding",
                    feature_uri="mixpeek://text_extractor@v1/embedding",
                    dimensions=384,
                    distance="dot",
                    inference_name="minilm",
                    input_field="text",
                )
            ],
            input_schema={"properties": {"text": {"type": "string"}}},
            metadata={"owner": "ünïcode"},
            enabled=False,
        )
        store.create_collection(col)
        assert store.get_collection(ns.namespace_id, col.collection_id) == col
        assert store.get_collection(ns.namespace_id, "articles") == col
        assert store.get_collection(ns.namespace_id, "missing") is None

    def test_collection_lookup_is_scoped_to_its_namespace(self, store: MetadataStore) -> None:
        a, b = make_namespace(), make_namespace()
        store.create_namespace(a)
        store.create_namespace(b)
        col_a = make_collection(a.namespace_id, "same")
        col_b = make_collection(b.namespace_id, "same")  # same name, other namespace: allowed
        store.create_collection(col_a)
        store.create_collection(col_b)
        assert store.get_collection(b.namespace_id, col_a.collection_id) is None
        assert store.get_collection(a.namespace_id, col_b.collection_id) is None
        assert store.get_collection(a.namespace_id, "same") == col_a
        assert store.get_collection(b.namespace_id, "same") == col_b
        assert store.list_collections(a.namespace_id) == [col_a]
        assert store.list_collections(b.namespace_id) == [col_b]

    def test_collection_name_is_unique_within_namespace(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        first = make_collection(ns.namespace_id, "dup")
        store.create_collection(first)
        dup = make_collection(ns.namespace_id, "dup", description="second")
        with pytest.raises(self.integrity_error):
            store.create_collection(dup)
        assert store.get_collection(ns.namespace_id, dup.collection_id) is None
        assert store.get_collection(ns.namespace_id, "dup") == first
        assert store.list_collections(ns.namespace_id) == [first]

    def test_list_update_delete_collections(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        assert store.list_collections(ns.namespace_id) == []
        cols = [
            make_collection(ns.namespace_id, f"c{i}", at=T0 + timedelta(seconds=i))
            for i in range(3)
        ]
        for col in reversed(cols):
            store.create_collection(col)
        assert store.list_collections(ns.namespace_id) == cols  # oldest first

        changed = cols[1].model_copy(
            update={
                "collection_name": "renamed",
                "description": "d",
                "metadata": {"a": 1},
                "enabled": False,
                "updated_at": T0 + timedelta(days=1),
            }
        )
        store.update_collection(changed)
        assert store.get_collection(ns.namespace_id, cols[1].collection_id) == changed
        assert store.get_collection(ns.namespace_id, "renamed") == changed
        assert store.get_collection(ns.namespace_id, "c1") is None
        assert store.get_collection(ns.namespace_id, "c0") == cols[0]

        store.delete_collection(cols[0].collection_id)
        assert store.get_collection(ns.namespace_id, cols[0].collection_id) is None
        assert store.list_collections(ns.namespace_id) == [changed, cols[2]]
        store.delete_collection(cols[0].collection_id)  # no-op
        store.delete_collection("col_unknown")
        assert len(store.list_collections(ns.namespace_id)) == 2

    def test_delete_collection_cascades_documents(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        gone, kept = make_collection(ns.namespace_id), make_collection(ns.namespace_id)
        store.create_collection(gone)
        store.create_collection(kept)
        store.upsert_documents(make_docs(gone, 10) + make_docs(kept, 4))
        store.delete_documents(gone.collection_id, ["doc_00000"])
        store.delete_collection(gone.collection_id)
        assert store.count_documents(gone.collection_id) == 0
        assert store.get_document(gone.collection_id, "doc_00001") is None
        assert store.list_documents(gone.collection_id).documents == []
        assert store.changes_since(gone.collection_id, 0) == []
        assert store.count_documents(kept.collection_id) == 4
        assert len(store.get_documents(kept.collection_id, [f"doc_{i:05d}" for i in range(4)])) == 4
        # Re-creating a collection with the same name starts empty.
        again = make_collection(ns.namespace_id, gone.collection_name)
        store.create_collection(again)
        assert store.count_documents(again.collection_id) == 0

    # ---- documents

    def test_upsert_assigns_strictly_increasing_seq(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col, other = make_collection(ns.namespace_id), make_collection(ns.namespace_id)
        store.create_collection(col)
        store.create_collection(other)
        assert store.upsert_documents([]) == []

        first = store.upsert_documents(make_docs(col, 5, "a"))
        second = store.upsert_documents(make_docs(other, 3, "b"))  # seq is store-wide
        third = store.upsert_documents(make_docs(col, 4, "c"))
        all_seqs = seqs(first) + seqs(second) + seqs(third)
        assert all(s > 0 for s in all_seqs)
        assert all(x < y for x, y in itertools.pairwise(all_seqs)), all_seqs
        # Returned records are what is stored.
        for doc in first + third:
            assert store.get_document(col.collection_id, doc.document_id) == doc
        for doc in second:
            assert store.get_document(other.collection_id, doc.document_id) == doc
        # Input seq values are ignored.
        forced = store.upsert_documents([make_doc(col, "forced", seq=1)])
        assert forced[0].seq > all_seqs[-1]

    def test_upsert_replaces_and_keeps_created_at(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col = make_collection(ns.namespace_id)
        store.create_collection(col)
        original = make_doc(
            col,
            "d1",
            metadata={"v": 1, "keep": "no"},
            fields={"text": "first"},
            vectors={"v": [0.5, 0.25]},
            created_at=T0,
            updated_at=T0,
        )
        [stored1] = store.upsert_documents([original])
        replacement = make_doc(
            col,
            "d1",
            metadata={"v": 2},
            fields={"title": "second"},
            vectors={},
            source_type="other",
            created_at=T0 + timedelta(days=3),
            updated_at=T0 + timedelta(days=3),
        )
        [stored2] = store.upsert_documents([replacement])
        assert stored2.seq > stored1.seq
        assert stored2.created_at == T0  # first creation kept
        got = store.get_document(col.collection_id, "d1")
        assert got is not None
        assert got == stored2
        assert got.created_at == T0
        assert got.updated_at == T0 + timedelta(days=3)
        assert got.metadata == {"v": 2}
        assert got.fields == {"title": "second"}
        assert got.vectors == {}
        assert got.source_type == "other"
        assert store.count_documents(col.collection_id) == 1

    def test_duplicate_id_in_one_batch_last_wins(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col = make_collection(ns.namespace_id)
        store.create_collection(col)
        out = store.upsert_documents(
            [
                make_doc(col, "x", fields={"n": 1}),
                make_doc(col, "y", fields={"n": 2}),
                make_doc(col, "x", fields={"n": 3}),
            ]
        )
        assert len(out) == 3
        assert seqs(out) == sorted(set(seqs(out)))
        got = store.get_document(col.collection_id, "x")
        assert got is not None and got.fields == {"n": 3}
        assert store.count_documents(col.collection_id) == 2

    def test_vectors_round_trip_as_float32(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col = make_collection(ns.namespace_id)
        store.create_collection(col)
        rng = random.Random(7)
        vectors = {
            "text_extractor_v1_embedding": [rng.uniform(-1.0, 1.0) for _ in range(384)],
            "small": [0.1, -0.2, 1e-3],
            "ünï": [0.0, 1.0],
        }
        store.upsert_documents([make_doc(col, "v", vectors=vectors), make_doc(col, "none")])
        got = store.get_document(col.collection_id, "v")
        assert got is not None
        assert_vectors_close(got.vectors, vectors)
        [listed] = [d for d in store.list_documents(col.collection_id).documents if d.vectors]
        assert_vectors_close(listed.vectors, vectors)
        [changed] = [d for d in store.changes_since(col.collection_id, 0) if d.vectors]
        assert_vectors_close(changed.vectors, vectors)
        none = store.get_document(col.collection_id, "none")
        assert none is not None and none.vectors == {}

    def test_json_fields_round_trip(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col = make_collection(ns.namespace_id)
        store.create_collection(col)
        metadata = {
            "str": 'ünïcode ✓ "quoted" \\ back',
            "int": 2**53,
            "neg": -7,
            "float": 0.1,
            "bool": False,
            "null": None,
            "list": [1, "two", [3.5], {"four": 4}],
            "nested": {"a": {"b": {"c": []}}},
        }
        fields = {"text": "x" * 10_000, "tags": ["a", "b"]}
        doc = make_doc(col, "doc/with:odd chars ✓", metadata=metadata, fields=fields)
        store.upsert_documents([doc])
        got = store.get_document(col.collection_id, "doc/with:odd chars ✓")
        assert got is not None
        assert got.metadata == metadata
        assert got.fields == fields

    def test_get_documents_many_ids(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col, other = make_collection(ns.namespace_id), make_collection(ns.namespace_id)
        store.create_collection(col)
        store.create_collection(other)
        stored = store.upsert_documents(make_docs(col, 1234))
        store.upsert_documents(make_docs(other, 3, "other"))
        by_id = {d.document_id: d for d in stored}

        wanted = [f"doc_{i:05d}" for i in range(0, 1234, 2)]  # 617 ids
        asked = [*wanted, *[f"missing_{i}" for i in range(300)], *wanted[:50], "other_00000"]
        got = store.get_documents(col.collection_id, asked)
        assert set(got) == set(wanted)
        for document_id, doc in got.items():
            assert doc == by_id[document_id]

        every = store.get_documents(col.collection_id, list(by_id))
        assert every == by_id
        assert store.get_documents(col.collection_id, []) == {}
        assert store.get_documents(other.collection_id, wanted) == {}
        assert store.get_document(col.collection_id, "missing") is None
        assert store.get_document(other.collection_id, "doc_00000") is None

    def test_count_documents(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col, other = make_collection(ns.namespace_id), make_collection(ns.namespace_id)
        store.create_collection(col)
        store.create_collection(other)
        assert store.count_documents(col.collection_id) == 0
        assert store.count_documents("col_unknown") == 0
        store.upsert_documents(make_docs(col, 12))
        store.upsert_documents(make_docs(col, 5))  # same ids again: no growth
        store.upsert_documents(make_docs(other, 2))
        assert store.count_documents(col.collection_id) == 12
        assert store.count_documents(other.collection_id) == 2

    def test_list_documents_paging_walks_every_live_doc_once(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col, other = make_collection(ns.namespace_id), make_collection(ns.namespace_id)
        store.create_collection(col)
        store.create_collection(other)
        store.upsert_documents(make_docs(col, 250))
        store.upsert_documents(make_docs(other, 30))
        deleted = {f"doc_{i:05d}" for i in range(0, 250, 7)}
        store.delete_documents(col.collection_id, sorted(deleted))
        # Re-upserts move documents to the end of the seq order; still listed once.
        store.upsert_documents([make_doc(col, f"doc_{i:05d}", fields={"v": 2}) for i in (1, 2, 3)])
        live = {f"doc_{i:05d}" for i in range(250)} - deleted

        for limit in (1, 7, 40, 250, 1000):
            walked = all_live(store, col.collection_id, limit=limit)
            ids = [d.document_id for d in walked]
            assert len(ids) == len(set(ids)), f"duplicates with limit={limit}"
            assert set(ids) == live, f"limit={limit}"
            assert seqs(walked) == sorted(seqs(walked))
            assert not any(d.deleted for d in walked)

        page = store.list_documents(col.collection_id, limit=len(live))
        assert len(page.documents) == len(live)
        assert page.next_after_seq is None
        last = max(seqs(page.documents))
        tail = store.list_documents(col.collection_id, after_seq=last)
        assert tail.documents == [] and tail.next_after_seq is None
        empty = store.list_documents("col_unknown")
        assert empty.documents == [] and empty.next_after_seq is None

    def test_delete_documents_leaves_tombstones(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col = make_collection(ns.namespace_id)
        store.create_collection(col)
        stored = store.upsert_documents(
            [make_doc(col, f"d{i}", vectors={"v": [1.0, 2.0]}, fields={"i": i}) for i in range(6)]
        )
        max_seq = max(seqs(stored))
        sig_before = store.collection_signature(col.collection_id)
        assert sig_before == max_seq

        n = store.delete_documents(col.collection_id, ["d1", "d3", "d3", "nope"])
        assert n == 2
        assert store.delete_documents(col.collection_id, ["d1", "nope"]) == 0
        assert store.delete_documents(col.collection_id, []) == 0

        assert store.get_document(col.collection_id, "d1") is None
        assert set(store.get_documents(col.collection_id, ["d1", "d2", "d3"])) == {"d2"}
        assert store.count_documents(col.collection_id) == 4
        listed = {d.document_id for d in store.list_documents(col.collection_id).documents}
        assert listed == {"d0", "d2", "d4", "d5"}

        tombstones = store.changes_since(col.collection_id, max_seq)
        assert [d.document_id for d in tombstones] in (["d1", "d3"], ["d3", "d1"])
        for tomb in tombstones:
            assert tomb.deleted is True
            assert tomb.seq > max_seq
            assert tomb.collection_id == col.collection_id
            assert tomb.namespace_id == ns.namespace_id
            assert_utc(tomb.updated_at)
        assert len(set(seqs(tombstones))) == 2
        assert store.collection_signature(col.collection_id) == max(seqs(tombstones))

    def test_document_ids_by_source_object(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col, other = make_collection(ns.namespace_id), make_collection(ns.namespace_id)
        store.create_collection(col)
        store.create_collection(other)
        store.upsert_documents(
            [make_doc(col, f"a{i}", fields={"source_object_id": "obj_a"}) for i in range(3)]
            + [make_doc(col, "b0", fields={"source_object_id": "obj_b"}), make_doc(col, "plain")]
            + [make_doc(other, "x0", fields={"source_object_id": "obj_a"})]
        )
        found = store.document_ids_by_source(col.collection_id, ["obj_a", "obj_b", "obj_none"])
        assert {k: sorted(v) for k, v in found.items()} == {
            "obj_a": ["a0", "a1", "a2"],
            "obj_b": ["b0"],
        }
        store.delete_documents(col.collection_id, ["a1"])
        # A rewrite without the field detaches the document from its object.
        store.upsert_documents([make_doc(col, "a2", fields={"title": "moved"})])
        assert store.document_ids_by_source(col.collection_id, ["obj_a"]) == {"obj_a": ["a0"]}
        assert store.document_ids_by_source(other.collection_id, ["obj_a"]) == {"obj_a": ["x0"]}
        assert store.document_ids_by_source(col.collection_id, []) == {}

    def test_reupsert_revives_deleted_document(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col = make_collection(ns.namespace_id)
        store.create_collection(col)
        store.upsert_documents([make_doc(col, "d", fields={"v": 1})])
        store.delete_documents(col.collection_id, ["d"])
        [tomb] = store.changes_since(col.collection_id, 0)
        assert tomb.deleted

        [revived] = store.upsert_documents([make_doc(col, "d", fields={"v": 2})])
        assert revived.seq > tomb.seq
        assert not revived.deleted
        got = store.get_document(col.collection_id, "d")
        assert got is not None and got == revived and got.fields == {"v": 2}
        assert store.count_documents(col.collection_id) == 1
        assert [d.document_id for d in store.list_documents(col.collection_id).documents] == ["d"]
        changes = store.changes_since(col.collection_id, 0)
        assert [(d.document_id, d.deleted, d.seq) for d in changes] == [("d", False, revived.seq)]
        # And it can be deleted again.
        assert store.delete_documents(col.collection_id, ["d"]) == 1
        assert store.count_documents(col.collection_id) == 0

    def test_changes_since_order_and_limit(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col, other = make_collection(ns.namespace_id), make_collection(ns.namespace_id)
        store.create_collection(col)
        store.create_collection(other)
        assert store.changes_since(col.collection_id, 0) == []
        first = store.upsert_documents(make_docs(col, 30))
        store.upsert_documents(make_docs(other, 10))
        store.delete_documents(col.collection_id, ["doc_00003", "doc_00010"])
        store.upsert_documents([make_doc(col, "doc_00005", fields={"v": 2}), make_doc(col, "new")])

        full = store.changes_since(col.collection_id, 0)
        assert len(full) == 31  # one entry per document: its latest state
        assert seqs(full) == sorted(seqs(full))
        assert len(set(seqs(full))) == len(full)
        assert {d.collection_id for d in full} == {col.collection_id}
        assert [d.document_id for d in full[-4:]] in (
            ["doc_00003", "doc_00010", "doc_00005", "new"],
            ["doc_00010", "doc_00003", "doc_00005", "new"],
        )
        assert [d.deleted for d in full[-4:]] == [True, True, False, False]

        assert store.changes_since(col.collection_id, 0, limit=5) == full[:5]
        pivot = full[10].seq
        assert store.changes_since(col.collection_id, pivot) == [d for d in full if d.seq > pivot]
        assert store.changes_since(col.collection_id, pivot, limit=3) == full[11:14]
        assert store.changes_since(col.collection_id, full[-1].seq) == []
        for limit in (1, 4, 31, 100):
            assert all_changes(store, col.collection_id, limit=limit) == full
        assert full[0].seq >= first[0].seq

    def test_collection_signature_moves_on_every_write(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col = make_collection(ns.namespace_id)
        store.create_collection(col)
        assert store.collection_signature(col.collection_id) == 0
        store.upsert_documents(make_docs(col, 3))
        s1 = store.collection_signature(col.collection_id)
        store.upsert_documents([make_doc(col, "doc_00000")])
        s2 = store.collection_signature(col.collection_id)
        store.delete_documents(col.collection_id, ["doc_00001"])
        s3 = store.collection_signature(col.collection_id)
        assert 0 < s1 < s2 < s3
        store.delete_documents(col.collection_id, ["doc_00001"])  # nothing deleted
        assert store.collection_signature(col.collection_id) == s3

    def test_log_head_covers_every_collection(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        a, b = make_collection(ns.namespace_id), make_collection(ns.namespace_id)
        store.create_collection(a)
        store.create_collection(b)
        before = store.log_head()
        store.upsert_documents(make_docs(a, 2))
        store.upsert_documents(make_docs(b, 2))
        store.delete_documents(a.collection_id, ["doc_00000"])
        head = store.log_head()
        assert head > before
        assert head >= max(store.collection_signature(c.collection_id) for c in (a, b))
        store.get_document(a.collection_id, "doc_00001")  # reads move nothing
        assert store.log_head() == head

    # ---- executions

    def test_execution_results_read_back_any_window(self, store: MetadataStore) -> None:
        """Windows that start, end or span anywhere in a long ranking (the SQL store keeps
        it in chunks), and a later snapshot that is shorter replaces all of the first."""
        ns = make_namespace()
        store.create_namespace(ns)
        run = ExecutionRecord(
            execution_id="exec_long", namespace_id=ns.namespace_id, mode="adhoc", created_at=T0
        )
        ranking = [{"document_id": f"d{i:04d}", "score": 1.0 / (i + 1)} for i in range(257)]
        store.save_execution(run, ranking)
        for offset, limit in [(0, 1), (0, 100), (99, 2), (100, 100), (150, 1000), (256, 5)]:
            got = store.get_execution_results("exec_long", offset, limit)
            assert got == ranking[offset : offset + limit], (offset, limit)
        assert store.get_execution_results("exec_long", 257, 10) == []
        assert store.get_execution_results("exec_long", 5000, 10) == []
        store.save_execution(run.model_copy(update={"status": "completed"}), ranking[:3])
        assert store.get_execution_results("exec_long", 0, 1000) == ranking[:3]
        assert store.get_execution_results("exec_long", 100, 10) == []
        # A save without a snapshot (a status change) keeps the stored one.
        store.save_execution(run.model_copy(update={"status": "failed"}))
        assert store.get_execution_results("exec_long", 1, 5) == ranking[1:3]

    def test_prune_executions_by_age_and_by_count_per_namespace(self, store: MetadataStore) -> None:
        """Finished runs past either bound go with their results; unfinished runs, the
        source of a kept cache hit and other namespaces' runs stay."""
        a, b = make_namespace(), make_namespace()
        for ns in (a, b):
            store.create_namespace(ns)

        def run(ns: NamespaceRecord, i: int, status: str = "completed", **kw: Any) -> str:
            x = ExecutionRecord(
                execution_id=f"exec_{ns.namespace_id}_{i:02d}",
                namespace_id=ns.namespace_id,
                mode="adhoc",
                status=status,
                created_at=T0 + timedelta(minutes=i),
                **kw,
            )
            store.save_execution(x, [{"document_id": f"d{i}"}])
            return x.execution_id

        a_runs = [run(a, i) for i in range(10)]
        a_unfinished = run(a, 11, "processing")
        b_runs = [run(b, i) for i in range(3)]
        # A hit at minute 12 replays a's run at minute 1: that run stays while the hit does.
        hit = run(a, 12, cache_hit=True, source_execution_id=a_runs[1])

        # By age: before minute 3 -> runs 0 and 2 of a, 0..2 of b; a_runs[1] is referenced.
        gone = store.prune_executions(
            before=T0 + timedelta(minutes=3), keep_per_namespace=None, limit=100
        )
        assert sorted(gone) == sorted([a_runs[0], a_runs[2], *b_runs])
        assert store.get_execution(a.namespace_id, a_runs[0]) is None
        assert store.get_execution_results(a_runs[0], 0, 10) == []
        assert store.get_execution(a.namespace_id, a_runs[1]) is not None
        assert store.get_execution_results(a_runs[1], 0, 10) == [{"document_id": "d1"}]

        # By count: keep a's 4 newest (the hit, the unfinished run, runs 9 and 8); the
        # limit takes them a batch at a time.
        first = store.prune_executions(before=None, keep_per_namespace=4, limit=3)
        rest = store.prune_executions(before=None, keep_per_namespace=4, limit=100)
        assert len(first) == 3 and not set(first) & set(rest)
        assert sorted(first + rest) == sorted(a_runs[3:8])
        kept, total = store.list_executions(a.namespace_id, retriever_id=None, mode="adhoc")
        assert total == 5
        assert {x.execution_id for x in kept} == {
            hit,
            a_unfinished,
            a_runs[9],
            a_runs[8],
            a_runs[1],
        }
        assert store.prune_executions(before=None, keep_per_namespace=4, limit=100) == []

        # Once the hit is gone, the run it replayed can go too (in the next round).
        late = T0 + timedelta(minutes=13)
        gone = store.prune_executions(before=late, keep_per_namespace=None, limit=100)
        assert sorted(gone) == sorted([hit, a_runs[8], a_runs[9]])
        gone = store.prune_executions(before=late, keep_per_namespace=None, limit=100)
        assert gone == [a_runs[1]]
        kept, total = store.list_executions(a.namespace_id, retriever_id=None, mode="adhoc")
        assert [x.execution_id for x in kept] == [a_unfinished]

    def test_execution_trace_id_round_trips(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        traced = ExecutionRecord(
            execution_id="exec_traced",
            namespace_id=ns.namespace_id,
            mode="adhoc",
            status="completed",
            trace_id="req-1:a.b_c",
            created_at=T0,
        )
        untraced = ExecutionRecord(
            execution_id="exec_untraced",
            namespace_id=ns.namespace_id,
            mode="adhoc",
            created_at=T0 + timedelta(seconds=1),
        )
        store.save_execution(traced, [])
        store.save_execution(untraced)
        got = store.get_execution(ns.namespace_id, "exec_traced")
        assert got is not None and got.trace_id == "req-1:a.b_c"
        got = store.get_execution(ns.namespace_id, "exec_untraced")
        assert got is not None and got.trace_id is None
        # A later save of the same run (its end) keeps the id it was started with.
        store.save_execution(traced.model_copy(update={"status": "failed"}))
        rows, total = store.list_executions(ns.namespace_id, retriever_id=None, mode="adhoc")
        assert total == 2
        assert {r.execution_id: (r.status, r.trace_id) for r in rows} == {
            "exec_traced": ("failed", "req-1:a.b_c"),
            "exec_untraced": ("pending", None),
        }

    # ---- idempotency

    def test_idempotency_put_get(self, store: MetadataStore) -> None:
        a, b = make_namespace(), make_namespace()
        store.create_namespace(a)
        store.create_namespace(b)
        rec = IdempotencyRecord(
            namespace_id=a.namespace_id,
            key="req-1",
            request_hash="abc123",
            response={"upserted": ["d1", "d2"], "nested": {"n": 1.5, "ok": True}},
            created_at=T0,
        )
        store.put_idempotency(rec)
        assert store.get_idempotency(a.namespace_id, "req-1") == rec
        assert store.get_idempotency(a.namespace_id, "req-2") is None
        assert store.get_idempotency(b.namespace_id, "req-1") is None  # scoped to namespace
        rec_b = rec.model_copy(update={"namespace_id": b.namespace_id, "request_hash": "zzz"})
        store.put_idempotency(rec_b)
        assert store.get_idempotency(b.namespace_id, "req-1") == rec_b
        assert store.get_idempotency(a.namespace_id, "req-1") == rec
        with pytest.raises(self.integrity_error):
            store.put_idempotency(rec.model_copy(update={"request_hash": "other"}))
        assert store.get_idempotency(a.namespace_id, "req-1") == rec

    # ---- timestamps

    def test_timestamps_come_back_utc(self, store: MetadataStore) -> None:
        plus5 = timezone(timedelta(hours=5, minutes=30))
        local = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=plus5)
        ns = make_namespace(at=local)
        store.create_namespace(ns)
        col = make_collection(ns.namespace_id, at=local)
        store.create_collection(col)
        store.upsert_documents([make_doc(col, "d", created_at=local, updated_at=local)])
        store.create_key(ApiKeyRecord(key_id="key_tz", key_hash="tz", created_at=local))
        store.put_idempotency(
            IdempotencyRecord(
                namespace_id=ns.namespace_id,
                key="k",
                request_hash="h",
                response={},
                created_at=local,
            )
        )
        store.upsert_documents([make_doc(col, "gone")])
        store.delete_documents(col.collection_id, ["gone"])

        got_ns = store.get_namespace(ns.namespace_id)
        got_col = store.get_collection(ns.namespace_id, col.collection_id)
        got_doc = store.get_document(col.collection_id, "d")
        got_key = store.get_key_by_hash("tz")
        got_idem = store.get_idempotency(ns.namespace_id, "k")
        assert got_ns and got_col and got_doc and got_key and got_idem
        stamps = [
            got_ns.created_at,
            got_ns.updated_at,
            got_col.created_at,
            got_col.updated_at,
            got_doc.created_at,
            got_doc.updated_at,
            got_key.created_at,
            got_idem.created_at,
        ]
        for ts in stamps:
            assert_utc(ts)
            assert ts == local, f"{ts.isoformat()} is not the instant {local.isoformat()}"
        for d in store.changes_since(col.collection_id, 0):
            assert_utc(d.created_at)
            assert_utc(d.updated_at)
        for n in store.list_namespaces():
            assert_utc(n.created_at)
        for c in store.list_collections(ns.namespace_id):
            assert_utc(c.created_at)

    def test_execution_lists_bound_by_instant_whatever_the_offset(
        self, store: MetadataStore
    ) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        base = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
        for minute in range(4):
            store.save_execution(
                ExecutionRecord(
                    execution_id=f"exec_t{minute}",
                    namespace_id=ns.namespace_id,
                    retriever_id="ret_1",
                    created_at=base + timedelta(minutes=minute),
                ),
                [],
            )

        def listed(since: datetime | None, until: datetime | None) -> list[str]:
            rows, total = store.list_executions(
                ns.namespace_id, retriever_id="ret_1", mode="named", since=since, until=until
            )
            assert total == len(rows)
            return [r.execution_id for r in rows]

        # 13:01 at +01:00 is 12:01 UTC: the bounds are instants, inclusive at both ends.
        plus1 = timezone(timedelta(hours=1))
        assert listed(base.astimezone(plus1) + timedelta(minutes=1), None) == [
            "exec_t3",
            "exec_t2",
            "exec_t1",
        ]
        assert listed(None, base + timedelta(minutes=1)) == ["exec_t1", "exec_t0"]
        within = listed(
            base + timedelta(minutes=1), (base + timedelta(minutes=2)).astimezone(plus1)
        )
        assert within == ["exec_t2", "exec_t1"]
        assert listed(base + timedelta(minutes=5), None) == []

    # ---- concurrency

    def test_concurrent_upserts_get_unique_seqs(self, store: MetadataStore) -> None:
        ns = make_namespace()
        store.create_namespace(ns)
        col = make_collection(ns.namespace_id)
        store.create_collection(col)
        threads_n, batches, batch_size = 4, 50, 5
        start = threading.Barrier(threads_n)
        results: dict[int, list[DocumentRecord]] = {}
        errors: list[BaseException] = []

        def writer(t: int) -> None:
            try:
                start.wait(timeout=30)
                out: list[DocumentRecord] = []
                for b in range(batches):
                    docs = [
                        make_doc(col, f"t{t}_b{b:03d}_{i}", fields={"t": t, "b": b})
                        for i in range(batch_size)
                    ]
                    out.extend(store.upsert_documents(docs))
                results[t] = out
            except BaseException as exc:  # reported below, with the thread's traceback
                errors.append(exc)

        workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads_n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)
        assert not any(w.is_alive() for w in workers), "writers did not finish"
        if errors:
            raise errors[0]

        total = threads_n * batches * batch_size
        returned = [d for t in range(threads_n) for d in results[t]]
        assert len(returned) == total
        assert len(set(seqs(returned))) == total, "seq numbers were handed out twice"
        for t in range(threads_n):
            mine = seqs(results[t])
            assert mine == sorted(mine) and len(set(mine)) == len(mine)
        assert store.count_documents(col.collection_id) == total

        stored = store.get_documents(col.collection_id, [d.document_id for d in returned])
        assert len(stored) == total
        for d in returned:
            assert stored[d.document_id].seq == d.seq
        changes = all_changes(store, col.collection_id, limit=97)
        assert sorted(seqs(changes)) == sorted(seqs(returned))
        assert seqs(changes) == sorted(seqs(changes))
        walked = all_live(store, col.collection_id, limit=64)
        assert len({d.document_id for d in walked}) == total == len(walked)
