"""SearchIndex over Qdrant Edge: one in-process EdgeShard per Stagewise collection."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from qdrant_edge import (
    CountRequest,
    Direction,
    EdgeShard,
    FacetRequest,
    Filter,
    OrderBy,
    Query,
    QueryBatchRequest,
    QueryRequest,
    ScrollRequest,
    TextQuery,
    UpdateOperation,
)

from stagewise.domain.filters import FilterNode
from stagewise.domain.records import CollectionRecord
from stagewise.ids import point_id
from stagewise.storage.index import scan
from stagewise.storage.index.facets import (
    FACET_KINDS,
    FACET_SCAN_LIMIT,
    engine_facet,
    scanned_facet,
)
from stagewise.storage.index.filter_models import EDGE_MODELS
from stagewise.storage.index.layout import (
    OWN_FIELDS,
    create_shard,
    dense_search_params,
    to_points,
)
from stagewise.storage.index.qdrant_filter import (
    CompiledFilter,
    compile_filter,
    dense_filter_path,
    normalize_index_kind,
    payload_index_schema,
)
from stagewise.storage.index.warmup import warm_shard
from stagewise.storage.payload import SEQ_FIELD, TEXT_FIELD
from stagewise.storage.protocols import (
    FacetCounts,
    IndexPoint,
    ScoredHit,
    SearchAnswer,
    SearchRequest,
)

_SCROLL_PAGE = 1000


def _remove(path: Path) -> None:
    """A generation directory, or a build's log file; absent is fine."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class EdgeSearchIndex(scan.FilterScans[Filter]):
    """Each collection's shard lives in a generation directory under `root`; the file
    `<collection_id>.current` names the one in use (none: the directory `<collection_id>`).
    A new generation is built elsewhere (a child process) and swapped in with
    install_generation(). Filters: `FilterScans` (filter_ids, the residual scan, id sets)."""

    _filter_models = EDGE_MODELS

    def __init__(self, root: Path, *, scan_cap: int = scan.DEFAULT_SCAN_CAP) -> None:
        self.root = root
        self.scan_cap = scan_cap
        self.root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, EdgeShard] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()
        self._schemas: dict[str, dict[str, str]] = {}  # payload index kinds, per shard
        self._retired: list[tuple[float, EdgeShard, Path]] = []
        self._late: dict[str, bool] = {}  # see needs_rebuild()
        self._staged: dict[str, tuple[Path, EdgeShard]] = {}  # loaded, warmed, not yet served

    # ---- lifecycle
    def close(self) -> None:
        with self._guard:
            for shard in [*self._shards.values(), *(s for _, s in self._staged.values())]:
                shard.close()
            self._shards.clear()
            self._staged.clear()

    def _pointer(self, collection_id: str) -> Path:
        return self.root / f"{collection_id}.current"

    def _path(self, collection_id: str) -> Path:
        pointer = self._pointer(collection_id)
        if pointer.exists():
            return self.root / pointer.read_text().strip()
        return self.root / collection_id

    def new_generation_dir(self, collection_id: str) -> Path:
        return self.root / f"{collection_id}.g{time.time_ns()}"

    def _lock(self, collection_id: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(collection_id, threading.RLock())

    def shard(self, collection_id: str) -> EdgeShard:
        shard = self._shards.get(collection_id)
        if shard is None:
            with self._lock(collection_id):
                shard = self._shards.get(collection_id)
                if shard is None:
                    path = self._path(collection_id)
                    if not path.exists():
                        raise KeyError(collection_id)
                    shard = EdgeShard.load(str(path))
                    self._shards[collection_id] = shard
        return shard

    def ensure_collection(self, collection: CollectionRecord) -> None:
        cid = collection.collection_id
        with self._lock(cid):
            if cid in self._shards:
                return
            path = self._path(cid)
            if path.exists():
                self._shards[cid] = EdgeShard.load(str(path))
                return
            shard = create_shard(path, collection, {})
            self._shards[cid] = shard

    def drop_collection(self, collection_id: str) -> None:
        with self._lock(collection_id):
            shard = self._shards.pop(collection_id, None)
            self._schemas.pop(collection_id, None)
            if shard is not None:
                shard.close()
            _remove(self._path(collection_id))
            for old in self.root.glob(f"{collection_id}.g[0-9]*"):
                _remove(old)
            self._pointer(collection_id).unlink(missing_ok=True)
            self._set_late(collection_id, False)

    # ---- writes
    def upsert(self, collection_id: str, points: Sequence[IndexPoint]) -> None:
        if not points:
            return
        shard = self.shard(collection_id)
        batch = to_points(points)
        with self._lock(collection_id):
            shard.update(UpdateOperation.upsert_points(batch))

    def delete(self, collection_id: str, document_ids: Sequence[str]) -> None:
        if not document_ids:
            return
        shard = self.shard(collection_id)
        with self._lock(collection_id):
            shard.update(UpdateOperation.delete_points([point_id(d) for d in document_ids]))

    # ---- reads
    def max_seq(self, collection_id: str) -> int:
        shard = self.shard(collection_id)
        records, _ = shard.scroll(
            ScrollRequest(
                limit=1,
                with_payload=[SEQ_FIELD],
                order_by=OrderBy(SEQ_FIELD, Direction.Desc),
            )
        )
        if not records:
            return 0
        payload = records[0].payload or {}
        return int(payload.get(SEQ_FIELD, 0))

    def count(self, collection_id: str, flt: FilterNode | None = None) -> int:
        shard = self.shard(collection_id)
        if flt is None:
            # The segments' own tally: exact for a local shard (deletes and re-upserts
            # included), 0.05 ms instead of an exact count's 5 ms at 100k points.
            return int(shard.info().points_count)
        compiled = self._compile(collection_id, flt, False)
        if compiled.residual is None:  # the engine counts it, with its payload indexes
            return int(shard.count(CountRequest(exact=True, filter=compiled.qdrant)))
        return sum(1 for _ in self.filter_ids(collection_id, flt))

    def _first(
        self, collection_id: str, compiled: CompiledFilter, limit: int, payloads: bool
    ) -> list[Any]:
        request = ScrollRequest(limit=limit, filter=compiled.qdrant, with_payload=payloads)
        records, _ = self.shard(collection_id).scroll(request)
        return list(records)

    def _compile(self, collection_id: str, node: Any, case_insensitive: bool) -> CompiledFilter:
        # The compiler must know the indexes: some payload index kinds change Qdrant's answers.
        # The BM25 `_text` index (stop words) and `_seq` are ours, never user-filtered.
        indexes = {
            k: v
            for k, v in self.indexed_fields(collection_id).items()
            if k not in (TEXT_FIELD, SEQ_FIELD)
        }
        return compile_filter(node, case_insensitive=case_insensitive, indexes=indexes)

    def _pages(self, collection_id: str, compiled: CompiledFilter | None) -> Iterator[list[Any]]:
        """The points under the filter's engine part, a page at a time; payloads in full only
        when a residual needs them. One shard throughout, looked up at the first page."""
        shard = self.shard(collection_id)
        offset: Any = None
        want_payload: Any = True if compiled is not None and compiled.residual else ["document_id"]
        while True:
            records, offset = shard.scroll(
                ScrollRequest(
                    offset=offset,
                    limit=_SCROLL_PAGE,
                    filter=compiled.qdrant if compiled else None,
                    with_payload=want_payload,
                )
            )
            yield records
            if offset is None:
                return

    def _dense_path(
        self, collection_id: str, node: FilterNode | None, compiled: CompiledFilter | None
    ) -> tuple[str | None, tuple[str, ...]]:
        """How a filtered dense search must run over this shard (`dense_filter_path`)."""
        if compiled is None or node is None:
            return None, ()
        return dense_filter_path(
            node,
            compiled,
            self.indexed_fields(collection_id),
            # no HNSW yet: every search is an exhaustive scan
            exhaustive=int(self.shard(collection_id).info().indexed_vectors_count) == 0,
            late_indexes=self.needs_rebuild(collection_id),
        )

    def search(self, collection_id: str, requests: list[SearchRequest]) -> list[SearchAnswer]:
        """Run dense and BM25 searches in one batch; each gets its own ranked list."""
        if not requests:
            return []
        shard = self.shard(collection_id)
        batch = []
        plans: list[tuple[str | None, tuple[str, ...]]] = []
        compiled_by_filter: dict[int, tuple[Filter | None, CompiledFilter | None]] = {}
        for req in requests:
            # The searches of one stage share one filter: compile (and scan) it once.
            key = id(req.filter)
            if key not in compiled_by_filter:
                compiled_by_filter[key] = self._engine_filter(collection_id, req.filter)
            flt, compiled = compiled_by_filter[key]
            query: Any
            params = None
            if req.text is not None:
                query = TextQuery(TEXT_FIELD, req.text)
                # BM25 scores every posting of the query's terms: filtered exactly.
                plans.append(("exact" if compiled is not None else None, ()))
            else:
                query = Query.Nearest(list(req.vector or []), using=req.vector_name)
                path, unindexed = self._dense_path(collection_id, req.filter, compiled)
                plans.append((path, unindexed))
                params = dense_search_params(
                    req.limit, acorn=path == "acorn", exact=path == "exact" and bool(unindexed)
                )
            batch.append(
                QueryRequest(
                    limit=req.limit,
                    query=query,
                    filter=flt,
                    with_payload=True if req.with_payload else ["document_id"],
                    with_vector=[req.vector_name]
                    if req.with_vectors and req.vector_name
                    else False,
                    score_threshold=req.score_threshold,
                    params=params,
                )
            )
        results = shard.query_batch(QueryBatchRequest(batch))
        return [
            SearchAnswer(scan.scored_hits(points, req.with_vectors), path, unindexed)
            for points, req, (path, unindexed) in zip(results, requests, plans, strict=True)
        ]

    def scroll(
        self,
        collection_id: str,
        flt: FilterNode | None,
        limit: int,
        *,
        case_insensitive: bool = False,
    ) -> list[ScoredHit]:
        """Up to `limit` documents matching a filter, unscored, in storage order."""
        shard = self.shard(collection_id)
        flt_engine, _ = self._engine_filter(collection_id, flt, case_insensitive)
        records, _ = shard.scroll(ScrollRequest(limit=limit, filter=flt_engine, with_payload=True))
        return scan.unscored_hits(records)

    def payloads(
        self, collection_id: str, document_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """Full payloads of some documents (those deleted meanwhile are absent)."""
        records = self.shard(collection_id).retrieve(
            [point_id(d) for d in document_ids], True, False
        )
        return scan.payloads_by_id(records)

    def vectors(
        self, collection_id: str, document_ids: Sequence[str], vector_name: str
    ) -> dict[str, list[float]]:
        shard = self.shard(collection_id)
        records = shard.retrieve(
            [point_id(d) for d in document_ids], ["document_id"], [vector_name]
        )
        return scan.vectors_by_id(records, vector_name)

    def facet(
        self, collection_id: str, key: str, limit: int, flt: FilterNode | None
    ) -> FacetCounts:
        """Value counts of a field. With a payload index the engine counts them exactly;
        without one (reads never create indexes) a scan of at most FACET_SCAN_LIMIT matching
        points counts them, and says whether it saw them all."""
        shard = self.shard(collection_id)
        flt_engine, _ = self._engine_filter(collection_id, flt)
        if normalize_index_kind(self.indexed_fields(collection_id).get(key)) in FACET_KINDS:
            response = shard.facet(
                FacetRequest(key=key, limit=limit, exact=True, filter=flt_engine)
            )
            return engine_facet(response.hits)
        records, more = shard.scroll(
            ScrollRequest(limit=FACET_SCAN_LIMIT, filter=flt_engine, with_payload=[key])
        )
        return scanned_facet(records, more, key, limit)

    def ensure_payload_index(self, collection_id: str, field: str, kind: str) -> bool:
        """Create a payload index if the field has none; returns True when one was created.

        An index created after HNSW was built gets no filter-aware links in the built
        segments, and selective filtered searches then lose most of their hits (9% filter at
        1M: recall 0.29, bench/build_probe.py). Such a shard is marked: its filtered dense
        searches use ACORN (exact again, slower) until a rebuilt generation replaces it."""
        shard = self.shard(collection_id)
        info = shard.info()
        if field in info.payload_schema:
            return False
        schema = payload_index_schema(kind)
        with self._lock(collection_id):
            shard.update(UpdateOperation.create_field_index(field, schema))
            self._schemas.pop(collection_id, None)
            if int(info.indexed_vectors_count) > 0:
                self._set_late(collection_id, True)
        return True

    def _late_marker(self, collection_id: str) -> Path:
        return self.root / f"{collection_id}.late-indexes"

    def _set_late(self, collection_id: str, late: bool) -> None:
        # The marker file keeps the mark across restarts; searches read the in-memory copy.
        if late:
            self._late_marker(collection_id).touch()
        else:
            self._late_marker(collection_id).unlink(missing_ok=True)
        self._late[collection_id] = late

    def needs_rebuild(self, collection_id: str) -> bool:
        """True when a payload index was added after HNSW was built (see above)."""
        late = self._late.get(collection_id)
        if late is None:
            late = self._late[collection_id] = self._late_marker(collection_id).exists()
        return late

    def indexed_fields(self, collection_id: str) -> dict[str, str]:
        cached = self._schemas.get(collection_id)
        if cached is None:
            info = self.shard(collection_id).info()
            cached = {k: str(v.data_type) for k, v in info.payload_schema.items()}
            self._schemas[collection_id] = cached
        return cached

    def unindexed_points(self, collection_id: str) -> int:
        """Points still searched by exact scan (not yet in an HNSW segment)."""
        info = self.shard(collection_id).info()
        return max(0, int(info.points_count) - int(info.indexed_vectors_count))

    def points(self, collection_id: str) -> int:
        return int(self.shard(collection_id).info().points_count)

    def extra_indexes(self, collection_id: str) -> dict[str, str]:
        """User payload indexes (field -> kind), for building a new generation alike."""
        return {
            k: normalize_index_kind(v)
            for k, v in self.indexed_fields(collection_id).items()
            if k not in OWN_FIELDS
        }

    def stage_generation(self, collection_id: str, directory: Path) -> dict[str, Any]:
        """Load the shard built in `directory` and warm it (storage/index/warmup.py), without
        the collection's lock: the server serves meanwhile. install_generation() uses it."""
        new = EdgeShard.load(str(directory))
        have = new.info().payload_schema
        indexes = {k: normalize_index_kind(str(v.data_type)) for k, v in have.items()}
        warmed = warm_shard(new, {k: v for k, v in indexes.items() if k not in OWN_FIELDS})
        with self._lock(collection_id):
            previous = self._staged.pop(collection_id, None)
            self._staged[collection_id] = (directory, new)
        if previous is not None:
            previous[1].close()
        return warmed

    def install_generation(self, collection_id: str, directory: Path) -> None:
        """Serve the shard built in `directory` from now on (the one stage_generation() warmed,
        if it was). The caller holds the collection's write lock and replays the writes newer
        than the new shard's watermark. The old shard is closed a little later: a search may
        still hold it."""
        with self._lock(collection_id):
            staged = self._staged.pop(collection_id, None)
            if staged is not None and staged[0] == directory:
                new = staged[1]
            else:
                if staged is not None:
                    staged[1].close()
                new = EdgeShard.load(str(directory))
            have = new.info().payload_schema
            added_late = False
            for field, kind in self.extra_indexes(collection_id).items():
                if field not in have:  # created while the child was building
                    schema = payload_index_schema(kind)
                    new.update(UpdateOperation.create_field_index(field, schema))
                    added_late = True
            old_path = self._path(collection_id)
            tmp = self._pointer(collection_id).with_suffix(".tmp")
            tmp.write_text(directory.name)
            os.replace(tmp, self._pointer(collection_id))  # atomic: a crash keeps one or other
            old = self._shards.get(collection_id)
            self._shards[collection_id] = new
            self._schemas.pop(collection_id, None)
            if old is not None:
                self._retired.append((time.monotonic(), old, old_path))
            # unless an index had to be added to it just now, the new generation was built
            # with every index from the start
            self._set_late(collection_id, added_late)

    def remove_stray_generations(self, collection_id: str) -> None:
        """Delete generations not in use, and build logs: what a crash left behind."""
        current = self._path(collection_id)
        for path in [self.root / collection_id, *self.root.glob(f"{collection_id}.g[0-9]*")]:
            if path != current:
                _remove(path)

    def reap_retired(self, grace_s: float = 5.0) -> None:
        """Close and delete replaced generations once no search can still be using them."""
        now = time.monotonic()
        keep = []
        for retired_at, shard, path in self._retired:
            if now - retired_at < grace_s:
                keep.append((retired_at, shard, path))
                continue
            shard.close()
            _remove(path)
        self._retired = keep

    def optimize(self, collection_id: str) -> bool:
        """Build HNSW and payload indexes over new points. Blocks this process (the binding
        holds the GIL), so it runs at start-up or offline, never while serving."""
        shard = self.shard(collection_id)
        with self._lock(collection_id):
            return bool(shard.optimize())
