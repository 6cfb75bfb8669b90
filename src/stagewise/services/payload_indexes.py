"""Payload indexes are declared in the collection's record (the SQL store, which every worker
reads), then created on this worker's index; other workers' followers apply the declaration
before their next read of the collection (services/follower.py)."""

from __future__ import annotations

from stagewise.domain.records import CollectionRecord
from stagewise.services.context import Stores


def declare_payload_indexes(stores: Stores, col: CollectionRecord, kinds: dict[str, str]) -> None:
    """Records `kinds` (field -> index kind) in the collection, then creates them here. A
    write: reads never declare an index."""
    if not kinds:
        return
    current = stores.metadata.get_collection(col.namespace_id, col.collection_id) or col
    merged = {**current.payload_index_kinds, **kinds}
    if merged != current.payload_index_kinds:
        stores.metadata.update_collection(
            current.model_copy(update={"payload_index_kinds": merged})
        )
    for field, kind in kinds.items():
        stores.index.ensure_payload_index(col.collection_id, field, kind)
