"""What a Celery worker process holds: the SQL store, the blob store and the embedding
model, but no search index. It commits documents to the store (the log); the serving
processes' index followers apply them (docs/architecture.md)."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Sequence

from celery import Celery
from celery.signals import worker_process_init

from stagewise.config import Settings
from stagewise.domain.records import CollectionRecord, DocumentRecord
from stagewise.embeddings.factory import make_embedder
from stagewise.services import batch_processing  # noqa: F401  (registers the batch task)
from stagewise.services.documents import embed_missing
from stagewise.services.ingest_context import IngestContext
from stagewise.services.task_runner import run_task
from stagewise.storage.blobs import LocalBlobStore
from stagewise.storage.sql.ingest_store import SqlIngestStore
from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.worker.celery_app import TASK_NAME, make_celery

log = logging.getLogger("stagewise.worker")


def open_worker_context(settings: Settings) -> IngestContext:
    sql = SqlMetadataStore(settings.resolved_database_url())
    embedder = make_embedder(settings.embedder, settings.embed_batch_size)

    def write(col: CollectionRecord, docs: Sequence[DocumentRecord]) -> list[DocumentRecord]:
        embed_missing(embedder, col, docs)
        return sql.upsert_documents(docs)

    def delete(col: CollectionRecord, document_ids: Sequence[str]) -> int:
        return sql.delete_documents(col.collection_id, document_ids)

    return IngestContext(
        settings=settings,
        metadata=sql,
        ingest=SqlIngestStore(sql.engine),
        blobs=LocalBlobStore(settings.data_dir / "blobs"),
        embedder=embedder,
        write_documents=write,
        delete_documents=delete,
        worker_id=f"celery-{os.getpid()}-{secrets.token_hex(4)}",
    )


class WorkerProcess:
    """Opens its context on the first task in each (forked) worker process."""

    def __init__(self, settings: Settings, threads: int = 0) -> None:
        self.settings = settings
        self.threads = threads
        self._ctx: IngestContext | None = None
        self._pid = 0

    def context(self) -> IngestContext:
        if self._ctx is None or self._pid != os.getpid():
            self._ctx, self._pid = open_worker_context(self.settings), os.getpid()
        return self._ctx

    def warm_up(self) -> None:
        """Open the stores and load the model before the first task, so that a task is not
        held (and a batch not timed) while the model loads."""
        self.context().embedder.embed(["warm up"])
        if self.threads and "torch" in sys.modules:
            # The model takes every core by default; pool processes (and other workers on the
            # machine) that each did would ask for more threads than there are cores.
            sys.modules["torch"].set_num_threads(self.threads)
        log.info("pool process %d warmed up (%s model threads)", os.getpid(), self.threads or "all")


def worker_app(settings: Settings, threads: int = 0) -> Celery:
    """`threads`: the model's threads in each pool process (0: every core)."""
    app = make_celery(settings)
    # A pool process warms up before it reports itself up; loading the model takes seconds.
    app.conf.worker_proc_alive_timeout = 300.0
    process = WorkerProcess(settings, threads)

    @worker_process_init.connect(weak=False)  # type: ignore[untyped-decorator]
    def _warm(**_: object) -> None:
        process.warm_up()

    @app.task(name=TASK_NAME)  # type: ignore[untyped-decorator]
    def run(task_id: str) -> None:
        run_task(process.context(), task_id)

    return app
