"""Ingestion through the official SDK: bucket -> objects -> bucket-sourced collection ->
batch -> task -> searchable documents with lineage, on every topology's in-process pool
(the Celery run is tests/api/test_celery_ingest.py)."""

from __future__ import annotations

import time
from typing import Any

import mixpeek
import pytest
from mixpeek.models import (
    BucketCreateRequest,
    CreateBatchRequest,
    CreateCollectionRequest,
    CreateNamespaceRequest,
    CreateObjectsBatchRequest,
    CreateRetrieverRequest,
    ExecuteRetrieverRequest,
    TriggerCollectionRequest,
)

from tests.sdk.conftest import ClientFactory

pytestmark = [pytest.mark.sdk]

TOPICS = ["volcanoes", "sourdough", "chess", "orbits", "tides"]


def object_body(i: int) -> dict[str, Any]:
    topic = TOPICS[i % len(TOPICS)]
    return {
        "title": f"note {i}",
        "category": topic,
        "blobs": [
            {
                "property": "content",
                "type": "text",
                "data": f"Field note {i}: a short text about {topic}, number {i} in the series.",
            }
        ],
    }


def setup_bucket(client: mixpeek.ApiClient, name: str = "notes") -> str:
    bucket = mixpeek.BucketsApi(client).create_bucket(
        BucketCreateRequest.from_dict(
            {
                "bucket_name": name,
                "bucket_schema": {
                    "properties": {
                        "content": {"type": "text"},
                        "title": {"type": "string"},
                        "category": {"type": "string"},
                    }
                },
            }
        )
    )
    assert bucket.bucket_id is not None
    return bucket.bucket_id


def upload(client: mixpeek.ApiClient, bucket_id: str, bodies: list[dict[str, Any]]) -> list[str]:
    api = mixpeek.BucketObjectsApi(client)
    ids: list[str] = []
    for start in range(0, len(bodies), 100):
        res = api.create_objects_batch_buckets(
            bucket_id,
            CreateObjectsBatchRequest.from_dict({"objects": bodies[start : start + 100]}),
        )
        assert res.failed_count == 0, res.failed
        ids += [o.object_id for o in res.succeeded]
    return ids


def bucket_collection(client: mixpeek.ApiClient, bucket_id: str, name: str = "notes") -> str:
    col = mixpeek.CollectionsApi(client).create_collection(
        CreateCollectionRequest.from_dict(
            {
                "collection_name": name,
                "source": {"type": "bucket", "bucket_ids": [bucket_id]},
                "feature_extractor": {
                    "feature_extractor_name": "text_extractor",
                    "version": "v1",
                    "input_mappings": {"text": "content"},
                    "field_passthrough": [{"source_path": "title"}, {"source_path": "category"}],
                    "parameters": {"extractor_type": "text_extractor", "split_by": "none"},
                },
            }
        )
    )
    assert col.source.bucket_ids == [bucket_id]
    return col.collection_id


def wait_task(client: mixpeek.ApiClient, task_id: str, timeout_s: float = 180.0) -> Any:
    tasks = mixpeek.TasksApi(client)
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        task = tasks.get_task(task_id)
        if not seen or seen[-1] != task.status:
            seen.append(task.status)
        if task.status in ("COMPLETED", "FAILED", "CANCELED"):
            assert set(seen) <= {"PENDING", "IN_PROGRESS", task.status}, seen
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} still {seen[-1]} after {timeout_s}s")


def resolvable_batch(client: mixpeek.ApiClient, bucket_id: str, batch_id: str) -> Any:
    """The batch once its documents are searchable in the process that answers (with two
    workers, the other one's index follows the store within its lag)."""
    api = mixpeek.BucketBatchesApi(client)
    for _ in range(100):
        batch = api.get_batch_buckets_batches(bucket_id, batch_id)
        if batch.documents_resolvable:
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} documents never became resolvable")


def search(client: mixpeek.ApiClient, collection_id: str, query: str) -> list[dict[str, Any]]:
    retrievers = mixpeek.RetrieversApi(client)
    name = f"notes-search-{collection_id}"
    try:
        retriever_id = retrievers.get_retriever(name).retriever_id
    except mixpeek.ApiException:
        retriever_id = retrievers.create_retriever(
            CreateRetrieverRequest.from_dict(
                {
                    "retriever_name": name,
                    "collection_identifiers": [collection_id],
                    "input_schema": {"query": {"type": "text"}},
                    "stages": [
                        {
                            "stage_name": "search",
                            "stage_type": "filter",
                            "config": {
                                "stage_id": "feature_search",
                                "parameters": {
                                    "searches": [
                                        {
                                            "feature_uri": "mixpeek://text_extractor@v1/all_minilm_l6_v2",
                                            "query": {
                                                "input_mode": "text",
                                                "value": "{{INPUT.query}}",
                                            },
                                            "top_k": 10,
                                        }
                                    ],
                                    "final_top_k": 5,
                                },
                            },
                        }
                    ],
                }
            )
        ).retriever_id
    res = retrievers.execute_retriever(
        retriever_id, ExecuteRetrieverRequest.from_dict({"inputs": {"query": query}})
    )
    return list(res.documents)


