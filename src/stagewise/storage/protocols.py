"""The storage protocols. Every backend implements one and passes the shared conformance suite."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from stagewise.domain.evaluation_records import DatasetRecord
from stagewise.domain.filters import FilterNode
from stagewise.domain.interaction_records import InteractionQuery, InteractionRecord
from stagewise.domain.pipeline_records import ExecutionRecord, RetrieverRecord
from stagewise.domain.records import (
    ApiKeyRecord,
    CollectionRecord,
    DocumentRecord,
    IdempotencyRecord,
    NamespaceRecord,
)


@dataclass(frozen=True)
class DocumentPage:
    documents: list[DocumentRecord]
    next_after_seq: int | None


class MetadataStore(Protocol):
    """Source of truth for every record. Implementations must be thread-safe."""

    def close(self) -> None: ...

    # keys
    # Key reads are never cached: a revocation or expiry holds on the next request.
    def create_key(self, key: ApiKeyRecord) -> None: ...
    def get_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...  # revoked ones too
    def get_key(self, key_id: str) -> ApiKeyRecord | None: ...
    def list_keys(self) -> list[ApiKeyRecord]: ...  # oldest first, revoked and expired too
    # Sets revoked_at unless already set; the key as stored afterwards, None if unknown.
    def revoke_key(self, key_id: str, at: datetime) -> ApiKeyRecord | None: ...

    # namespaces
    def create_namespace(self, ns: NamespaceRecord) -> None: ...
    def get_namespace(self, identifier: str) -> NamespaceRecord | None: ...
    def list_namespaces(self) -> list[NamespaceRecord]: ...
    def update_namespace(self, ns: NamespaceRecord) -> None: ...
    def delete_namespace(self, namespace_id: str) -> None: ...

    # collections
    def create_collection(self, col: CollectionRecord) -> None: ...
    def get_collection(self, namespace_id: str, identifier: str) -> CollectionRecord | None: ...
    def list_collections(self, namespace_id: str) -> list[CollectionRecord]: ...
    def update_collection(self, col: CollectionRecord) -> None: ...
    def delete_collection(self, collection_id: str) -> None: ...

    # documents: every write takes a fresh, store-wide monotonic `seq`
    def upsert_documents(self, docs: Sequence[DocumentRecord]) -> list[DocumentRecord]: ...
    def get_document(self, collection_id: str, document_id: str) -> DocumentRecord | None: ...
    def get_documents(
        self, collection_id: str, document_ids: Sequence[str]
    ) -> dict[str, DocumentRecord]: ...
    def delete_documents(self, collection_id: str, document_ids: Sequence[str]) -> int: ...
    # Live documents made from each bucket object (fields.source_object_id): object -> ids.
    def document_ids_by_source(
        self, collection_id: str, object_ids: Sequence[str]
    ) -> dict[str, list[str]]: ...
    def count_documents(self, collection_id: str) -> int: ...
    def collection_signature(self, collection_id: str) -> int: ...
    # The highest seq reserved store-wide (0: none): a follower's cheap "anything new?".
    def log_head(self) -> int: ...
    def list_documents(
        self, collection_id: str, *, after_seq: int = 0, limit: int = 100
    ) -> DocumentPage: ...
    def changes_since(
        self, collection_id: str, seq: int, *, limit: int = 1000
    ) -> list[DocumentRecord]:
        """Live documents and tombstones with seq > `seq`, in seq order (for index replay)."""
        ...

    # retrievers and executions
    def create_retriever(self, r: RetrieverRecord) -> None: ...
    def get_retriever(self, namespace_id: str, identifier: str) -> RetrieverRecord | None: ...
    def list_retrievers(self, namespace_id: str) -> list[RetrieverRecord]: ...
    def update_retriever(self, r: RetrieverRecord) -> None: ...
    def delete_retriever(self, retriever_id: str) -> None: ...
    def save_execution(
        self, x: ExecutionRecord, results: Sequence[dict[str, Any]] | None = None
    ) -> None: ...
    def save_executions(
        self, items: Sequence[tuple[ExecutionRecord, Sequence[dict[str, Any]] | None]]
    ) -> None: ...
    # Stores each record only where the stored one is still pending or processing (a run
    # that ended meanwhile keeps its outcome); returns how many were stored.
    def close_unfinished(self, records: Sequence[ExecutionRecord]) -> int: ...
    # Deletes up to `limit` finished runs with their results: those created before `before`,
    # and in each namespace those past its `keep_per_namespace` newest. A run that a kept
    # cache hit replays stays until the hit goes. Returns the ids deleted.
    def prune_executions(
        self, *, before: datetime | None, keep_per_namespace: int | None, limit: int
    ) -> list[str]: ...
    def get_execution(self, namespace_id: str, execution_id: str) -> ExecutionRecord | None: ...
    def get_execution_results(
        self, execution_id: str, offset: int, limit: int
    ) -> list[dict[str, Any]]: ...
    def list_executions(
        self,
        namespace_id: str,
        *,
        retriever_id: str | None,
        mode: str,
        statuses: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        descending: bool = True,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[ExecutionRecord], int]: ...

    # retriever interactions, scoped by namespace; deleting a namespace or a retriever (the
    # interaction's retriever_id) deletes its interactions, pruning an execution does not
    def create_interactions(self, items: Sequence[InteractionRecord]) -> None: ...  # all or none
    def get_interaction(
        self, namespace_id: str, interaction_id: str
    ) -> InteractionRecord | None: ...
    def delete_interaction(self, namespace_id: str, interaction_id: str) -> bool: ...
    def list_interactions(
        self, namespace_id: str, query: InteractionQuery, *, limit: int, offset: int = 0
    ) -> tuple[list[InteractionRecord], int]: ...
    # type -> how many of the execution's interactions carry it (one interaction, many types)
    def count_interactions(self, namespace_id: str, execution_id: str) -> dict[str, int]: ...

    # evaluation datasets, scoped by namespace, names unique in one (a taken name raises
    # stagewise.errors.Conflict); deleting the namespace deletes them
    def create_evaluation_dataset(self, d: DatasetRecord) -> None: ...
    def get_evaluation_dataset(
        self, namespace_id: str, identifier: str
    ) -> DatasetRecord | None: ...  # by id, else by name
    def list_evaluation_datasets(
        self, namespace_id: str, *, limit: int, offset: int = 0
    ) -> tuple[list[DatasetRecord], int]: ...  # oldest first, and the total

    # idempotency of BYO upserts
    def get_idempotency(self, namespace_id: str, key: str) -> IdempotencyRecord | None: ...
    def put_idempotency(self, record: IdempotencyRecord) -> None: ...


@dataclass
class IndexPoint:
    document_id: str
    seq: int
    vectors: dict[str, list[float]]
    payload: dict[str, Any]


@dataclass
class ScoredHit:
    document_id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, list[float]] | None = None


@dataclass
class SearchRequest:
    """One ranked search: dense (vector + vector_name) or BM25 (text)."""

    limit: int
    vector_name: str | None = None
    vector: list[float] | None = None
    text: str | None = None
    filter: FilterNode | None = None  # resolved once, inputs and templates applied
    score_threshold: float | None = None
    with_vectors: bool = False
    # False: hits carry only document_id; fetch the payloads of what survives with payloads()
    with_payload: bool = True


@dataclass
class SearchAnswer:
    """One search's ranked hits, and how its filter was applied (None: no filter):
    "indexed" (the engine's planner over payload indexes), "acorn" (filtered HNSW traversal
    that does not rely on filter-aware links), or "exact" (an exhaustive scan: no HNSW yet,
    or a filtered field without a payload index of the kind its condition needs)."""

    hits: list[ScoredHit]
    filter_path: str | None = None
    unindexed_fields: tuple[str, ...] = ()


@dataclass
class FacetCounts:
    """(value, count) pairs, most frequent first. `exact`: every matching point was
    counted; `scanned`: points read when counted by a bounded scan (None: by the engine)."""

    values: list[tuple[Any, int]]
    exact: bool
    scanned: int | None = None


class SearchIndex(Protocol):
    """Dense vectors, BM25 and payload filters for the documents of each collection: the
    portable part, which every transport (embedded shards, a Qdrant server) implements and
    `stagewise.testing.search_index` checks."""

    # A filter part the engine cannot evaluate is scanned in Python over at most `scan_cap`
    # candidates (0: no cap), else FilterScanTooLarge; `residual_scans` counts those scans.
    scan_cap: int
    residual_scans: int

    def close(self) -> None: ...
    def ensure_collection(self, collection: CollectionRecord) -> None: ...
    def drop_collection(self, collection_id: str) -> None: ...
    def upsert(self, collection_id: str, points: Sequence[IndexPoint]) -> None: ...
    def delete(self, collection_id: str, document_ids: Sequence[str]) -> None: ...
    # The highest `seq` among the points held (0: none); where a follower resumes.
    def max_seq(self, collection_id: str) -> int: ...
    def count(self, collection_id: str, flt: FilterNode | None = None) -> int: ...
    def filter_ids(self, collection_id: str, flt: FilterNode | None) -> Iterator[str]: ...
    def payloads(
        self, collection_id: str, document_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]: ...
    def search(self, collection_id: str, requests: list[SearchRequest]) -> list[SearchAnswer]: ...
    def scroll(
        self,
        collection_id: str,
        flt: FilterNode | None,
        limit: int,
        *,
        case_insensitive: bool = False,
    ) -> list[ScoredHit]: ...
    def vectors(
        self, collection_id: str, document_ids: Sequence[str], vector_name: str
    ) -> dict[str, list[float]]: ...
    def facet(
        self, collection_id: str, key: str, limit: int, flt: FilterNode | None
    ) -> FacetCounts: ...
    # Payload indexes: the ones a filter wants (field -> kind), creating one, and those held.
    def wanted_indexes(
        self, flt: FilterNode | None, *, case_insensitive: bool = False
    ) -> dict[str, str]: ...
    def ensure_payload_index(self, collection_id: str, field: str, kind: str) -> bool: ...
    def indexed_fields(self, collection_id: str) -> dict[str, str]: ...


class ShardMaintenance(Protocol):
    """What only embedded shards need: generations rebuilt elsewhere (a child process) and
    swapped in, points outside HNSW, and an offline optimize. A shared Qdrant server does
    this itself, so a transport for one has no ShardMaintenance."""

    def new_generation_dir(self, collection_id: str) -> Path: ...
    def extra_indexes(self, collection_id: str) -> dict[str, str]: ...
    def stage_generation(self, collection_id: str, directory: Path) -> dict[str, Any]: ...
    def install_generation(self, collection_id: str, directory: Path) -> None: ...
    def remove_stray_generations(self, collection_id: str) -> None: ...
    def reap_retired(self, grace_s: float = 5.0) -> None: ...
    def needs_rebuild(self, collection_id: str) -> bool: ...
    def unindexed_points(self, collection_id: str) -> int: ...
    def points(self, collection_id: str) -> int: ...
    def optimize(self, collection_id: str) -> bool: ...
