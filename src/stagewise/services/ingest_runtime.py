"""Ingestion inside a serving process: the IngestContext over its Stores, the task queue it
submits to, and the resubmission of tasks a previous run of this process left unfinished."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from stagewise.domain.records import CollectionRecord, DocumentRecord
from stagewise.services import batch_processing  # noqa: F401  (registers the batch task)
from stagewise.services.context import Stores
from stagewise.services.documents import write_documents
from stagewise.services.ingest_context import IngestContext
from stagewise.services.task_queue import InProcessTaskQueue, TaskQueue
from stagewise.services.task_runner import run_task
from stagewise.services.taxonomy_backfill import BACKFILL_TASK
from stagewise.services.taxonomy_materialize import materialize_taxonomies

log = logging.getLogger("stagewise.ingest")


def serving_context(stores: Stores) -> IngestContext:
    """Writes go through this process's index follower, so a batch's documents are
    searchable here as soon as its task records them."""

    def write(col: CollectionRecord, docs: Sequence[DocumentRecord]) -> list[DocumentRecord]:
        return write_documents(stores, col, docs)

    def delete(col: CollectionRecord, document_ids: Sequence[str]) -> int:
        with stores.follower.lock(col.collection_id):
            removed = stores.metadata.delete_documents(col.collection_id, document_ids)
            stores.follower.catch_up(col)
        return removed

    return IngestContext(
        settings=stores.settings,
        metadata=stores.metadata,
        ingest=stores.ingest,
        blobs=stores.blobs,
        embedder=stores.embedder,
        write_documents=write,
        delete_documents=delete,
        worker_id=stores.worker_id,
        enrich=lambda col, docs: materialize_taxonomies(stores, col, docs),
    )


def make_task_queues(stores: Stores) -> tuple[TaskQueue, TaskQueue]:
    """(where batches run, where tasks that need this process's index run)."""
    ctx = serving_context(stores)

    def run(task_id: str) -> None:
        try:
            run_task(ctx, task_id)
        except Exception:  # a store outage: the task stays unfinished and is resubmitted
            log.exception("task %s could not run", task_id)

    local = InProcessTaskQueue(run, stores.settings.ingest_workers)
    if stores.settings.broker_url:
        from stagewise.worker.queue import CeleryTaskQueue

        return CeleryTaskQueue(stores.settings), local
    return local, local


def resubmit_unfinished(stores: Stores) -> int:
    """In-process tasks die with their process; on start, queue them again. Only a process
    that owns its store does this: with several serving processes, an unfinished task may
    be running in another one, so deployments of several workers run ingestion on Celery,
    whose broker redelivers the task of a worker that died (docs/ingestion.md)."""
    if not stores.inline_reads:  # several processes, or Celery (which needs PostgreSQL)
        return 0
    unfinished = stores.ingest.unfinished_tasks()
    for task in unfinished:
        queue = stores.local_tasks if task.task_type == BACKFILL_TASK else stores.tasks
        queue.submit(task.task_id)
    return len(unfinished)