def test_bucket_to_searchable_documents_with_lineage(sdk: ClientFactory, ns_name: str) -> None:
    mixpeek.NamespacesApi(sdk()).create_namespace(
        CreateNamespaceRequest.from_dict({"namespace_name": ns_name})
    )
    client = sdk(namespace=ns_name)
    bucket_id = setup_bucket(client)
    object_ids = upload(client, bucket_id, [object_body(i) for i in range(200)])
    collection_id = bucket_collection(client, bucket_id)

    batches = mixpeek.BucketBatchesApi(client)
    draft = batches.create_batch_buckets_batches(
        bucket_id, CreateBatchRequest.from_dict({"object_ids": object_ids[:150]})
    )
    assert (draft.status, draft.lifecycle) == ("DRAFT", "accepted")
    draft = batches.add_objects_to_batch_buckets_batches(
        bucket_id,
        draft.batch_id,
        mixpeek.AddObjectsToBatchRequest.from_dict({"object_ids": object_ids[150:]}),
    )
    assert len(draft.object_ids) == 200
    task = batches.submit_batch_buckets_batches(bucket_id, draft.batch_id)
    assert task.task_type == "api_buckets_batches_process"
    assert task.additional_data["object_count"] == 200
    assert task.additional_data["collection_ids"] == [collection_id]
    done = wait_task(client, task.task_id)
    assert done.status == "COMPLETED", done.error
    assert done.additional_data["objects_processed"] == 200
    assert done.additional_data["documents_written"] == 200
    assert done.additional_data["objects_failed"] == 0

    batch = resolvable_batch(client, bucket_id, draft.batch_id)
    assert batch.status == "COMPLETED" and batch.lifecycle == "indexed"
    assert batch.task_id == task.task_id
    assert batch.tier_tasks[0].status == "COMPLETED"
    assert batch.tier_tasks[0].source_type == "bucket"
    assert (batch.progress.processed, batch.progress.total) == (200, 200)
    assert batch.progress.percent == 100
    assert batch.documents_written == 200 and batch.failed_object_count == 0
    # The same batch read by id alone, without X-Namespace.
    same = mixpeek.BatchesApi(sdk()).get_batch_by_id_batches(draft.batch_id)
    assert same.documents_written == 200

    bucket = mixpeek.BucketsApi(client).get_bucket(bucket_id)
    assert bucket.object_count == 200
    assert mixpeek.CollectionDocumentsApi(client).count_documents(collection_id).count == 200
    obj = mixpeek.BucketObjectsApi(client).get_object_buckets(bucket_id, object_ids[7])
    assert obj.status == "COMPLETED"

    # The exact text of object 7's blob: its document is the nearest (cosine 1).
    hits = search(client, collection_id, object_body(7)["blobs"][0]["data"])
    top = hits[0]
    assert top["source_object_id"] == object_ids[7]
    assert (top["title"], top["category"]) == ("note 7", TOPICS[7 % len(TOPICS)])
    lineage = mixpeek.DocumentLineageApi(client).get_document_lineage(
        collection_id, top["document_id"]
    )
    assert lineage.lineage.root_object_id == object_ids[7]
    assert lineage.lineage.root_bucket_id == bucket_id
    assert lineage.lineage.source_type == "bucket"
    assert lineage.lineage.lineage_chain[0].collection_id == collection_id
    assert (lineage.depth, lineage.total_steps) == (1, 1)

    # A second run over the same objects writes nothing twice (dedup skip)...
    again = batches.create_batch_buckets_batches(
        bucket_id, CreateBatchRequest.from_dict({"object_ids": object_ids}), auto_submit=True
    )
    assert wait_task(client, again.task_id).status == "COMPLETED"
    rerun = batches.get_batch_buckets_batches(bucket_id, again.batch_id)
    assert rerun.progress.objects_skipped == 200 and rerun.documents_written == 0
    # ...and a trigger that replaces rewrites the same documents, still one per object.
    trigger = mixpeek.CollectionsApi(client).trigger_collection(
        collection_id, TriggerCollectionRequest.from_dict({"dedup_strategy": "replace"})
    )
    assert trigger.object_count == 200 and trigger.total_tiers == 1
    assert wait_task(client, trigger.task_id).status == "COMPLETED"
    assert mixpeek.CollectionDocumentsApi(client).count_documents(collection_id).count == 200


