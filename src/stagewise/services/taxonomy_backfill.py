"""`POST /v1/collections/{id}/apply-taxonomy`: materialise one of a collection's taxonomy
applications onto the documents it already holds, as a task with progress.

The task pages the collection by seq up to the head it saw when it started, so documents it
rewrites (which take new seqs) are not visited twice. It matches with retrievers, so it
runs in a serving process's own pool even when batches run on Celery."""

from __future__ import annotations

from typing import Any

from stagewise.domain.filters import parse_filter
from stagewise.domain.ingest_records import TaskRecord
from stagewise.domain.records import CollectionRecord
from stagewise.errors import ValidationFailed
from stagewise.ids import new_id
from stagewise.services.context import Stores
from stagewise.services.ingest_context import IngestContext
from stagewise.services.task_runner import TaskOutcome, task_handler

BACKFILL_TASK = "api_taxonomies_materialize"


def _application(col: CollectionRecord, taxonomy_id: str) -> dict[str, Any]:
    for app in col.taxonomy_applications:
        if app.get("taxonomy_id") == taxonomy_id:
            return app
    raise ValidationFailed(
        f"Collection '{col.collection_name}' does not apply taxonomy '{taxonomy_id}'; add it "
        "to the collection's taxonomy_applications first",
        code="taxonomy_not_applied",
        field="taxonomy_id",
    )


def start_backfill(stores: Stores, *, col: CollectionRecord, body: dict[str, Any]) -> TaskRecord:
    taxonomy_id = body.get("taxonomy_id")
    if not isinstance(taxonomy_id, str) or not taxonomy_id:
        raise ValidationFailed("taxonomy_id is required", field="taxonomy_id")
    tax = stores.taxonomies.get_taxonomy(col.namespace_id, taxonomy_id)
    app = _application(col, tax.taxonomy_id if tax is not None else taxonomy_id)
    batch_size = body.get("batch_size") or 1000
    if not isinstance(batch_size, int) or not 100 <= batch_size <= 5000:
        raise ValidationFailed("batch_size must be an integer from 100 to 5000", field="batch_size")
    scroll_filters = body.get("scroll_filters", app.get("scroll_filters"))
    if scroll_filters:
        parse_filter(scroll_filters)  # a bad filter is a 422 now, not a failed task later
    task = TaskRecord(
        task_id=new_id("task_"),
        namespace_id=col.namespace_id,
        task_type=BACKFILL_TASK,
        inputs=[col.collection_id, app["taxonomy_id"]],
        additional_data={
            "collection_id": col.collection_id,
            "taxonomy_id": app["taxonomy_id"],
            "scroll_filters": scroll_filters,
            "batch_size": batch_size,
            "estimated_documents": stores.metadata.count_documents(col.collection_id),
            "documents_processed": 0,
        },
    )
    stores.ingest.create_task(task)
    stores.local_tasks.submit(task.task_id)
    return task


@task_handler(BACKFILL_TASK)
def run_backfill(ctx: IngestContext, task: TaskRecord) -> TaskOutcome:
    data = task.additional_data
    col = ctx.metadata.get_collection(task.namespace_id, str(data["collection_id"]))
    if col is None:
        return TaskOutcome("FAILED", f"collection '{data['collection_id']}' was deleted")
    if ctx.enrich is None:
        return TaskOutcome("FAILED", "taxonomy backfills run in a serving process")
    app = {**_application(col, str(data["taxonomy_id"])), "scroll_filters": data["scroll_filters"]}
    one = col.model_copy(update={"taxonomy_applications": [app]})
    head = ctx.metadata.collection_signature(col.collection_id)
    after, processed, rewritten = 0, 0, 0
    while True:
        page = ctx.metadata.list_documents(
            col.collection_id, after_seq=after, limit=int(data["batch_size"])
        )
        docs = [d for d in page.documents if d.seq <= head]
        if not docs:
            break
        enriched = ctx.enrich(one, docs)
        changed = [new for old, new in zip(docs, enriched, strict=True) if new != old]
        if changed:
            ctx.write_documents(col, changed)
        processed, rewritten = processed + len(docs), rewritten + len(changed)
        current = ctx.ingest.get_task(task.task_id)
        if current is None or current.status == "CANCELED":
            return TaskOutcome("CANCELED", "canceled by request")
        ctx.ingest.update_task(
            current.model_copy(
                update={
                    "additional_data": {**current.additional_data, "documents_processed": processed}
                }
            )
        )
        if page.next_after_seq is None or docs[-1].seq >= head:
            break
        after = page.next_after_seq
    counts = {"documents_processed": processed, "documents_enriched": rewritten}
    return TaskOutcome("COMPLETED", additional_data=counts)
