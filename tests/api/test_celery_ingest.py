"""Ingestion on Celery workers (issue 12): `stagewise serve` on PostgreSQL + Redis with
STAGEWISE_BROKER_URL, and `stagewise worker` child processes, on a private RabbitMQ queue.

1. The SDK flow of tests/sdk/test_ingest_flow.py (bucket -> 200 objects -> bucket-sourced
   collection -> batch -> task -> searchable documents with lineage), run by a worker.
2. A worker killed with SIGKILL (its whole process group, prefork children included) in the
   middle of a 1,000-object batch: the broker redelivers the task to a new worker, which
   resumes it, and every object ends with exactly one document."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import mixpeek
import pytest
from mixpeek.models import CreateBatchRequest, CreateNamespaceRequest

from stagewise.storage.sql.ingest_store import SqlIngestStore
from stagewise.storage.sql.store import SqlMetadataStore
from tests.sdk.test_ingest_flow import (
    bucket_collection,
    object_body,
    resolvable_batch,
    search,
    setup_bucket,
    upload,
    wait_task,
)
from tests.support.celery_workers import WorkerProcess, private_queue
from tests.support.killable_server import KillableServer
from tests.support.workers import ADMIN_KEY, shared_env

pytestmark = [
    pytest.mark.api,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.rabbitmq,
]


class Submitted(NamedTuple):
    bucket_id: str
    object_ids: list[str]
    collection_id: str
    batch: Any  # the SDK's BatchModel


@dataclass
class CeleryStack:
    server: KillableServer
    env: dict[str, str]
    data_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self) -> WorkerProcess:
        worker = WorkerProcess(self.data_dir, self.env)
        self.workers.append(worker)
        worker.start()
        return worker

    def sdk(self, namespace: str | None = None) -> mixpeek.ApiClient:
        api_key = {"NamespaceHeader": namespace} if namespace else None
        config = mixpeek.Configuration(
            host=self.server.base_url, access_token=ADMIN_KEY, api_key=api_key
        )
        return mixpeek.ApiClient(config)

    def namespace(self, name: str) -> mixpeek.ApiClient:
        mixpeek.NamespacesApi(self.sdk()).create_namespace(
            CreateNamespaceRequest.from_dict({"namespace_name": name})
        )
        return self.sdk(name)

    def submitted_batch(self, ns: str, objects: int) -> tuple[mixpeek.ApiClient, Submitted]:
        """A namespace, a bucket of `objects` objects, its collection, and one batch of them
        all, submitted."""
        client = self.namespace(ns)
        bucket_id = setup_bucket(client)
        object_ids = upload(client, bucket_id, [object_body(i) for i in range(objects)])
        collection_id = bucket_collection(client, bucket_id)
        batch = mixpeek.BucketBatchesApi(client).create_batch_buckets_batches(
            bucket_id, CreateBatchRequest.from_dict({"object_ids": object_ids}), auto_submit=True
        )
        return client, Submitted(bucket_id, object_ids, collection_id, batch)

    def store(self) -> tuple[SqlMetadataStore, SqlIngestStore]:
        sql = SqlMetadataStore(self.env["STAGEWISE_DATABASE_URL"])
        return sql, SqlIngestStore(sql.engine)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[CeleryStack]:
    with shared_env("sw_celery") as shared, private_queue() as broker:
        env = {**shared, **broker}
        data_dir = tmp_path / "data"
        server = KillableServer(data_dir, ADMIN_KEY, env)
        server.start()
        stack = CeleryStack(server, env, data_dir)
        try:
            yield stack
        finally:
            for worker in stack.workers:
                worker.kill()
            server.stop()


def test_sdk_flow_runs_on_a_celery_worker(stack: CeleryStack) -> None:
    worker = stack.start_worker()
    client, (bucket_id, object_ids, collection_id, batch) = stack.submitted_batch(
        "celery-flow", 200
    )
    done = wait_task(client, batch.task_id)
    assert done.status == "COMPLETED", done.error
    assert done.additional_data["attempts"] == 1
    # It ran on the worker, not in the serving process.
    sql, ingest = stack.store()
    try:
        stored_task = ingest.get_task(batch.task_id)
        assert stored_task is not None and (stored_task.worker_id or "").startswith("celery-")
    finally:
        sql.close()
    assert "run_task[" in worker.log_tail(1_000_000)

    batch = resolvable_batch(client, bucket_id, batch.batch_id)
    assert batch.status == "COMPLETED" and batch.lifecycle == "indexed"
    assert (batch.progress.processed, batch.progress.total) == (200, 200)
    assert batch.documents_written == 200 and batch.failed_object_count == 0
    assert mixpeek.BucketsApi(client).get_bucket(bucket_id).object_count == 200
    assert mixpeek.CollectionDocumentsApi(client).count_documents(collection_id).count == 200
    assert done.additional_data["object_count"] == 200

    body = object_body(12)
    hits = search(client, collection_id, body["blobs"][0]["data"])
    assert hits[0]["source_object_id"] == object_ids[12]
    assert (hits[0]["title"], hits[0]["category"]) == (body["title"], body["category"])
    lineage = mixpeek.DocumentLineageApi(client).get_document_lineage(
        collection_id, hits[0]["document_id"]
    )
    assert lineage.lineage.root_object_id == object_ids[12]
    assert lineage.lineage.root_bucket_id == bucket_id
    assert lineage.lineage.lineage_chain[0].collection_id == collection_id
    with stack.server.client(ADMIN_KEY, "celery-flow") as http:
        for object_id in object_ids[::20]:
            res = http.get(f"/v1/objects/{object_id}/documents")
            assert res.status_code == 200, res.text
            assert res.json()["total"] == 1


def test_killed_worker_batch_completes_once_per_object(stack: CeleryStack) -> None:
    first = stack.start_worker()
    client, (bucket_id, object_ids, collection_id, batch) = stack.submitted_batch(
        "celery-crash", 1000
    )
    batches = mixpeek.BucketBatchesApi(client)
    processed = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        processed = batches.get_batch_buckets_batches(bucket_id, batch.batch_id).progress.processed
        if processed:
            break
        time.sleep(0.02)
    assert 0 < processed < 1000, f"no moment to kill the worker at: processed={processed}"
    first.kill()
    killed_at = batches.get_batch_buckets_batches(bucket_id, batch.batch_id)
    assert 0 < killed_at.progress.processed < 1000, killed_at.progress
    assert mixpeek.TasksApi(client).get_task(batch.task_id).status == "IN_PROGRESS"

    second = stack.start_worker()
    done = wait_task(client, batch.task_id)
    assert done.status == "COMPLETED", done.error
    assert done.additional_data["attempts"] >= 2  # the broker redelivered it
    assert "run_task[" in second.log_tail(1_000_000)

    final = resolvable_batch(client, bucket_id, batch.batch_id)
    assert final.status == "COMPLETED"
    assert (final.progress.processed, final.progress.total) == (1000, 1000)
    assert final.failed_object_count == 0
    # Objects whose documents the killed worker committed, but not their batch items, are
    # redone and found written already (dedup skip): they count as skipped, writing nothing.
    assert final.documents_written + (final.progress.objects_skipped or 0) == 1000
    assert mixpeek.CollectionDocumentsApi(client).count_documents(collection_id).count == 1000
    sql, _ = stack.store()
    try:
        per_object = sql.document_ids_by_source(collection_id, object_ids)
    finally:
        sql.close()
    assert sorted(len(per_object.get(oid, [])) for oid in object_ids) == [1] * 1000
    print(
        f"killed at {killed_at.progress.processed}/1000 processed; attempts "
        f"{done.additional_data['attempts']}; documents written {final.documents_written}, "
        f"skipped {final.progress.objects_skipped}"
    )
    with stack.server.client(ADMIN_KEY, "celery-crash") as http:
        for object_id in object_ids[::50]:
            res = http.get(f"/v1/objects/{object_id}/documents")
            assert res.status_code == 200 and res.json()["total"] == 1, res.text
