"""A read-through cache of the small, hot control-plane records (namespaces, collections,
retrievers) in front of a MetadataStore.

Every write through this wrapper drops the cached entries of its kind, so this process never
reads a stale record after its own write. Writes by other processes (workers sharing a
PostgreSQL store) are announced after their commit (`announce`, a NOTIFY), and each
worker's follower drops the whole cache when it hears one (`invalidate`): another worker
sees a namespace, collection or retriever change within the notification lag.

With `own_documents` (one process on SQLite: this process makes every document write), each
collection's signature (its highest write seq) is cached too, and dropped by every document
write through this wrapper. A strong read asks for it on every run, and it was the one SQL
query of an execution on the embedded store. Across processes it is never cached: another
worker's write must be seen by the next strong read, not after a notification's lag.

API keys are not cached: `stagewise keys revoke` runs in another process, and a revocation or
expiry must hold on the next request. A key lookup on SQLite costs ~40 us.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from stagewise.domain.pipeline_records import RetrieverRecord
from stagewise.domain.records import CollectionRecord, DocumentRecord, NamespaceRecord
from stagewise.storage.protocols import MetadataStore

T = TypeVar("T")

_NS, _COL, _RET, _SIG = "namespace", "collection", "retriever", "signature"


class CachedMetadataStore:
    def __init__(
        self,
        inner: MetadataStore,
        announce: Callable[[], None] | None = None,
        *,
        own_documents: bool = False,
    ) -> None:
        self.inner = inner
        self._announce = announce
        self._own_documents = own_documents
        self._cache: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()
        # Bumped by every invalidation: a read that began before one must not cache its answer.
        self._epoch = 0

    def __getattr__(self, name: str) -> Any:  # everything not cached goes straight through
        return getattr(self.inner, name)

    def _get(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        with self._lock:
            if key in self._cache:
                return self._cache[key]  # type: ignore[no-any-return]
            epoch = self._epoch
        value = load()
        if value is not None:
            with self._lock:
                if epoch == self._epoch:
                    self._cache[key] = value
        return value

    def _drop(self, *kinds: str) -> None:
        with self._lock:
            self._epoch += 1
            for key in [k for k in self._cache if k[0] in kinds]:
                del self._cache[key]
        if self._announce is not None:
            self._announce()

    def invalidate(self) -> None:
        """Another process changed the catalog: forget everything."""
        with self._lock:
            self._epoch += 1
            self._cache.clear()

    # reads
    def get_namespace(self, identifier: str) -> NamespaceRecord | None:
        return self._get((_NS, identifier), lambda: self.inner.get_namespace(identifier))

    def get_collection(self, namespace_id: str, identifier: str) -> CollectionRecord | None:
        return self._get(
            (_COL, namespace_id, identifier),
            lambda: self.inner.get_collection(namespace_id, identifier),
        )

    def get_retriever(self, namespace_id: str, identifier: str) -> RetrieverRecord | None:
        return self._get(
            (_RET, namespace_id, identifier),
            lambda: self.inner.get_retriever(namespace_id, identifier),
        )

    def collection_signature(self, collection_id: str) -> int:
        if not self._own_documents:
            return self.inner.collection_signature(collection_id)
        return self._get(
            (_SIG, collection_id), lambda: self.inner.collection_signature(collection_id)
        )

    # writes: pass through, then forget what they may have changed
    def upsert_documents(self, docs: Sequence[DocumentRecord]) -> list[DocumentRecord]:
        try:
            return self.inner.upsert_documents(docs)
        finally:  # a failed write may still have committed part of its work
            self._drop_signatures()

    def delete_documents(self, collection_id: str, document_ids: Sequence[str]) -> int:
        try:
            return self.inner.delete_documents(collection_id, document_ids)
        finally:
            self._drop_signatures()

    def _drop_signatures(self) -> None:
        if self._own_documents:
            self._drop(_SIG)

    def create_namespace(self, ns: NamespaceRecord) -> None:
        self.inner.create_namespace(ns)
        self._drop(_NS)

    def update_namespace(self, ns: NamespaceRecord) -> None:
        self.inner.update_namespace(ns)
        self._drop(_NS)

    def delete_namespace(self, namespace_id: str) -> None:
        self.inner.delete_namespace(namespace_id)
        self._drop(_NS, _COL, _RET, _SIG)

    def create_collection(self, col: CollectionRecord) -> None:
        self.inner.create_collection(col)
        self._drop(_COL)

    def update_collection(self, col: CollectionRecord) -> None:
        self.inner.update_collection(col)
        self._drop(_COL)

    def delete_collection(self, collection_id: str) -> None:
        self.inner.delete_collection(collection_id)
        self._drop(_COL, _SIG)

    def create_retriever(self, r: RetrieverRecord) -> None:
        self.inner.create_retriever(r)
        self._drop(_RET)

    def update_retriever(self, r: RetrieverRecord) -> None:
        self.inner.update_retriever(r)
        self._drop(_RET)

    def delete_retriever(self, retriever_id: str) -> None:
        self.inner.delete_retriever(retriever_id)
        self._drop(_RET)

    def close(self) -> None:
        self.inner.close()
