"""Ingestion: buckets, their objects, batches and their per-object items, tasks, and
taxonomies (storage/ingest.py).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "buckets",
        sa.Column("bucket_id", sa.String(64), primary_key=True),
        sa.Column("namespace_id", sa.String(64), nullable=False, index=True),
        sa.Column("bucket_name", sa.String(255), nullable=False),
        sa.Column("object_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total_size_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("body", sa.JSON, nullable=False),
        *_stamps(),
        sa.UniqueConstraint("namespace_id", "bucket_name", name="uq_bucket_name"),
    )
    op.create_table(
        "bucket_objects",
        sa.Column("object_id", sa.String(64), primary_key=True),
        sa.Column("bucket_id", sa.String(64), nullable=False),
        sa.Column("namespace_id", sa.String(64), nullable=False),
        sa.Column("unique_key_value", sa.String(1024), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("body", sa.JSON, nullable=False),
        *_stamps(),
        sa.UniqueConstraint("bucket_id", "unique_key_value", name="uq_object_unique_key"),
        sa.UniqueConstraint("bucket_id", "idempotency_key", name="uq_object_idempotency_key"),
    )
    op.create_index("ix_bucket_objects_bucket", "bucket_objects", ["bucket_id", "object_id"])
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("namespace_id", sa.String(64), nullable=False),
        sa.Column("bucket_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        *_stamps(),
    )
    op.create_index("ix_batches_scope", "batches", ["namespace_id", "bucket_id", "created_at"])
    op.create_table(
        "batch_items",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("object_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("documents_written", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("namespace_id", sa.String(64), nullable=False),
        sa.Column("task_type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        *_stamps(),
    )
    op.create_index("ix_tasks_scope", "tasks", ["namespace_id", "status", "created_at"])
    op.create_table(
        "taxonomies",
        sa.Column("taxonomy_id", sa.String(64), primary_key=True),
        sa.Column("namespace_id", sa.String(64), nullable=False, index=True),
        sa.Column("taxonomy_name", sa.String(255), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        *_stamps(),
        sa.UniqueConstraint("namespace_id", "taxonomy_name", name="uq_taxonomy_name"),
    )


def downgrade() -> None:
    op.drop_table("taxonomies")
    op.drop_index("ix_tasks_scope", "tasks")
    op.drop_table("tasks")
    op.drop_table("batch_items")
    op.drop_index("ix_batches_scope", "batches")
    op.drop_table("batches")
    op.drop_index("ix_bucket_objects_bucket", "bucket_objects")
    op.drop_table("bucket_objects")
    op.drop_table("buckets")
