"""Table definitions. Alembic migrations under migrations/ create them; keep both in step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """DateTime(timezone=True) that writes UTC and reads back aware UTC.

    SQLite keeps no offset: an aware non-UTC value would be stored as its wall-clock time and
    read back as that time in UTC (the wrong instant). Normalising on the way in fixes that, and
    also makes string comparisons of bound values (since/until filters) correct on SQLite.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value  # naive values are UTC by convention
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        ts: datetime = value
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("name", String(255), nullable=False, default=""),
    Column("namespace_id", String(64), nullable=True),
    Column("read_only", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("key_prefix", String(16), nullable=False, default=""),
    Column("expires_at", UtcDateTime(timezone=True), nullable=True),
    Column("revoked_at", UtcDateTime(timezone=True), nullable=True),
)

namespaces = Table(
    "namespaces",
    metadata,
    Column("namespace_id", String(64), primary_key=True),
    Column("namespace_name", String(64), nullable=False, unique=True),
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("updated_at", UtcDateTime(timezone=True), nullable=False),
)

collections = Table(
    "collections",
    metadata,
    Column("collection_id", String(64), primary_key=True),
    Column("namespace_id", String(64), nullable=False, index=True),
    Column("collection_name", String(128), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("updated_at", UtcDateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace_id", "collection_name", name="uq_collection_name"),
)

documents = Table(
    "documents",
    metadata,
    Column("collection_id", String(64), primary_key=True),
    Column("document_id", String(255), primary_key=True),
    Column("namespace_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("source_type", String(32), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("vectors", LargeBinary, nullable=True),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("updated_at", UtcDateTime(timezone=True), nullable=False),
    # The bucket object a processed document came from (None for direct writes): how a
    # rerun of a batch finds what the object already wrote (migration 0006).
    Column("source_object_id", String(64), nullable=True),
    Index("ix_documents_collection_seq", "collection_id", "seq"),
    Index("ix_documents_source_object", "collection_id", "source_object_id"),
)

# One row per counter; writers bump it inside their transaction, which serialises them.
sequences = Table(
    "sequences",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

idempotency = Table(
    "idempotency_keys",
    metadata,
    Column("namespace_id", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(128), nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
)

retrievers = Table(
    "retrievers",
    metadata,
    Column("retriever_id", String(64), primary_key=True),
    Column("namespace_id", String(64), nullable=False, index=True),
    Column("retriever_name", String(255), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("updated_at", UtcDateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace_id", "retriever_name", name="uq_retriever_name"),
)

executions = Table(
    "executions",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("namespace_id", String(64), nullable=False),
    Column("retriever_id", String(64), nullable=True),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("inputs_hash", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("completed_at", UtcDateTime(timezone=True), nullable=True),
    Column("trace_id", String(64), nullable=True),
    # The run a cache hit replays: retention keeps it while a hit reads its results.
    Column("source_execution_id", String(64), nullable=True),
    Index("ix_executions_scope", "namespace_id", "retriever_id", "mode", "created_at"),
    Index("ix_executions_age", "namespace_id", "created_at"),
    Index("ix_executions_source", "source_execution_id"),
)

# An execution's ranked list in chunks of RESULT_CHUNK documents (positions chunk*N ..
# chunk*N+N-1): one row per page-sized run instead of one per document, because the row
# overhead was most of an execute's record-writing cost (docs/architecture.md, "Executions").
RESULT_CHUNK = 100

execution_result_chunks = Table(
    "execution_result_chunks",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("documents", JSON, nullable=False),
)

# Ingestion (storage/ingest.py). Records keep their full shape in `body`; the columns are what
# lookups, uniqueness and counters need.
buckets = Table(
    "buckets",
    metadata,
    Column("bucket_id", String(64), primary_key=True),
    Column("namespace_id", String(64), nullable=False, index=True),
    Column("bucket_name", String(255), nullable=False),
    Column("object_count", BigInteger, nullable=False, default=0),
    Column("total_size_bytes", BigInteger, nullable=False, default=0),
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("updated_at", UtcDateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace_id", "bucket_name", name="uq_bucket_name"),
)

bucket_objects = Table(
    "bucket_objects",
    metadata,
    Column("object_id", String(64), primary_key=True),
    Column("bucket_id", String(64), nullable=False),
    Column("namespace_id", String(64), nullable=False),
    Column("unique_key_value", String(1024), nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    Column("status", String(32), nullable=False),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("updated_at", UtcDateTime(timezone=True), nullable=False),
    # NULLs never clash, so buckets without a unique key are unconstrained.
    UniqueConstraint("bucket_id", "unique_key_value", name="uq_object_unique_key"),
    UniqueConstraint("bucket_id", "idempotency_key", name="uq_object_idempotency_key"),
    Index("ix_bucket_objects_bucket", "bucket_id", "object_id"),
)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("namespace_id", String(64), nullable=False),
    Column("bucket_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("updated_at", UtcDateTime(timezone=True), nullable=False),
    Index("ix_batches_scope", "namespace_id", "bucket_id", "created_at"),
)

batch_items = Table(
    "batch_items",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("object_id", String(64), primary_key=True),
    Column("status", String(32), nullable=False),
    # A column, so a batch's progress is one GROUP BY, whatever its size.
    Column("documents_written", BigInteger, nullable=False, default=0),
    Column("body", JSON, nullable=False),
    Column("updated_at", UtcDateTime(timezone=True), nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("namespace_id", String(64), nullable=False),
    Column("task_type", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("updated_at", UtcDateTime(timezone=True), nullable=False),
    Index("ix_tasks_scope", "namespace_id", "status", "created_at"),
)

taxonomies = Table(
    "taxonomies",
    metadata,
    Column("taxonomy_id", String(64), primary_key=True),
    Column("namespace_id", String(64), nullable=False, index=True),
    Column("taxonomy_name", String(255), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("updated_at", UtcDateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace_id", "taxonomy_name", name="uq_taxonomy_name"),
)

# Retriever interactions (storage/sql/interaction_store.py). One row per interaction, and one
# per (interaction, type) so a type filter and an execution's per-type counts are indexed.
retriever_interactions = Table(
    "retriever_interactions",
    metadata,
    Column("interaction_id", String(64), primary_key=True),
    Column("namespace_id", String(64), nullable=False),
    Column("execution_id", String(64), nullable=True),
    Column("retriever_id", String(64), nullable=True),
    Column("feature_id", String(255), nullable=False),
    Column("session_id", String(255), nullable=True),
    Column("user_id", String(255), nullable=True),
    Column("position", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("occurred_at", UtcDateTime(timezone=True), nullable=True),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Index("ix_interactions_age", "namespace_id", "created_at"),
    Index("ix_interactions_execution", "execution_id"),
    Index("ix_interactions_retriever", "retriever_id"),
)

retriever_interaction_types = Table(
    "retriever_interaction_types",
    metadata,
    Column("interaction_id", String(64), primary_key=True),
    Column("interaction_type", String(32), primary_key=True),
    Column("namespace_id", String(64), nullable=False),
    Column("execution_id", String(64), nullable=True),
    Index("ix_interaction_types_execution", "execution_id", "interaction_type"),
    Index("ix_interaction_types_type", "namespace_id", "interaction_type"),
)

# Evaluation datasets (storage/sql/dataset_store.py): the queries live in `body`.
evaluation_datasets = Table(
    "evaluation_datasets",
    metadata,
    Column("dataset_id", String(64), primary_key=True),
    Column("namespace_id", String(64), nullable=False),
    Column("dataset_name", String(255), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime(timezone=True), nullable=False),
    Column("updated_at", UtcDateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace_id", "dataset_name", name="uq_dataset_name"),
    Index("ix_datasets_age", "namespace_id", "created_at"),
)
