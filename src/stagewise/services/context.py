"""The handles every service needs, opened once per process."""

from __future__ import annotations

from dataclasses import dataclass

from stagewise.config import Settings
from stagewise.embeddings.base import Embedder
from stagewise.embeddings.factory import make_embedder
from stagewise.storage.cached import CachedMetadataStore
from stagewise.storage.index.edge import EdgeSearchIndex
from stagewise.storage.protocols import MetadataStore, SearchIndex
from stagewise.storage.sql.store import SqlMetadataStore


@dataclass
class Stores:
    settings: Settings
    metadata: MetadataStore
    index: SearchIndex
    embedder: Embedder

    def close(self) -> None:
        self.index.close()
        self.metadata.close()


def open_stores(settings: Settings) -> Stores:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url()
    sql = SqlMetadataStore(url)
    # The embedded default is owned by this one process, so its hot records can be cached.
    metadata: MetadataStore = CachedMetadataStore(sql) if url.startswith("sqlite") else sql
    index = EdgeSearchIndex(settings.index_dir)
    embedder = make_embedder(settings.embedder, settings.embed_batch_size)
    return Stores(settings=settings, metadata=metadata, index=index, embedder=embedder)
