"""Retriever interactions (clicks, views, feedback on a run's results): one row each, and one
per (interaction, type) so a type filter and an execution's per-type counts use an index.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "retriever_interactions",
        sa.Column("interaction_id", sa.String(64), primary_key=True),
        sa.Column("namespace_id", sa.String(64), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=True),
        sa.Column("retriever_id", sa.String(64), nullable=True),
        sa.Column("feature_id", sa.String(255), nullable=False),
        sa.Column("session_id", sa.String(255), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("occurred_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_interactions_age", "retriever_interactions", ["namespace_id", "created_at"])
    op.create_index("ix_interactions_execution", "retriever_interactions", ["execution_id"])
    op.create_index("ix_interactions_retriever", "retriever_interactions", ["retriever_id"])
    op.create_table(
        "retriever_interaction_types",
        sa.Column("interaction_id", sa.String(64), primary_key=True),
        sa.Column("interaction_type", sa.String(32), primary_key=True),
        sa.Column("namespace_id", sa.String(64), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=True),
    )
    op.create_index(
        "ix_interaction_types_execution",
        "retriever_interaction_types",
        ["execution_id", "interaction_type"],
    )
    op.create_index(
        "ix_interaction_types_type",
        "retriever_interaction_types",
        ["namespace_id", "interaction_type"],
    )


def downgrade() -> None:
    op.drop_table("retriever_interaction_types")
    op.drop_table("retriever_interactions")
