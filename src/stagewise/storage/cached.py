"""A read-through cache of the small, hot control-plane records (namespaces, collections,
retrievers) in front of a MetadataStore.

Only for a store that a single process owns (the embedded SQLite default: the index shards
are locked by one process anyway). Every write through this wrapper drops the cached
entries of its kind, so reads never see a stale record; writes from another process would
not be seen, which is why the scale-out (PostgreSQL) configuration does not use it.

API keys are not cached: `stagewise keys revoke` runs in another process, and a revocation or
expiry must hold on the next request. A key lookup on SQLite costs ~40 us.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from stagewise.domain.pipeline_records import RetrieverRecord
from stagewise.domain.records import CollectionRecord, NamespaceRecord
from stagewise.storage.protocols import MetadataStore

T = TypeVar("T")

_NS, _COL, _RET = "namespace", "collection", "retriever"


class CachedMetadataStore:
    def __init__(self, inner: MetadataStore) -> None:
        self.inner = inner
        self._cache: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # everything not cached goes straight through
        return getattr(self.inner, name)

    def _get(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        with self._lock:
            if key in self._cache:
                return self._cache[key]  # type: ignore[no-any-return]
        value = load()
        if value is not None:
            with self._lock:
                self._cache[key] = value
        return value

    def _drop(self, *kinds: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[0] in kinds]:
                del self._cache[key]

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

    # writes: pass through, then forget what they may have changed
    def create_namespace(self, ns: NamespaceRecord) -> None:
        self.inner.create_namespace(ns)
        self._drop(_NS)

    def update_namespace(self, ns: NamespaceRecord) -> None:
        self.inner.update_namespace(ns)
        self._drop(_NS)

    def delete_namespace(self, namespace_id: str) -> None:
        self.inner.delete_namespace(namespace_id)
        self._drop(_NS, _COL, _RET)

    def create_collection(self, col: CollectionRecord) -> None:
        self.inner.create_collection(col)
        self._drop(_COL)

    def update_collection(self, col: CollectionRecord) -> None:
        self.inner.update_collection(col)
        self._drop(_COL)

    def delete_collection(self, collection_id: str) -> None:
        self.inner.delete_collection(collection_id)
        self._drop(_COL)

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
