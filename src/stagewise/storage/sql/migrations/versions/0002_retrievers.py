"""Retrievers, executions and their ranked results.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "retrievers",
        sa.Column("retriever_id", sa.String(64), primary_key=True),
        sa.Column("namespace_id", sa.String(64), nullable=False, index=True),
        sa.Column("retriever_name", sa.String(255), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("namespace_id", "retriever_name", name="uq_retriever_name"),
    )
    op.create_table(
        "executions",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("namespace_id", sa.String(64), nullable=False),
        sa.Column("retriever_id", sa.String(64), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("inputs_hash", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
    )
    op.create_index(
        "ix_executions_scope", "executions", ["namespace_id", "retriever_id", "created_at"]
    )
    op.create_table(
        "execution_results",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("document", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("execution_results")
    op.drop_index("ix_executions_scope", "executions")
    op.drop_table("executions")
    op.drop_table("retrievers")
