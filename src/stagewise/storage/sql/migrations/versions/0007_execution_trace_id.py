"""Executions record the id of the request that started them (X-Request-ID), so a run can be
found from a log line and a log line from a run (docs/observability.md). Nullable: runs
recorded before have none. Not indexed: it is looked up by hand, rarely, and every execution
write would pay for an index.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("trace_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("trace_id")