def test_bad_objects_fail_alone(sdk: ClientFactory, ns_name: str) -> None:
    mixpeek.NamespacesApi(sdk()).create_namespace(
        CreateNamespaceRequest.from_dict({"namespace_name": ns_name})
    )
    client = sdk(namespace=ns_name)
    bucket_id = setup_bucket(client, "mixed")
    collection_id = bucket_collection(client, bucket_id, "mixed")
    objects = mixpeek.BucketObjectsApi(client)
    bodies = [object_body(i) for i in range(5)]
    schema_violation = {**object_body(5), "title": 123}
    outside = {
        "title": "outside",
        "blobs": [{"property": "content", "type": "text", "data": "file:///etc/passwd"}],
    }
    intake = objects.create_objects_batch_buckets(
        bucket_id,
        CreateObjectsBatchRequest.from_dict({"objects": [*bodies, schema_violation, outside]}),
    )
    # Refused at intake, each alone: nothing of theirs is stored.
    assert (intake.succeeded_count, intake.failed_count) == (5, 2)
    assert sorted(f.object_index for f in intake.failed) == [5, 6]
    good = [o.object_id for o in intake.succeeded]
    # Accepted at intake, unreadable at processing: no text to embed, and bytes that are
    # not UTF-8 in a text blob.
    no_text = objects.create_object_buckets(
        bucket_id, mixpeek.CreateObjectRequest.from_dict({"title": "metadata only"})
    ).object_id
    not_utf8 = objects.create_object_buckets(
        bucket_id,
        mixpeek.CreateObjectRequest.from_dict(
            {
                "title": "binary",
                "blobs": [
                    {"property": "content", "type": "text", "data": "data:text/plain;base64,//79"}
                ],
            }
        ),
    ).object_id

    batches = mixpeek.BucketBatchesApi(client)
    batch = batches.create_batch_buckets_batches(
        bucket_id,
        CreateBatchRequest.from_dict({"object_ids": [*good, no_text, not_utf8]}),
        auto_submit=True,
    )
    task = wait_task(client, batch.task_id)
    assert task.status == "COMPLETED"
    done = batches.get_batch_buckets_batches(bucket_id, batch.batch_id)
    assert done.status == "COMPLETED_WITH_ERRORS"
    failed = {f.object_id: f for f in done.failed_objects}
    assert set(failed) == {no_text, not_utf8}
    assert "no 'content'" in failed[no_text].error
    assert "UTF-8" in failed[not_utf8].error
    assert {f.error_type for f in failed.values()} == {"permanent"}
    assert (done.progress.processed, done.progress.objects_failed) == (7, 2)
    assert done.documents_written == 5 and done.failed_object_count == 2
    assert mixpeek.CollectionDocumentsApi(client).count_documents(collection_id).count == 5
    statuses = {
        oid: objects.get_object_buckets(bucket_id, oid).status for oid in [*good, no_text, not_utf8]
    }
    assert statuses == {**dict.fromkeys(good, "COMPLETED"), no_text: "FAILED", not_utf8: "FAILED"}
    bucket = mixpeek.BucketsApi(client).get_bucket(bucket_id)
    assert bucket.object_count == 7


def test_auto_process_and_its_refusal(sdk: ClientFactory, ns_name: str) -> None:
    mixpeek.NamespacesApi(sdk()).create_namespace(
        CreateNamespaceRequest.from_dict({"namespace_name": ns_name})
    )
    client = sdk(namespace=ns_name)
    objects = mixpeek.BucketObjectsApi(client)
    bucket_id = setup_bucket(client, "auto")
    # Nothing is sourced from the bucket yet: refused, and nothing is stored.
    with pytest.raises(mixpeek.ApiException) as refused:
        objects.create_object_buckets(
            bucket_id, mixpeek.CreateObjectRequest.from_dict(object_body(0)), auto_process=True
        )
    assert refused.value.status == 400
    assert mixpeek.BucketsApi(client).get_bucket(bucket_id).object_count == 0

    collection_id = bucket_collection(client, bucket_id, "auto")
    obj = objects.create_object_buckets(
        bucket_id, mixpeek.CreateObjectRequest.from_dict(object_body(1)), auto_process=True
    )
    assert obj.status == "PENDING"
    for _ in range(300):
        if objects.get_object_buckets(bucket_id, obj.object_id).status != "PENDING":
            break
        time.sleep(0.1)
    assert objects.get_object_buckets(bucket_id, obj.object_id).status == "COMPLETED"
    docs = mixpeek.DocumentLineageApi(client).get_documents_by_object(
        obj.object_id, collection_ids=[collection_id]
    )
    assert [d["chunk_index"] for d in docs["documents"]] == [0]
    assert docs["documents"][0]["text"] == object_body(1)["blobs"][0]["data"]
    tree = mixpeek.DocumentLineageApi(client).get_decomposition_tree_objects(
        obj.object_id, include_document_ids=True
    )
    assert tree["total_documents"] == 1
    assert tree["collections"][0]["collection_id"] == collection_id
    assert tree["collections"][0]["document_ids"] == [docs["documents"][0]["document_id"]]
