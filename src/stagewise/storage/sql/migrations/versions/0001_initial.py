"""Keys, namespaces, collections, documents, sequences, idempotency keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("key_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("namespace_id", sa.String(64), nullable=True),
        sa.Column("read_only", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "namespaces",
        sa.Column("namespace_id", sa.String(64), primary_key=True),
        sa.Column("namespace_name", sa.String(64), nullable=False, unique=True),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "collections",
        sa.Column("collection_id", sa.String(64), primary_key=True),
        sa.Column("namespace_id", sa.String(64), nullable=False, index=True),
        sa.Column("collection_name", sa.String(128), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("namespace_id", "collection_name", name="uq_collection_name"),
    )
    op.create_table(
        "documents",
        sa.Column("collection_id", sa.String(64), primary_key=True),
        sa.Column("document_id", sa.String(255), primary_key=True),
        sa.Column("namespace_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("source_type", sa.String(32), nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("vectors", sa.LargeBinary, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_documents_collection_seq", "documents", ["collection_id", "seq"])
    op.create_table(
        "sequences",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("namespace_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(128), nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("idempotency_keys", "sequences", "documents", "collections", "namespaces"):
        op.drop_table(table)
    op.drop_table("api_keys")
