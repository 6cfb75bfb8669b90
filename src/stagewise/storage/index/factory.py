"""The search index a process uses, chosen by the settings (STAGEWISE_VECTOR_BACKEND).

- ``edge`` (the default): embedded Qdrant Edge shards under ``settings.index_dir``; the
  index is its own ShardMaintenance (generations, optimize).
- ``qdrant``: a Qdrant server shared by every process (docs/architecture.md, scale-out),
  at ``STAGEWISE_QDRANT_URL`` (``STAGEWISE_QDRANT_API_KEY`` if it wants one). The server
  maintains its own indexes, so there is no ShardMaintenance. Two URL forms serve tests and
  CI without a server: ``:memory:`` (qdrant-client's in-process local mode, lost on exit)
  and ``local:PATH`` (local mode persisted under PATH). Local mode is a pure-Python engine:
  exhaustive searches, fine for a few thousand points, not for serving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stagewise.errors import InvalidRequest
from stagewise.storage.protocols import SearchIndex, ShardMaintenance

if TYPE_CHECKING:
    from stagewise.config import Settings

LOCAL_PREFIX = "local:"


def make_search_index(settings: Settings) -> tuple[SearchIndex, ShardMaintenance | None]:
    """The index, and its ShardMaintenance when the transport has one (embedded shards)."""
    if settings.vector_backend == "edge":
        from stagewise.storage.index.edge import EdgeSearchIndex

        edge = EdgeSearchIndex(settings.index_dir, scan_cap=settings.filter_scan_cap)
        return edge, edge
    if settings.vector_backend != "qdrant":  # the settings' Literal type already refuses it
        raise InvalidRequest(f"unknown vector backend {settings.vector_backend!r}")
    # Imported here: qdrant-client (httpx, grpc) is not loaded by embedded deployments.
    from qdrant_client import QdrantClient

    from stagewise.storage.index.remote import QdrantSearchIndex

    url = settings.qdrant_url.strip()
    if not url:
        raise InvalidRequest(
            "STAGEWISE_VECTOR_BACKEND=qdrant needs STAGEWISE_QDRANT_URL: the server's URL "
            "(e.g. http://qdrant:6333), or ':memory:' / 'local:PATH' for qdrant-client's "
            "in-process local mode (tests only)",
            code="invalid_settings",
        )
    if url == ":memory:":
        client = QdrantClient(":memory:")
    elif url.startswith(LOCAL_PREFIX):
        path = url[len(LOCAL_PREFIX) :]
        if not path:
            raise InvalidRequest(
                "STAGEWISE_QDRANT_URL 'local:' needs a directory: 'local:/var/lib/stagewise'",
                code="invalid_settings",
            )
        client = QdrantClient(path=path)
    else:
        client = QdrantClient(url=url, api_key=settings.qdrant_api_key)
    return QdrantSearchIndex(client, url=url, scan_cap=settings.filter_scan_cap), None
