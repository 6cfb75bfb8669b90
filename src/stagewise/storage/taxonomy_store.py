"""The taxonomy storage protocol. Every backend passes `stagewise.testing.taxonomy_store`."""

from __future__ import annotations

from typing import Protocol

from stagewise.domain.taxonomy_records import TaxonomyRecord


class TaxonomyStore(Protocol):
    """Taxonomies by namespace. Implementations must be thread-safe."""

    # A name already taken in the namespace raises Conflict.
    def create_taxonomy(self, taxonomy: TaxonomyRecord) -> None: ...
    # identifier = id or name; an id match wins over a name that looks like an id.
    def get_taxonomy(self, namespace_id: str, identifier: str) -> TaxonomyRecord | None: ...
    # Oldest first; `search` is a case-insensitive substring of the name; returns the page
    # and the total number of matches.
    def list_taxonomies(
        self, namespace_id: str, *, search: str | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[list[TaxonomyRecord], int]: ...
    # Replaces the stored record (same taxonomy_id); False when it is gone. A name clash
    # raises Conflict.
    def update_taxonomy(self, taxonomy: TaxonomyRecord) -> bool: ...
    def delete_taxonomy(self, taxonomy_id: str) -> bool: ...
    # Every taxonomy of a namespace (namespace delete); returns how many went.
    def delete_namespace_taxonomies(self, namespace_id: str) -> int: ...
