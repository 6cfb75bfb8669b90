"""An execution's ranked list is stored in chunks of 100 documents, one row each, instead of
one row per document: the per-row cost was most of what writing an execution record cost
(docs/architecture.md, "Executions"). Stored rankings are carried over, in order.

For execution retention: `source_execution_id` becomes a column (filled from each record's
body), so a run that a kept cache hit replays is not deleted under it; and an index on
(namespace_id, created_at) finds a namespace's oldest runs.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CHUNK = 100  # tables.RESULT_CHUNK when this revision was written; a migration never changes
_IDS_PER_STEP = 200  # executions copied per step: memory stays bounded on a large store


def _chunk_table() -> sa.Table:
    return sa.Table(
        "execution_result_chunks",
        sa.MetaData(),
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("chunk", sa.Integer, primary_key=True),
        sa.Column("documents", sa.JSON, nullable=False),
    )


def _row_table() -> sa.Table:
    return sa.Table(
        "execution_results",
        sa.MetaData(),
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("document", sa.JSON, nullable=False),
    )


def _copy(conn: sa.Connection, source: sa.Table, ordered_by: sa.Column[Any], convert: Any) -> None:
    """Copy `source` into the other layout, a few executions at a time (SQLite cannot
    interleave a streaming read with writes on one connection)."""
    ids = [row[0] for row in conn.execute(sa.select(source.c.execution_id).distinct())]
    for i in range(0, len(ids), _IDS_PER_STEP):
        step = ids[i : i + _IDS_PER_STEP]
        query = (
            sa.select(source)
            .where(source.c.execution_id.in_(step))
            .order_by(source.c.execution_id, ordered_by)
        )
        target, rows = convert(conn.execute(query).all())
        if rows:
            conn.execute(target.insert(), rows)


def upgrade() -> None:
    conn = op.get_bind()
    old, new = _row_table(), _chunk_table()
    new.create(conn)

    def to_chunks(rows: list[Any]) -> tuple[sa.Table, list[dict[str, Any]]]:
        chunks: dict[tuple[str, int], list[Any]] = {}
        for execution_id, position, document in rows:  # ordered, so lists stay in order
            chunks.setdefault((execution_id, position // CHUNK), []).append(document)
        return new, [
            {"execution_id": eid, "chunk": chunk, "documents": documents}
            for (eid, chunk), documents in chunks.items()
        ]

    _copy(conn, old, old.c.position, to_chunks)
    old.drop(conn)
    op.add_column("executions", sa.Column("source_execution_id", sa.String(64), nullable=True))
    from_body = (
        "body ->> 'source_execution_id'"
        if conn.dialect.name == "postgresql"
        else "json_extract(body, '$.source_execution_id')"
    )
    op.execute(f"UPDATE executions SET source_execution_id = {from_body}")
    op.create_index("ix_executions_age", "executions", ["namespace_id", "created_at"])
    op.create_index("ix_executions_source", "executions", ["source_execution_id"])


def downgrade() -> None:
    conn = op.get_bind()
    op.drop_index("ix_executions_source", "executions")
    op.drop_index("ix_executions_age", "executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("source_execution_id")
    old, new = _row_table(), _chunk_table()
    old.create(conn)

    def to_rows(rows: list[Any]) -> tuple[sa.Table, list[dict[str, Any]]]:
        return old, [
            {"execution_id": eid, "position": chunk * CHUNK + i, "document": document}
            for eid, chunk, documents in rows
            for i, document in enumerate(documents)
        ]

    _copy(conn, new, new.c.chunk, to_rows)
    new.drop(conn)
