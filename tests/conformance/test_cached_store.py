"""The conformance suite through the read-through cache the embedded default uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from stagewise.storage.cached import CachedMetadataStore
from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.testing.metadata_store import (
    MetadataStoreConformance,
    make_collection,
    make_docs,
    make_namespace,
)

pytestmark = pytest.mark.unit


class TestCachedSqliteMetadataStore(MetadataStoreConformance):
    integrity_error = (IntegrityError,)

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[CachedMetadataStore]:
        s = CachedMetadataStore(
            SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}"), own_documents=True
        )
        yield s
        s.close()


class _Counting:
    """The inner store, counting signature reads."""

    def __init__(self, inner: SqlMetadataStore) -> None:
        self.inner, self.signature_reads = inner, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def collection_signature(self, collection_id: str) -> int:
        self.signature_reads += 1
        return self.inner.collection_signature(collection_id)


@pytest.mark.parametrize("own_documents", [True, False])
def test_signatures_are_cached_only_for_the_only_writer(
    tmp_path: Path, own_documents: bool
) -> None:
    inner = _Counting(SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}"))
    store = CachedMetadataStore(inner, own_documents=own_documents)  # type: ignore[arg-type]
    try:
        ns = make_namespace()
        store.create_namespace(ns)
        col = make_collection(ns.namespace_id)
        store.create_collection(col)
        store.upsert_documents(make_docs(col, 2))
        first = [store.collection_signature(col.collection_id) for _ in range(5)]
        assert len(set(first)) == 1
        assert inner.signature_reads == (1 if own_documents else 5)
        store.delete_documents(col.collection_id, ["doc_00000"])
        assert store.collection_signature(col.collection_id) > first[0]  # the write dropped it
        store.delete_collection(col.collection_id)
        assert store.collection_signature(col.collection_id) == 0
    finally:
        store.close()
