"""The handles every service needs, opened once per process."""

from __future__ import annotations

from dataclasses import dataclass

from stagewise.config import Settings
from stagewise.embeddings.base import Embedder
from stagewise.embeddings.factory import make_embedder
from stagewise.services.cursors import CursorCodec, load_secret
from stagewise.storage.cached import CachedMetadataStore
from stagewise.storage.index.edge import EdgeSearchIndex
from stagewise.storage.protocols import MetadataStore, SearchIndex
from stagewise.storage.sql.store import SqlMetadataStore
from stagewise.storage.write_behind import WriteBehindExecutions


@dataclass
class Stores:
    settings: Settings
    metadata: MetadataStore
    index: SearchIndex
    embedder: Embedder
    # Signs and checks every cursor, scroll id and keyset marker (services/cursors.py).
    cursors: CursorCodec
    # True when metadata reads are answered in-process (cached SQLite), so async request
    # code may call them without a thread hop.
    inline_reads: bool = False

    def close(self) -> None:
        self.index.close()
        self.metadata.close()


def open_stores(settings: Settings) -> Stores:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url()
    sql = SqlMetadataStore(url)
    # The embedded default is owned by this one process, so its hot records can be cached.
    local = url.startswith("sqlite")
    metadata: MetadataStore = WriteBehindExecutions(CachedMetadataStore(sql) if local else sql)
    index = EdgeSearchIndex(settings.index_dir)
    embedder = make_embedder(settings.embedder, settings.embed_batch_size)
    # One secret per data dir for now; the scale-out work moves it to shared state so every
    # server behind a load balancer accepts the others' cursors.
    cursors = CursorCodec(load_secret(settings.cursor_secret, settings.data_dir))
    return Stores(
        settings=settings,
        metadata=metadata,
        index=index,
        embedder=embedder,
        cursors=cursors,
        inline_reads=local,
    )
