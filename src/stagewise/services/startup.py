"""Start-up recovery: bring every collection's index up to its source-of-truth watermark."""

from __future__ import annotations

from stagewise.services.collections import all_collections
from stagewise.services.context import Stores
from stagewise.services.documents import replay_into_index


def recover(stores: Stores) -> int:
    """Replays writes the index missed; HNSW building is left to the IndexBuilder, in the
    background, so start-up takes seconds at any size."""
    return sum(replay_into_index(stores, col) for col in all_collections(stores))
