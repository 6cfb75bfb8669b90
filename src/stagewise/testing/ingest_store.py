"""The conformance suite every `IngestStore` backend must pass.

Subclass `IngestStoreConformance` in a test module (class name starting with ``Test``) and
override the `ingest` fixture so that it yields a fresh, empty store for every test. Everything
is checked by value, through the `IngestStore` protocol only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stagewise.domain.ingest_records import (
    BatchItem,
    BatchRecord,
    BlobRef,
    BucketRecord,
    ObjectRecord,
    TaskRecord,
)
from stagewise.errors import Conflict, NotFound
from stagewise.ids import new_id, new_sortable_id
from stagewise.storage.ingest import IngestStore

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def make_bucket(namespace_id: str = "ns_a", name: str | None = None, **kw: Any) -> BucketRecord:
    return BucketRecord(
        bucket_id=new_id("bkt_"),
        namespace_id=namespace_id,
        bucket_name=name or new_id("b-"),
        bucket_schema={"properties": {"title": {"type": "string", "required": True}}},
        **{"created_at": T0, "updated_at": T0, **kw},
    )


def make_object(bucket: BucketRecord, size: int = 10, **kw: Any) -> ObjectRecord:
    return ObjectRecord(
        object_id=kw.pop("object_id", None) or new_sortable_id("obj_"),
        bucket_id=bucket.bucket_id,
        namespace_id=bucket.namespace_id,
        fields=kw.pop("fields", {"title": "t"}),
        size_bytes=size,
        **kw,
    )


def make_task(namespace_id: str = "ns_a", at: datetime = T0, **kw: Any) -> TaskRecord:
    return TaskRecord(
        task_id=new_id("task_"),
        namespace_id=namespace_id,
        task_type="api_buckets_batches_process",
        created_at=at,
        updated_at=at,
        **kw,
    )


def counters(store: IngestStore, bucket: BucketRecord) -> tuple[int, int]:
    got = store.get_bucket_by_id(bucket.bucket_id)
    assert got is not None
    return got.object_count, got.total_size_bytes


def run_threads(n: int, fn: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            fn(i)
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [], errors


class IngestStoreConformance:
    @pytest.fixture
    def ingest(self) -> IngestStore:
        raise NotImplementedError("subclasses must provide an `ingest` fixture")

    # ---- buckets

    def test_bucket_round_trip_by_id_and_by_name(self, ingest: IngestStore) -> None:
        bucket = make_bucket(unique_key={"fields": ["title"], "default_policy": "upsert"})
        ingest.create_bucket(bucket)
        assert ingest.get_bucket("ns_a", bucket.bucket_id) == bucket
        assert ingest.get_bucket("ns_a", bucket.bucket_name) == bucket
        assert ingest.get_bucket_by_id(bucket.bucket_id) == bucket
        assert ingest.get_bucket("ns_b", bucket.bucket_id) is None  # another namespace's
        assert ingest.get_bucket_by_id("bkt_missing") is None

    def test_an_id_wins_over_a_name_that_looks_like_it(self, ingest: IngestStore) -> None:
        first = make_bucket()
        ingest.create_bucket(first)
        decoy = make_bucket(name=first.bucket_id)
        ingest.create_bucket(decoy)
        got = ingest.get_bucket("ns_a", first.bucket_id)
        assert got is not None and got.bucket_id == first.bucket_id

    def test_bucket_names_are_unique_per_namespace(self, ingest: IngestStore) -> None:
        ingest.create_bucket(make_bucket("ns_a", "same"))
        ingest.create_bucket(make_bucket("ns_b", "same"))
        with pytest.raises(Conflict):
            ingest.create_bucket(make_bucket("ns_a", "same"))
        renamed = make_bucket("ns_a", "other")
        ingest.create_bucket(renamed)
        with pytest.raises(Conflict):
            ingest.update_bucket(renamed.model_copy(update={"bucket_name": "same"}))

    def test_list_buckets_pages_with_a_total_and_search(self, ingest: IngestStore) -> None:
        made = [
            make_bucket(name=f"photos-{i}", created_at=T0 + timedelta(seconds=i)) for i in range(5)
        ]
        for b in made:
            ingest.create_bucket(b)
        ingest.create_bucket(make_bucket(name="docs"))
        ingest.create_bucket(make_bucket("ns_b", name="photos-x"))
        page, total = ingest.list_buckets("ns_a", search="PHOTOS", offset=1, limit=2)
        assert total == 5
        assert [b.bucket_name for b in page] == ["photos-1", "photos-2"]
        assert ingest.list_buckets("ns_a")[1] == 6
        assert ingest.list_buckets("ns_a", search="%")[1] == 0  # a literal, not a wildcard

    def test_update_bucket_never_writes_the_counters(self, ingest: IngestStore) -> None:
        bucket = make_bucket()
        ingest.create_bucket(bucket)
        ingest.create_objects([make_object(bucket, size=7)])
        stale = bucket.model_copy(update={"description": "new", "object_count": 99})
        ingest.update_bucket(stale)
        got = ingest.get_bucket_by_id(bucket.bucket_id)
        assert got is not None and got.description == "new"
        assert (got.object_count, got.total_size_bytes) == (1, 7)

    def test_delete_bucket_removes_objects_batches_and_items_not_tasks(
        self, ingest: IngestStore
    ) -> None:
        bucket, other = make_bucket(), make_bucket()
        ingest.create_bucket(bucket)
        ingest.create_bucket(other)
        obj, kept = make_object(bucket), make_object(other)
        ingest.create_objects([obj, kept])
        batch = BatchRecord(
            batch_id=new_id("btch_"), namespace_id="ns_a", bucket_id=bucket.bucket_id
        )
        ingest.create_batch(batch)
        ingest.put_batch_items([BatchItem(batch_id=batch.batch_id, object_id=obj.object_id)])
        task = make_task()
        ingest.create_task(task)
        ingest.delete_bucket(bucket.bucket_id)
        assert ingest.get_bucket_by_id(bucket.bucket_id) is None
        assert ingest.get_object(bucket.bucket_id, obj.object_id) is None
        assert ingest.all_object_ids(bucket.bucket_id) == []
        assert ingest.get_batch(batch.batch_id) is None
        assert ingest.get_batch_items(batch.batch_id) == []
        assert ingest.get_task(task.task_id) == task
        assert ingest.get_object(other.bucket_id, kept.object_id) == kept

    # ---- objects

    def test_object_round_trip_keeps_fields_and_blobs(self, ingest: IngestStore) -> None:
        bucket = make_bucket()
        ingest.create_bucket(bucket)
        blob = BlobRef(
            property="doc",
            type="text",
            blob_id=new_id("blob_"),
            content_hash="a" * 64,
            size_bytes=3,
            mime_type="text/plain",
            filename="a.txt",
            properties={"source": "inline"},
        )
        obj = make_object(
            bucket, fields={"title": "x", "n": 1.5, "tags": ["a"]}, blobs=[blob], key_prefix="p/"
        )
        ingest.create_objects([obj])
        assert ingest.get_object(bucket.bucket_id, obj.object_id) == obj
        assert ingest.get_objects(bucket.bucket_id, [obj.object_id, "obj_x"]) == {
            obj.object_id: obj
        }
        assert ingest.get_object(make_bucket().bucket_id, obj.object_id) is None

    def test_counters_follow_creates_replaces_and_deletes(self, ingest: IngestStore) -> None:
        bucket = make_bucket()
        ingest.create_bucket(bucket)
        a, b = make_object(bucket, size=10), make_object(bucket, size=5)
        ingest.create_objects([a, b])
        assert counters(ingest, bucket) == (2, 15)
        ingest.replace_object(a.model_copy(update={"size_bytes": 30, "fields": {"title": "n"}}))
        assert counters(ingest, bucket) == (2, 35)
        assert ingest.delete_object(bucket.bucket_id, b.object_id) is True
        assert ingest.delete_object(bucket.bucket_id, b.object_id) is False
        assert counters(ingest, bucket) == (1, 30)

    def test_objects_need_their_bucket(self, ingest: IngestStore) -> None:
        ghost = make_bucket()
        with pytest.raises(NotFound):
            ingest.create_objects([make_object(ghost)])
        bucket = make_bucket()
        ingest.create_bucket(bucket)
        with pytest.raises(NotFound):
            ingest.replace_object(make_object(bucket))  # never created
        assert counters(ingest, bucket) == (0, 0)

    def test_concurrent_creates_and_deletes_keep_exact_counters(self, ingest: IngestStore) -> None:
        bucket = make_bucket()
        ingest.create_bucket(bucket)
        made = [make_object(bucket, size=i + 1) for i in range(40)]

        def create(worker: int) -> None:
            for obj in made[worker::8]:
                ingest.create_objects([obj])

        def delete(_: int) -> None:  # every thread deletes the same 20: each counts once
            for obj in made[:20]:
                ingest.delete_object(bucket.bucket_id, obj.object_id)

        run_threads(8, create)
        assert counters(ingest, bucket) == (40, sum(range(1, 41)))
        run_threads(4, delete)
        assert counters(ingest, bucket) == (20, sum(range(21, 41)))

    def test_a_unique_key_clash_is_a_conflict_and_writes_nothing(self, ingest: IngestStore) -> None:
        bucket = make_bucket()
        ingest.create_bucket(bucket)
        first = make_object(bucket, unique_key_value='["k"]')
        ingest.create_objects([first])
        with pytest.raises(Conflict):
            ingest.create_objects(
                [make_object(bucket), make_object(bucket, unique_key_value='["k"]')]
            )
        assert counters(ingest, bucket) == (1, 10)
        assert ingest.find_object_by_unique_key(bucket.bucket_id, '["k"]') == first
        assert ingest.find_object_by_unique_key(bucket.bucket_id, '["z"]') is None

    def test_concurrent_inserts_of_one_unique_key_store_one(self, ingest: IngestStore) -> None:
        bucket = make_bucket()
        ingest.create_bucket(bucket)
        outcomes: list[str] = []

        def insert(_: int) -> None:
            try:
                ingest.create_objects([make_object(bucket, unique_key_value="same")])
                outcomes.append("stored")
            except Conflict:
                outcomes.append("conflict")

        run_threads(6, insert)
        assert sorted(outcomes) == ["conflict"] * 5 + ["stored"]
        assert counters(ingest, bucket) == (1, 10)

    def test_idempotency_keys_are_unique_per_bucket(self, ingest: IngestStore) -> None:
        bucket, other = make_bucket(), make_bucket()
        ingest.create_bucket(bucket)
        ingest.create_bucket(other)
        obj = make_object(bucket, idempotency_key="idem-1")
        ingest.create_objects([obj, make_object(other, idempotency_key="idem-1")])
        with pytest.raises(Conflict):
            ingest.create_objects([make_object(bucket, idempotency_key="idem-1")])
        assert ingest.find_object_by_idempotency_key(bucket.bucket_id, "idem-1") == obj

    def test_list_objects_is_oldest_first_by_keyset(self, ingest: IngestStore) -> None:
        bucket = make_bucket()
        ingest.create_bucket(bucket)
        made: list[ObjectRecord] = []
        for i in range(7):  # one at a time: each id is issued after the last was stored
            made.append(make_object(bucket, fields={"title": str(i)}))
            ingest.create_objects(made[-1:])
        seen: list[str] = []
        after: str | None = None
        while page := ingest.list_objects(bucket.bucket_id, after=after, limit=3):
            assert len(page) <= 3
            seen += [o.object_id for o in page]
            after = page[-1].object_id
            if after == made[2].object_id:  # the page's last object goes: the next page holds
                ingest.delete_object(bucket.bucket_id, after)
        assert seen == [o.object_id for o in made]
        remaining = [o.object_id for o in made if o is not made[2]]
        assert ingest.all_object_ids(bucket.bucket_id) == remaining

    def test_set_object_statuses(self, ingest: IngestStore) -> None:
        bucket = make_bucket()
        ingest.create_bucket(bucket)
        a, b = make_object(bucket), make_object(bucket)
        ingest.create_objects([a, b])
        ingest.set_object_statuses(
            [
                (a.object_id, "COMPLETED", None),
                (b.object_id, "FAILED", "bad pdf"),
                ("obj_x", "FAILED", None),
            ]
        )
        got = ingest.get_objects(bucket.bucket_id, [a.object_id, b.object_id])
        assert (got[a.object_id].status, got[a.object_id].error) == ("COMPLETED", None)
        assert (got[b.object_id].status, got[b.object_id].error) == ("FAILED", "bad pdf")
        assert got[b.object_id].fields == b.fields

    # ---- batches and items

    def test_batches_round_trip_update_list_and_delete(self, ingest: IngestStore) -> None:
        batches = [
            BatchRecord(
                batch_id=new_id("btch_"),
                namespace_id=ns,
                bucket_id=bkt,
                object_ids=["obj_1"],
                created_at=T0 + timedelta(seconds=i),
            )
            for i, (ns, bkt) in enumerate([("ns_a", "bkt_1"), ("ns_a", "bkt_2"), ("ns_b", "bkt_3")])
        ]
        for batch in batches:
            ingest.create_batch(batch)
        assert ingest.get_batch(batches[0].batch_id) == batches[0]
        done = batches[0].model_copy(update={"status": "COMPLETED", "task_id": "task_1"})
        ingest.update_batch(done)
        assert ingest.get_batch(done.batch_id) == done
        page, total = ingest.list_batches("ns_a")
        assert total == 2 and [b.batch_id for b in page] == [batches[1].batch_id, done.batch_id]
        assert ingest.list_batches(None, limit=1)[1] == 3
        assert ingest.list_batches("ns_a", bucket_id="bkt_1")[0] == [done]
        assert ingest.list_batches(None, status="COMPLETED")[0] == [done]
        ingest.delete_batch(done.batch_id)
        assert ingest.get_batch(done.batch_id) is None

    def test_batch_items_upsert_the_last_write(self, ingest: IngestStore) -> None:
        items = [BatchItem(batch_id="btch_1", object_id=f"obj_{i}") for i in range(3)]
        ingest.put_batch_items(items)
        assert ingest.batch_item_counts("btch_1") == {"PENDING": 3}
        ingest.put_batch_items(
            [
                BatchItem(
                    batch_id="btch_1", object_id="obj_0", status="COMPLETED", documents_written=2
                ),
                BatchItem(batch_id="btch_1", object_id="obj_1", status="FAILED", error="x"),
                BatchItem(batch_id="btch_1", object_id="obj_1", status="FAILED", error="last"),
            ]
        )
        assert ingest.batch_item_counts("btch_1") == {"PENDING": 1, "COMPLETED": 1, "FAILED": 1}
        got = {i.object_id: i for i in ingest.get_batch_items("btch_1")}
        assert got["obj_0"].documents_written == 2
        assert got["obj_1"].error == "last"
        assert ingest.get_batch_items("btch_other") == []
        # Totals and failures without reading every item.
        ingest.put_batch_items(
            [
                BatchItem(
                    batch_id="btch_1", object_id="obj_2", status="COMPLETED", documents_written=5
                )
            ]
        )
        assert ingest.batch_item_totals("btch_1") == {"COMPLETED": (2, 7), "FAILED": (1, 0)}
        assert [i.object_id for i in ingest.failed_batch_items("btch_1", 10)] == ["obj_1"]
        assert ingest.failed_batch_items("btch_1", 0) == []
        assert ingest.batch_item_totals("btch_other") == {}

    # ---- tasks

    def test_tasks_round_trip_list_and_unfinished(self, ingest: IngestStore) -> None:
        tasks = [
            make_task("ns_a", T0, status="PENDING"),
            make_task("ns_a", T0 + timedelta(seconds=1), status="IN_PROGRESS", attempts=1),
            make_task("ns_b", T0 + timedelta(seconds=2), status="COMPLETED", outputs=["x"]),
            make_task("ns_b", T0 + timedelta(seconds=3), status="FAILED", error="boom"),
        ]
        for task in tasks:
            ingest.create_task(task)
        assert ingest.get_task(tasks[2].task_id) == tasks[2]
        assert ingest.unfinished_tasks() == tasks[:2]
        page, total = ingest.list_tasks(["ns_b"])
        assert total == 2 and page == [tasks[3], tasks[2]]
        assert ingest.list_tasks(None, status="PENDING")[0] == [tasks[0]]
        assert ingest.list_tasks(None, task_type="api_buckets_delete") == ([], 0)
        assert ingest.list_tasks(None, offset=1, limit=2)[0] == [tasks[2], tasks[1]]
        finished = tasks[0].model_copy(update={"status": "COMPLETED", "completed_at": T0})
        ingest.update_task(finished)
        assert ingest.get_task(finished.task_id) == finished
        assert ingest.unfinished_tasks() == [tasks[1]]
        with pytest.raises(Conflict):
            ingest.create_task(tasks[1])
