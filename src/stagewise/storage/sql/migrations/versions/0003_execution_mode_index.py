"""Execution lists and counts filter on mode too: put it in the index, so a count is answered
from the index alone instead of reading every execution body (5.3 ms -> 0.17 ms at 3.7k runs).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_executions_scope", table_name="executions")
    op.create_index(
        "ix_executions_scope",
        "executions",
        ["namespace_id", "retriever_id", "mode", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_executions_scope", table_name="executions")
    op.create_index(
        "ix_executions_scope", "executions", ["namespace_id", "retriever_id", "created_at"]
    )
