"""Persisted enrichment at ingestion: a bucket-sourced collection that applies a taxonomy
gets each held-out object's label written onto its document when its batch runs (the
in-process pool: a Celery worker has no index to match with, and fails those objects with
that reason instead)."""

from __future__ import annotations

import mixpeek
import pytest
from mixpeek.models import CreateBatchRequest, CreateCollectionRequest

from tests.sdk.conftest import ClientFactory
from tests.sdk.test_ingest_flow import setup_bucket, upload, wait_task
from tests.sdk.test_taxonomy_accuracy import ACCURACY_FLOOR, report
from tests.support.taxonomy_world import DATA, TaxonomyWorld

pytestmark = [pytest.mark.sdk]


def test_batches_materialise_the_applied_taxonomy(
    sdk: ClientFactory, taxonomy_world: TaxonomyWorld
) -> None:
    client = sdk(namespace=taxonomy_world.namespace)
    bucket_id = setup_bucket(client, "held-out")
    held = DATA["held_out"]
    bodies = [
        {
            "title": f"held {i}",
            "category": d["label"],
            "blobs": [{"property": "content", "type": "text", "data": d["text"]}],
        }
        for i, d in enumerate(held)
    ]
    object_ids = upload(client, bucket_id, bodies)
    col = mixpeek.CollectionsApi(client).create_collection(
        CreateCollectionRequest.from_dict(
            {
                "collection_name": "held-out-labelled",
                "source": {"type": "bucket", "bucket_ids": [bucket_id]},
                "feature_extractor": {
                    "feature_extractor_name": "text_extractor",
                    "version": "v1",
                    "input_mappings": {"text": "content"},
                    "field_passthrough": [{"source_path": "category"}],
                },
                "taxonomy_applications": [
                    {"taxonomy_id": taxonomy_world.taxonomy_id, "execution_mode": "materialize"}
                ],
            }
        )
    )
    batch = mixpeek.BucketBatchesApi(client).create_batch_buckets_batches(
        bucket_id, CreateBatchRequest.from_dict({"object_ids": object_ids}), auto_submit=True
    )
    assert wait_task(client, batch.task_id).status == "COMPLETED"
    docs = mixpeek.CollectionDocumentsApi(client)
    listed = docs.list_documents(col.collection_id, limit=100)
    assert len(listed.results) == len(held)
    label = f"_taxonomy_{taxonomy_world.taxonomy_id}_label"
    rows = [d.additional_properties for d in listed.results]
    predicted = [r.get(label) for r in rows]
    truth = [r["category"] for r in rows]
    assert all(
        isinstance(r.get(f"_taxonomy_{taxonomy_world.taxonomy_id}_score"), float) for r in rows
    )
    assert report("ingestion", predicted, truth) >= ACCURACY_FLOOR


def test_apply_taxonomy_backfills_existing_documents(
    sdk: ClientFactory, taxonomy_world: TaxonomyWorld
) -> None:
    client = sdk(namespace=taxonomy_world.namespace)
    collections = mixpeek.CollectionsApi(client)
    tax_id = taxonomy_world.taxonomy_id
    request = mixpeek.ApplyTaxonomyRequest.from_dict({"taxonomy_id": tax_id})
    # Not applied by the collection yet: refused, nothing started.
    with pytest.raises(mixpeek.ApiException) as refused:
        mixpeek.CollectionTaxonomiesApi(client).apply_taxonomy_to_collection(
            taxonomy_world.articles_id, request
        )
    assert refused.value.status == 422
    collections.update_collection(
        taxonomy_world.articles_id,
        {"taxonomy_applications": [{"taxonomy_id": tax_id, "execution_mode": "materialize"}]},
    )
    started = mixpeek.CollectionTaxonomiesApi(client).apply_taxonomy_to_collection(
        taxonomy_world.articles_id, request
    )
    assert started.estimated_documents == len(DATA["held_out"])
    task = wait_task(client, started.task_id)
    assert task.status == "COMPLETED", task.error
    assert task.additional_data["documents_processed"] == len(DATA["held_out"])
    listed = mixpeek.CollectionDocumentsApi(client).list_documents(
        taxonomy_world.articles_id, limit=100
    )
    rows = [d.additional_properties for d in listed.results]
    assert len(rows) == len(DATA["held_out"])  # rewritten in place, none added
    predicted = [r.get(f"_taxonomy_{tax_id}_label") for r in rows]
    truth = [r["metadata"]["topic"] for r in rows]
    assert report("apply-taxonomy backfill", predicted, truth) >= ACCURACY_FLOOR
