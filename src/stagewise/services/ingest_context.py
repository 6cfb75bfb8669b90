"""What ingestion work needs, whether it runs in a serving process or in a Celery worker.

A serving process writes documents through its own index follower (read-your-writes); a
Celery worker has no index and only commits to the SQL store, which the serving processes'
followers then apply (docs/architecture.md, "the SQL store is the log")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stagewise.config import Settings
from stagewise.domain.records import CollectionRecord, DocumentRecord
from stagewise.embeddings.base import Embedder
from stagewise.storage.ingest import BlobStore, IngestStore
from stagewise.storage.protocols import MetadataStore

# Embeds what is missing, commits, and returns the documents as stored (with their seq).
DocumentWriter = Callable[[CollectionRecord, Sequence[DocumentRecord]], list[DocumentRecord]]
DocumentDeleter = Callable[[CollectionRecord, Sequence[str]], int]
# Materialises a collection's taxonomy_applications onto new documents (it runs retrievers,
# so it needs a search index: None in a Celery worker).
DocumentEnricher = Callable[[CollectionRecord, Sequence[DocumentRecord]], list[DocumentRecord]]


@dataclass
class IngestContext:
    settings: Settings
    metadata: MetadataStore
    ingest: IngestStore
    blobs: BlobStore
    embedder: Embedder
    write_documents: DocumentWriter
    delete_documents: DocumentDeleter
    worker_id: str
    enrich: DocumentEnricher | None = None
