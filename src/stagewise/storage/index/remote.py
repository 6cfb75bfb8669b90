"""SearchIndex over a Qdrant server through qdrant-client: the scale-out transport.

The layout follows the embedded one (`layout.py`), so both transports answer alike
(`stagewise.testing.search_index` checks them by value):

- one Qdrant collection per Stagewise collection, `<prefix><collection_id>`, with a named
  dense vector per feature (same names, sizes, distances; int8 quantized, HNSW m=16) and a
  sparse slot so that text-only collections exist. Collections are created by name, not
  behind an alias: the server maintains its own HNSW, so nothing swaps generations (a
  rebuild, say for a changed vector config, would need `<name>_g<N>` behind an alias).
- a point per document, id `point_id(document_id)`, payload `layout.index_payload()` (the
  document's payload and `_seq`) plus `_bm25`, its BM25 terms, which answers never show.
  Payload indexes: integer `_seq` (max_seq orders by it), keyword `document_id`, the
  scored `_bm25` text index, and the ones filters want.
- BM25 is a TextQuery over `_bm25`, which scores exactly as the embedded text index does;
  sparse vectors with the IDF modifier cannot (measured, `bm25.py`).
- filters compile with the embedded transport's compiler (`qdrant_filter.py`) to
  qdrant_client models; residual conditions are evaluated over payloads by the code the
  embedded transport runs too (`scan.FilterScans`).
- `filter_path` says what the server does: the same planner decisions as the embedded
  shards (`qdrant_filter.dense_filter_path`: "indexed", "acorn", or "exact" with the
  unindexed fields forced to an exact search), from the collection's payload schema, its
  late-index mark and whether HNSW is built. In qdrant-client's local mode every search is
  exhaustive and payload indexes do nothing (filters compile as unindexed), so it is
  always "exact" there. `exact=True` forces exact dense searches (congruence tests).
- unknown collections raise KeyError, as the embedded transport does; an unreachable
  server raises `Unavailable` (503 with Retry-After), see `remote_errors.py`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from qdrant_client import QdrantClient, models
from qdrant_client.local.qdrant_local import QdrantLocal

from stagewise.domain.filters import FilterNode
from stagewise.domain.records import CollectionRecord
from stagewise.ids import point_id
from stagewise.storage.index import scan
from stagewise.storage.index.bm25 import BM25_FIELD, bm25_text
from stagewise.storage.index.facets import (
    FACET_KINDS,
    FACET_SCAN_LIMIT,
    engine_facet,
    scanned_facet,
)
from stagewise.storage.index.qdrant_filter import (
    CompiledFilter,
    compile_filter,
    dense_filter_path,
    normalize_index_kind,
)
from stagewise.storage.index.remote_errors import ErrorMapper
from stagewise.storage.index.remote_filter import CLIENT_MODELS, client_index_schema
from stagewise.storage.index.remote_layout import (
    OWN_INDEXES,
    collection_config,
    dense_search_params,
    own_index_schemas,
    to_point_structs,
)
from stagewise.storage.payload import SEQ_FIELD, TEXT_FIELD
from stagewise.storage.protocols import (
    FacetCounts,
    IndexPoint,
    ScoredHit,
    SearchAnswer,
    SearchRequest,
)

_SCROLL_PAGE: Final = 1000
# Collection metadata keys: payload indexes added after HNSW was built (searches on them
# need ACORN, as on the embedded shards), and, in local mode, which reports no payload
# schema, the indexes declared.
_LATE_KEY: Final = "stagewise_late_indexes"
_INDEX_KEY: Final = "stagewise_index:"
# Read again after this long: another process may have added an index meanwhile.
SCHEMA_TTL_S: Final = 1.0


@dataclass(frozen=True)
class _Schema:
    kinds: dict[str, str]  # payload index kinds, normalised
    late: bool
    hnsw_built: bool
    read_at: float


class QdrantSearchIndex(scan.FilterScans[models.Filter]):
    """`SearchIndex` over a `QdrantClient`: a server, or local mode (":memory:", a path).
    Filters: `FilterScans` (filter_ids, the residual scan, id sets), as on the embedded
    shards."""

    _filter_models = CLIENT_MODELS

    def __init__(
        self,
        client: QdrantClient,
        prefix: str = "stagewise_",
        *,
        exact: bool = False,
        url: str | None = None,
        scan_cap: int = scan.DEFAULT_SCAN_CAP,
    ) -> None:
        self.client = client
        self.scan_cap = scan_cap
        self.prefix = prefix
        self.exact = exact
        self.local = isinstance(getattr(client, "_client", None), QdrantLocal)
        options = client.init_options
        shown = url or options.get("url") or options.get("location") or options.get("host")
        self._errors = ErrorMapper(str(shown or options.get("path") or "local"))
        self._schemas: dict[str, _Schema] = {}
        self._guard = threading.Lock()

    def _name(self, collection_id: str) -> str:
        return f"{self.prefix}{collection_id}"

    # ---- lifecycle
    def close(self) -> None:
        self.client.close()

    def ensure_collection(self, collection: CollectionRecord) -> None:
        cid = collection.collection_id
        name = self._name(cid)
        with self._errors.calls():
            if self.client.collection_exists(name):
                return
        metadata: dict[str, Any] = {"stagewise_collection_id": cid}
        if self.local:
            metadata.update({_INDEX_KEY + f: k for f, k in OWN_INDEXES.items()})
        with self._errors.calls():
            try:
                self.client.create_collection(
                    name, **collection_config(collection), metadata=metadata
                )
            except Exception as exc:
                if "already exists" not in str(exc):  # another process created it first
                    raise
            for field, schema in own_index_schemas().items():
                if self.local and field != BM25_FIELD:
                    continue  # local mode uses scored text indexes only (and warns)
                self.client.create_payload_index(name, field, schema, wait=True)
        self._forget(cid)

    def drop_collection(self, collection_id: str) -> None:
        with self._errors.calls():
            self.client.delete_collection(self._name(collection_id))
        self._forget(collection_id)

    # ---- writes
    def upsert(self, collection_id: str, points: Sequence[IndexPoint]) -> None:
        if not points:
            return
        batch = to_point_structs(points)
        with self._errors.calls(collection_id):
            self.client.upsert(self._name(collection_id), batch, wait=True)

    def delete(self, collection_id: str, document_ids: Sequence[str]) -> None:
        if not document_ids:
            return
        selector = models.PointIdsList(points=[point_id(d) for d in document_ids])
        with self._errors.calls(collection_id):
            self.client.delete(self._name(collection_id), selector, wait=True)

    # ---- payload schema
    def _forget(self, collection_id: str) -> None:
        with self._guard:
            self._schemas.pop(collection_id, None)

    def _schema(self, collection_id: str, *, fresh: bool = False) -> _Schema:
        now = time.monotonic()
        cached = self._schemas.get(collection_id)
        if cached is not None and not fresh and now - cached.read_at < SCHEMA_TTL_S:
            return cached
        with self._errors.calls(collection_id):
            info = self.client.get_collection(self._name(collection_id))
        meta = info.config.metadata or {}
        kinds = {k: normalize_index_kind(v.data_type) for k, v in info.payload_schema.items()}
        if self.local:
            kinds = {
                k[len(_INDEX_KEY) :]: str(v) for k, v in meta.items() if k.startswith(_INDEX_KEY)
            }
        schema = _Schema(
            kinds, bool(meta.get(_LATE_KEY)), int(info.indexed_vectors_count or 0) > 0, now
        )
        with self._guard:
            self._schemas[collection_id] = schema
        return schema

    def ensure_payload_index(self, collection_id: str, field: str, kind: str) -> bool:
        """Create a payload index if the field has none; True when one was created. One
        added after HNSW was built marks the collection (in its metadata, for every
        process): its filtered dense searches use ACORN from then on, as on the embedded
        shards, where built segments were measured to get no filter-aware links for it."""
        schema = self._schema(collection_id, fresh=True)
        if field in schema.kinds:
            return False
        kind = normalize_index_kind(kind)
        spec = client_index_schema(kind)
        name = self._name(collection_id)
        metadata: dict[str, Any] = {_INDEX_KEY + field: kind} if self.local else {}
        if schema.hnsw_built:
            metadata[_LATE_KEY] = True
        with self._errors.calls(collection_id):
            if not self.local:  # where they would do nothing (local mode warns)
                self.client.create_payload_index(name, field, spec, wait=True)
            if metadata:
                self.client.update_collection(name, metadata=metadata)
        self._forget(collection_id)
        return True

    def indexed_fields(self, collection_id: str) -> dict[str, str]:
        return dict(self._schema(collection_id).kinds)

    # ---- reads
    def max_seq(self, collection_id: str) -> int:
        with self._errors.calls(collection_id):
            records, _ = self.client.scroll(
                self._name(collection_id),
                limit=1,
                with_payload=[SEQ_FIELD],
                order_by=models.OrderBy(key=SEQ_FIELD, direction=models.Direction.DESC),
            )
        if not records:
            return 0
        return int((records[0].payload or {}).get(SEQ_FIELD, 0))

    def count(self, collection_id: str, flt: FilterNode | None = None) -> int:
        name = self._name(collection_id)
        compiled = self._compile(collection_id, flt, False) if flt is not None else None
        if compiled is not None and compiled.residual is not None:
            return sum(1 for _ in self.filter_ids(collection_id, flt))
        with self._errors.calls(collection_id):
            qfilter = compiled.qdrant if compiled is not None else None
            return int(self.client.count(name, count_filter=qfilter, exact=True).count)

    def _first(
        self, collection_id: str, compiled: CompiledFilter, limit: int, payloads: bool
    ) -> list[Any]:
        with self._errors.calls(collection_id):
            records, _ = self.client.scroll(
                self._name(collection_id),
                scroll_filter=compiled.qdrant,
                limit=limit,
                with_payload=payloads,
            )
        return list(records)

    def _compile(self, collection_id: str, node: Any, case_insensitive: bool) -> CompiledFilter:
        # As on the embedded shards, the index kinds decide what is exact; our own text
        # fields are never user-filtered. Local mode ignores payload indexes: unindexed.
        kinds = {} if self.local else self._schema(collection_id).kinds
        indexes = {k: v for k, v in kinds.items() if k not in (TEXT_FIELD, SEQ_FIELD, BM25_FIELD)}
        return compile_filter(
            node, case_insensitive=case_insensitive, indexes=indexes, models=CLIENT_MODELS
        )

    def _payload(self, with_payload: bool = True) -> Any:
        return (
            models.PayloadSelectorExclude(exclude=[BM25_FIELD]) if with_payload else ["document_id"]
        )

    def _pages(
        self, collection_id: str, compiled: CompiledFilter | None
    ) -> Iterator[list[models.Record]]:
        """The points under the filter's engine part, a page at a time (`_SCROLL_PAGE`);
        payloads in full only when a residual needs them."""
        name = self._name(collection_id)
        with_payload = self._payload(compiled is not None and compiled.residual is not None)
        offset: Any = None
        while True:
            with self._errors.calls(collection_id):
                records, offset = self.client.scroll(
                    name,
                    scroll_filter=compiled.qdrant if compiled is not None else None,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=with_payload,
                )
            yield records
            if offset is None:
                return

    def _dense_path(
        self, collection_id: str, node: FilterNode | None, compiled: CompiledFilter | None
    ) -> tuple[str | None, tuple[str, ...]]:
        if compiled is None or node is None:
            return None, ()
        schema = self._schema(collection_id)
        return dense_filter_path(
            node,
            compiled,
            schema.kinds,
            exhaustive=self.exact or self.local or not schema.hnsw_built,
            late_indexes=schema.late,
        )

    def search(self, collection_id: str, requests: list[SearchRequest]) -> list[SearchAnswer]:
        """Dense and BM25 searches in one batch; each gets its own ranked list."""
        if not requests:
            return []
        answers: list[SearchAnswer | None] = [None] * len(requests)
        batch: list[models.QueryRequest] = []
        plans: list[tuple[int, str | None, tuple[str, ...]]] = []
        filters: dict[int, tuple[models.Filter | None, CompiledFilter | None]] = {}
        for i, req in enumerate(requests):
            # The searches of one stage share one filter: compile (and scan) it once.
            if id(req.filter) not in filters:
                filters[id(req.filter)] = self._engine_filter(collection_id, req.filter)
            flt, compiled = filters[id(req.filter)]
            query: Any
            using: str | None
            params = None
            if req.text is not None:
                # BM25 scores every posting of the query's terms: filtered exactly.
                path: str | None = "exact" if compiled is not None else None
                unindexed: tuple[str, ...] = ()
                terms = bm25_text(req.text)
                if not terms:  # only stop words: nothing can match
                    answers[i] = SearchAnswer([], path, unindexed)
                    continue
                query, using = models.TextQuery(text=terms), BM25_FIELD
            else:
                path, unindexed = self._dense_path(collection_id, req.filter, compiled)
                query, using = list(req.vector or []), req.vector_name or None
                # local mode searches exactly and ignores (and warns about) search params
                params = (
                    None
                    if self.local
                    else dense_search_params(
                        req.limit,
                        acorn=path == "acorn",
                        exact=self.exact or (path == "exact" and bool(unindexed)),
                    )
                )
            plans.append((i, path, unindexed))
            batch.append(
                models.QueryRequest(
                    query=query,
                    using=using,
                    filter=flt,
                    params=params,
                    limit=req.limit,
                    score_threshold=req.score_threshold,
                    with_payload=self._payload(req.with_payload),
                    with_vector=[req.vector_name]
                    if req.with_vectors and req.vector_name
                    else False,
                )
            )
        if batch:
            with self._errors.calls(collection_id):
                responses = self.client.query_batch_points(self._name(collection_id), batch)
            for (i, path, unindexed), response in zip(plans, responses, strict=True):
                hits = scan.scored_hits(response.points, requests[i].with_vectors)
                answers[i] = SearchAnswer(hits, path, unindexed)
        return [a if a is not None else SearchAnswer([]) for a in answers]

    def scroll(
        self,
        collection_id: str,
        flt: FilterNode | None,
        limit: int,
        *,
        case_insensitive: bool = False,
    ) -> list[ScoredHit]:
        """Up to `limit` documents matching a filter, unscored, in point-id order."""
        qfilter, _ = self._engine_filter(collection_id, flt, case_insensitive)
        with self._errors.calls(collection_id):
            records, _ = self.client.scroll(
                self._name(collection_id),
                scroll_filter=qfilter,
                limit=limit,
                with_payload=self._payload(),
            )
        return scan.unscored_hits(records)

    def payloads(
        self, collection_id: str, document_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """Full payloads of some documents (those deleted meanwhile are absent)."""
        with self._errors.calls(collection_id):
            records = self.client.retrieve(
                self._name(collection_id),
                [point_id(d) for d in document_ids],
                with_payload=self._payload(),
                with_vectors=False,
            )
        return scan.payloads_by_id(records)

    def vectors(
        self, collection_id: str, document_ids: Sequence[str], vector_name: str
    ) -> dict[str, list[float]]:
        with self._errors.calls(collection_id):
            records = self.client.retrieve(
                self._name(collection_id),
                [point_id(d) for d in document_ids],
                with_payload=["document_id"],
                with_vectors=[vector_name],
            )
        return scan.vectors_by_id(records, vector_name)

    def facet(
        self, collection_id: str, key: str, limit: int, flt: FilterNode | None
    ) -> FacetCounts:
        """Value counts of a field: by the server's facet API over a keyword, integer or
        bool index; else (reads never create indexes) by a scan of at most
        FACET_SCAN_LIMIT matching points, which says whether it saw them all."""
        qfilter, _ = self._engine_filter(collection_id, flt)
        name = self._name(collection_id)
        if normalize_index_kind(self.indexed_fields(collection_id).get(key)) in FACET_KINDS:
            with self._errors.calls(collection_id):
                response = self.client.facet(
                    name, key, facet_filter=qfilter, limit=limit, exact=True
                )
            return engine_facet(response.hits)
        with self._errors.calls(collection_id):
            records, more = self.client.scroll(
                name, scroll_filter=qfilter, limit=FACET_SCAN_LIMIT, with_payload=[key]
            )
        return scanned_facet(records, more, key, limit)
