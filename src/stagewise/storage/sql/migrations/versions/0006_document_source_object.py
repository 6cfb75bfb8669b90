"""Documents remember the bucket object they were made from, so a rerun of a batch finds
what an object already wrote (idempotent processing).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("source_object_id", sa.String(64), nullable=True))
    op.create_index(
        "ix_documents_source_object", "documents", ["collection_id", "source_object_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_documents_source_object", "documents")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("source_object_id")
