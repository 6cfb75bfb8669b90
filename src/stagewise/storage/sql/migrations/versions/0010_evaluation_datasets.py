"""Evaluation datasets: judged queries, one row per dataset, names unique per namespace.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "evaluation_datasets",
        sa.Column("dataset_id", sa.String(64), primary_key=True),
        sa.Column("namespace_id", sa.String(64), nullable=False),
        sa.Column("dataset_name", sa.String(255), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("namespace_id", "dataset_name", name="uq_dataset_name"),
    )
    op.create_index("ix_datasets_age", "evaluation_datasets", ["namespace_id", "created_at"])


def downgrade() -> None:
    op.drop_table("evaluation_datasets")
