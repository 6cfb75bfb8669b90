"""MetadataStore over SQLAlchemy Core. One implementation serves SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, RowMapping

from stagewise.domain.records import (
    ApiKeyRecord,
    CollectionRecord,
    DocumentRecord,
    IdempotencyRecord,
    NamespaceRecord,
)
from stagewise.storage.protocols import DocumentPage
from stagewise.storage.sql import tables as t
from stagewise.storage.sql.dataset_store import DatasetTables
from stagewise.storage.sql.engine import make_engine
from stagewise.storage.sql.interaction_store import InteractionTables, delete_interactions_where
from stagewise.storage.sql.migrate import upgrade_to_head
from stagewise.storage.sql.pipeline_store import PipelineTables
from stagewise.storage.sql.vectors_codec import decode_vectors, encode_vectors

# The PostgreSQL channel on which every document write is announced to the index followers.
LOG_CHANNEL = "stagewise_log"
# ... and every catalog write (namespaces, collections, retrievers), to drop cached copies.
CATALOG_CHANNEL = "stagewise_catalog"
_NS_COLUMNS = {"namespace_id", "namespace_name", "created_at", "updated_at"}
_COL_COLUMNS = {"collection_id", "namespace_id", "collection_name", "created_at", "updated_at"}


def _aware(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class SqlMetadataStore(PipelineTables, InteractionTables, DatasetTables):
    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        upgrade_to_head(self.engine)
        # Execution records are a log of reads, written on every execute: committed without
        # waiting for a per-write fsync (SQLite synchronous=NORMAL, PostgreSQL
        # synchronous_commit=off), still safe against a crash of this process.
        self.log_engine = make_engine(url, synchronous="NORMAL")

    def close(self) -> None:
        self.engine.dispose()
        self.log_engine.dispose()

    # ---- keys
    # Every request authenticates through get_key_by_hash, uncached (a revocation must hold on
    # the next request, whichever process made it), so its statement is built once: the
    # SQLAlchemy compile-cache lookup of a fresh select() was half of the lookup's cost.
    _KEY_BY_HASH = sa.select(t.api_keys).where(t.api_keys.c.key_hash == sa.bindparam("key_hash"))

    def create_key(self, key: ApiKeyRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.api_keys.insert().values(**key.model_dump()))

    def get_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(self._KEY_BY_HASH, {"key_hash": key_hash}).mappings().first()
        return None if row is None else ApiKeyRecord(**row)

    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        query = sa.select(t.api_keys).where(t.api_keys.c.key_id == key_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else ApiKeyRecord(**row)

    def list_keys(self) -> list[ApiKeyRecord]:
        c = t.api_keys.c
        query = sa.select(t.api_keys).order_by(c.created_at, c.key_id)
        with self.engine.connect() as conn:
            return [ApiKeyRecord(**row) for row in conn.execute(query).mappings()]

    def revoke_key(self, key_id: str, at: datetime) -> ApiKeyRecord | None:
        c = t.api_keys.c
        with self.engine.begin() as conn:
            # Only the first revocation sets the time: revoking again changes nothing.
            conn.execute(
                t.api_keys.update()
                .where(c.key_id == key_id, c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            row = conn.execute(sa.select(t.api_keys).where(c.key_id == key_id)).mappings().first()
        return None if row is None else ApiKeyRecord(**row)

    # ---- namespaces
    @staticmethod
    def _ns_values(ns: NamespaceRecord) -> dict[str, Any]:
        body = ns.model_dump(mode="json", exclude=_NS_COLUMNS)
        return {
            "namespace_id": ns.namespace_id,
            "namespace_name": ns.namespace_name,
            "body": body,
            "created_at": ns.created_at,
            "updated_at": ns.updated_at,
        }

    @staticmethod
    def _ns_from_row(row: RowMapping) -> NamespaceRecord:
        return NamespaceRecord(
            **row["body"],
            namespace_id=row["namespace_id"],
            namespace_name=row["namespace_name"],
            created_at=_aware(row["created_at"]),
            updated_at=_aware(row["updated_at"]),
        )

    def create_namespace(self, ns: NamespaceRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.namespaces.insert().values(**self._ns_values(ns)))

    def get_namespace(self, identifier: str) -> NamespaceRecord | None:
        c = t.namespaces.c
        query = sa.select(t.namespaces).where(
            sa.or_(c.namespace_id == identifier, c.namespace_name == identifier)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        # An id match wins over a name that happens to look like an id.
        rows = sorted(rows, key=lambda r: r["namespace_id"] != identifier)
        return self._ns_from_row(rows[0]) if rows else None

    def list_namespaces(self) -> list[NamespaceRecord]:
        query = sa.select(t.namespaces).order_by(
            t.namespaces.c.created_at, t.namespaces.c.namespace_id
        )
        with self.engine.connect() as conn:
            return [self._ns_from_row(r) for r in conn.execute(query).mappings()]

    def update_namespace(self, ns: NamespaceRecord) -> None:
        values = self._ns_values(ns)
        with self.engine.begin() as conn:
            conn.execute(
                t.namespaces.update()
                .where(t.namespaces.c.namespace_id == ns.namespace_id)
                .values(**values)
            )

    def delete_namespace(self, namespace_id: str) -> None:
        with self.engine.begin() as conn:
            executions = sa.select(t.executions.c.execution_id).where(
                t.executions.c.namespace_id == namespace_id
            )
            chunks = t.execution_result_chunks
            conn.execute(chunks.delete().where(chunks.c.execution_id.in_(executions)))
            delete_interactions_where(conn, t.retriever_interactions.c.namespace_id == namespace_id)
            owned = (t.documents, t.collections, t.idempotency, t.executions, t.retrievers)
            for table in (*owned, t.evaluation_datasets):
                conn.execute(table.delete().where(table.c.namespace_id == namespace_id))
            conn.execute(t.api_keys.delete().where(t.api_keys.c.namespace_id == namespace_id))
            conn.execute(t.namespaces.delete().where(t.namespaces.c.namespace_id == namespace_id))

    # ---- collections
    @staticmethod
    def _col_values(col: CollectionRecord) -> dict[str, Any]:
        return {
            "collection_id": col.collection_id,
            "namespace_id": col.namespace_id,
            "collection_name": col.collection_name,
            "body": col.model_dump(mode="json", exclude=_COL_COLUMNS),
            "created_at": col.created_at,
            "updated_at": col.updated_at,
        }

    @staticmethod
    def _col_from_row(row: RowMapping) -> CollectionRecord:
        return CollectionRecord(
            **row["body"],
            collection_id=row["collection_id"],
            namespace_id=row["namespace_id"],
            collection_name=row["collection_name"],
            created_at=_aware(row["created_at"]),
            updated_at=_aware(row["updated_at"]),
        )

    def create_collection(self, col: CollectionRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.collections.insert().values(**self._col_values(col)))

    def get_collection(self, namespace_id: str, identifier: str) -> CollectionRecord | None:
        c = t.collections.c
        query = sa.select(t.collections).where(
            c.namespace_id == namespace_id,
            sa.or_(c.collection_id == identifier, c.collection_name == identifier),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        rows = sorted(rows, key=lambda r: r["collection_id"] != identifier)
        return self._col_from_row(rows[0]) if rows else None

    def list_collections(self, namespace_id: str) -> list[CollectionRecord]:
        c = t.collections.c
        query = (
            sa.select(t.collections)
            .where(c.namespace_id == namespace_id)
            .order_by(c.created_at, c.collection_id)
        )
        with self.engine.connect() as conn:
            return [self._col_from_row(r) for r in conn.execute(query).mappings()]

    def update_collection(self, col: CollectionRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.collections.update()
                .where(t.collections.c.collection_id == col.collection_id)
                .values(**self._col_values(col))
            )

    def delete_collection(self, collection_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.documents.delete().where(t.documents.c.collection_id == collection_id))
            conn.execute(
                t.collections.delete().where(t.collections.c.collection_id == collection_id)
            )

    # ---- documents
    def _next_seqs(self, conn: Connection, n: int) -> int:
        """Reserve n sequence numbers; returns the first."""
        bump = (
            t.sequences.update()
            .where(t.sequences.c.name == "documents")
            .values(value=t.sequences.c.value + n)
            .returning(t.sequences.c.value)
        )
        updated = conn.execute(bump).scalar_one_or_none()
        if updated is None:
            # First write to a fresh database: concurrent first writers all miss the row. One
            # creates it, the others wait on its commit (ON CONFLICT DO NOTHING), then all bump.
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            conn.execute(
                insert(t.sequences).values(name="documents", value=0).on_conflict_do_nothing()
            )
            updated = conn.execute(bump).scalar_one()
        return int(updated) - n + 1

    @staticmethod
    def _doc_values(doc: DocumentRecord) -> dict[str, Any]:
        source = doc.fields.get("source_object_id")
        return {
            "collection_id": doc.collection_id,
            "document_id": doc.document_id,
            "namespace_id": doc.namespace_id,
            "seq": doc.seq,
            "deleted": doc.deleted,
            "source_type": doc.source_type,
            "metadata": doc.metadata,
            "fields": doc.fields,
            "vectors": encode_vectors(doc.vectors),
            "created_at": doc.created_at,
            "updated_at": doc.updated_at,
            "source_object_id": source if isinstance(source, str) else None,
        }

    @staticmethod
    def _doc_from_row(row: RowMapping) -> DocumentRecord:
        return DocumentRecord(
            document_id=row["document_id"],
            collection_id=row["collection_id"],
            namespace_id=row["namespace_id"],
            seq=row["seq"],
            deleted=row["deleted"],
            source_type=row["source_type"],
            metadata=row["metadata"],
            fields=row["fields"],
            vectors=decode_vectors(row["vectors"]),
            created_at=_aware(row["created_at"]),
            updated_at=_aware(row["updated_at"]),
        )

    def upsert_documents(self, docs: Sequence[DocumentRecord]) -> list[DocumentRecord]:
        if not docs:
            return []
        d = t.documents.c
        out: list[DocumentRecord] = []
        with self.engine.begin() as conn:
            first = self._next_seqs(conn, len(docs))
            by_collection: dict[str, list[str]] = {}
            for doc in docs:
                by_collection.setdefault(doc.collection_id, []).append(doc.document_id)
            existing: dict[tuple[str, str], datetime] = {}
            for collection_id, ids in by_collection.items():
                for chunk_start in range(0, len(ids), 500):
                    chunk = ids[chunk_start : chunk_start + 500]
                    rows = conn.execute(
                        sa.select(d.document_id, d.created_at, d.deleted).where(
                            d.collection_id == collection_id, d.document_id.in_(chunk)
                        )
                    )
                    for document_id, created_at, deleted in rows:
                        if not deleted:
                            existing[(collection_id, document_id)] = _aware(created_at)
            inserts: list[dict[str, Any]] = []
            deletes: list[tuple[str, str]] = []
            for offset, doc in enumerate(docs):
                key = (doc.collection_id, doc.document_id)
                created = existing.get(key, doc.created_at)
                stored = doc.model_copy(update={"seq": first + offset, "created_at": created})
                out.append(stored)
                deletes.append(key)
                inserts.append(self._doc_values(stored))
            for collection_id, ids in by_collection.items():
                for chunk_start in range(0, len(ids), 500):
                    conn.execute(
                        t.documents.delete().where(
                            d.collection_id == collection_id,
                            d.document_id.in_(ids[chunk_start : chunk_start + 500]),
                        )
                    )
            # A batch may name one id twice; the last write wins.
            last: dict[tuple[str, str], dict[str, Any]] = {}
            for values in inserts:
                last[(values["collection_id"], values["document_id"])] = values
            conn.execute(t.documents.insert(), list(last.values()))
            self._announce(conn, out[0].namespace_id, {d.collection_id: d.seq for d in out})
        return out

    def get_document(self, collection_id: str, document_id: str) -> DocumentRecord | None:
        return self.get_documents(collection_id, [document_id]).get(document_id)

    def get_documents(
        self, collection_id: str, document_ids: Sequence[str]
    ) -> dict[str, DocumentRecord]:
        d = t.documents.c
        out: dict[str, DocumentRecord] = {}
        ids = list(dict.fromkeys(document_ids))
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(t.documents).where(
                    d.collection_id == collection_id,
                    d.document_id.in_(ids[start : start + 500]),
                    d.deleted.is_(False),
                )
                for row in conn.execute(query).mappings():
                    out[row["document_id"]] = self._doc_from_row(row)
        return out

    def document_ids_by_source(
        self, collection_id: str, object_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        d = t.documents.c
        out: dict[str, list[str]] = {}
        ids = list(dict.fromkeys(object_ids))
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(d.source_object_id, d.document_id).where(
                    d.collection_id == collection_id,
                    d.source_object_id.in_(ids[start : start + 500]),
                    d.deleted.is_(False),
                )
                for object_id, document_id in conn.execute(query):
                    out.setdefault(object_id, []).append(document_id)
        return out

    def delete_documents(self, collection_id: str, document_ids: Sequence[str]) -> int:
        """Deletes leave a tombstone with a fresh seq, so the index replay can see them."""
        d = t.documents.c
        ids = list(dict.fromkeys(document_ids))
        if not ids:
            return 0
        with self.engine.begin() as conn:
            # Reserving seqs first takes the sequence row lock, which serialises writers: two
            # concurrent deletes of one id cannot both see it live. Unused seqs leave gaps.
            first = self._next_seqs(conn, len(ids))
            live: list[str] = []
            for start in range(0, len(ids), 500):
                live += [
                    r[0]
                    for r in conn.execute(
                        sa.select(d.document_id).where(
                            d.collection_id == collection_id,
                            d.document_id.in_(ids[start : start + 500]),
                            d.deleted.is_(False),
                        )
                    )
                ]
            if not live:
                return 0
            now = datetime.now(UTC)
            for offset, document_id in enumerate(live):
                conn.execute(
                    t.documents.update()
                    .where(d.collection_id == collection_id, d.document_id == document_id)
                    .values(
                        deleted=True,
                        seq=first + offset,
                        vectors=None,
                        metadata={},
                        fields={},
                        updated_at=now,
                    )
                )
            namespace_id = conn.execute(
                sa.select(t.collections.c.namespace_id).where(
                    t.collections.c.collection_id == collection_id
                )
            ).scalar()
            if namespace_id is not None:
                self._announce(conn, namespace_id, {collection_id: first + len(live) - 1})
        return len(live)

    def _announce(self, conn: Connection, namespace_id: str, heads: dict[str, int]) -> None:
        """PostgreSQL tells every follower at commit (NOTIFY is transactional): "namespace
        collection seq epoch-ms" per collection written. SQLite followers poll instead."""
        if self.engine.dialect.name != "postgresql":
            return
        now_ms = time.time() * 1000.0
        for collection_id, seq in heads.items():
            conn.execute(
                sa.select(
                    sa.func.pg_notify(
                        LOG_CHANNEL, f"{namespace_id} {collection_id} {seq} {now_ms:.1f}"
                    )
                )
            )

    def announce_catalog(self) -> None:
        """After a namespace, collection or retriever write: tells the other workers to drop
        their cached copies (storage/cached.py). SQLite has one process: nothing to tell."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                conn.execute(sa.select(sa.func.pg_notify(CATALOG_CHANNEL, "")))

    def log_head(self) -> int:
        """The highest seq reserved store-wide: unchanged means no document was written."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(t.sequences.c.value).where(t.sequences.c.name == "documents")
            ).scalar()
        return int(value or 0)

    def collection_signature(self, collection_id: str) -> int:
        """The highest seq written to a collection (tombstones included): changes on any write."""
        d = t.documents.c
        query = sa.select(sa.func.max(d.seq)).where(d.collection_id == collection_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one() or 0)

    def count_documents(self, collection_id: str) -> int:
        d = t.documents.c
        query = (
            sa.select(sa.func.count())
            .select_from(t.documents)
            .where(d.collection_id == collection_id, d.deleted.is_(False))
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def list_documents(
        self, collection_id: str, *, after_seq: int = 0, limit: int = 100
    ) -> DocumentPage:
        d = t.documents.c
        query = (
            sa.select(t.documents)
            .where(d.collection_id == collection_id, d.deleted.is_(False), d.seq > after_seq)
            .order_by(d.seq)
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        docs = [self._doc_from_row(r) for r in rows[:limit]]
        next_after = docs[-1].seq if len(rows) > limit and docs else None
        return DocumentPage(documents=docs, next_after_seq=next_after)

    def changes_since(
        self, collection_id: str, seq: int, *, limit: int = 1000
    ) -> list[DocumentRecord]:
        d = t.documents.c
        query = (
            sa.select(t.documents)
            .where(d.collection_id == collection_id, d.seq > seq)
            .order_by(d.seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [self._doc_from_row(r) for r in conn.execute(query).mappings()]

    # ---- idempotency
    def get_idempotency(self, namespace_id: str, key: str) -> IdempotencyRecord | None:
        i = t.idempotency.c
        query = sa.select(t.idempotency).where(i.namespace_id == namespace_id, i.key == key)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return IdempotencyRecord(**{**row, "created_at": _aware(row["created_at"])})

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.idempotency.insert().values(**record.model_dump()))
