"""What both SearchIndex transports do alike over their engine's points, written once so that
the embedded shards (`edge.py`) and a Qdrant server (`remote.py`) answer alike:

- `FilterScans`: document ids by a payload scan that applies a compiled filter's residual
  (`qdrant_filter.py`), and the engine filter that searches, scrolls and facets run under,
  a residual resolved to an id set. A transport supplies how it compiles a filter (its
  payload index kinds, its API's `FilterModels`) and how it pages through its points.
- hits, payloads and vectors keyed by document id, from the engine's records.

A residual is bounded: before Python reads a payload, the engine counts the points its part
of the filter narrows to, and past `scan_cap` the filter is refused (`FilterScanTooLarge`, a
422 naming the field and operator) instead of scanning 100k payloads for a second. Within
`reuse_residuals()` (an execute batch) a residual is resolved once per (collection, filter).

A point is the engine's own record (qdrant_edge or qdrant_client); only its `payload` is
read (and a hit's `score` and `vector`). The loops run once per point on the embedded
transport's hot paths: keep them as lean as the inline loops they replaced.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Generic, TypeVar

from stagewise.domain.filters import FilterNode, Leaf, iter_leaves, matches
from stagewise.errors import FilterScanTooLarge
from stagewise.ids import point_id
from stagewise.storage.index.filter_models import FilterModels
from stagewise.storage.index.qdrant_filter import CompiledFilter, index_requirements
from stagewise.storage.protocols import ScoredHit

F = TypeVar("F")  # the engine's filter type

DEFAULT_SCAN_CAP = 2_000
_SCANNED = frozenset({"ends_with", "regex", "text", "contains", "words", "phrase"})
# (index, collection, filter, case_insensitive) -> matching ids, within reuse_residuals()
_MEMO: ContextVar[dict[tuple[Any, ...], list[str]] | None] = ContextVar(
    "residual_memo", default=None
)


@contextmanager
def reuse_residuals() -> Iterator[None]:
    """Resolve each residual once while this is open (one request's queries; no writes)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def matching_ids(
    pages: Iterable[Iterable[Any]], residual: FilterNode | None, case_insensitive: bool = False
) -> Iterator[str]:
    """Document ids of the points of a paged scroll (already under the filter's engine part)
    that the residual matches, evaluated over their payloads; every point when it is None.
    Lazy: a page is fetched once the ids before it have been consumed."""
    for records in pages:
        for rec in records:
            payload = rec.payload or {}
            if residual is not None and not matches(
                residual, payload, case_insensitive=case_insensitive
            ):
                continue
            yield str(payload["document_id"])


def id_set_filter(models: FilterModels, document_ids: Iterable[str]) -> Any:
    """An engine filter admitting exactly these documents."""
    return models.filter(must=[models.has_ids(point_id(d) for d in document_ids)])


class FilterScans(ABC, Generic[F]):
    """The filter half of a `SearchIndex` over one Qdrant API (`F`: its filter type)."""

    _filter_models: ClassVar[FilterModels]
    scan_cap: int = DEFAULT_SCAN_CAP  # payloads a residual may scan (0: no cap)
    residual_scans: int = 0  # residual scans run (observability; tests count reuse)

    @abstractmethod
    def _compile(
        self, collection_id: str, node: FilterNode, case_insensitive: bool
    ) -> CompiledFilter:
        """`node` split into the part this collection's engine evaluates exactly (given its
        payload indexes) and a residual."""

    @abstractmethod
    def _pages(self, collection_id: str, compiled: CompiledFilter | None) -> Iterator[list[Any]]:
        """The points under `compiled.qdrant` (all without a filter), a page at a time,
        with at least `document_id` in their payloads, and all of it when there is a
        residual. Lazy: an unknown collection raises KeyError at the first page."""

    @abstractmethod
    def _first(
        self, collection_id: str, compiled: CompiledFilter, limit: int, payloads: bool
    ) -> list[Any]:
        """Up to `limit` points under `compiled.qdrant` (any without one), with their full
        payloads or none."""

    def filter_ids(self, collection_id: str, flt: FilterNode | None) -> Iterator[str]:
        """Document ids matching a filter, exactly."""
        if flt is None:
            return self._scan(collection_id, None)
        compiled = self._compile(collection_id, flt, False)
        if compiled.residual is None:
            return self._scan(collection_id, compiled)
        return iter(self._residual_ids(collection_id, flt, compiled, False))

    def _residual_ids(
        self, collection_id: str, flt: FilterNode, compiled: CompiledFilter, ci: bool
    ) -> list[str]:
        """The ids matching a filter with a residual: memoised within reuse_residuals()."""
        memo = _MEMO.get()
        key = (id(self), collection_id, flt, ci)
        if memo is not None and key in memo:
            return memo[key]
        ids = list(self._scan(collection_id, compiled, ci))
        if memo is not None:
            memo[key] = ids
        return ids

    def _scan(
        self, collection_id: str, compiled: CompiledFilter | None, case_insensitive: bool = False
    ) -> Iterator[str]:
        residual = compiled.residual if compiled is not None else None
        if compiled is None or residual is None:
            return matching_ids(self._pages(collection_id, compiled), None)
        self.residual_scans += 1
        if not self.scan_cap:
            return matching_ids(self._pages(collection_id, compiled), residual, case_insensitive)
        # Ids only first: the engine stops at cap + 1 matches (a count would visit them all),
        # and refusing costs no payload conversion.
        if len(self._first(collection_id, compiled, self.scan_cap + 1, False)) > self.scan_cap:
            raise _too_large(residual, self.scan_cap)
        first = self._first(collection_id, compiled, self.scan_cap, True)
        return matching_ids((first,), residual, case_insensitive)

    def _engine_filter(
        self, collection_id: str, flt: FilterNode | None, case_insensitive: bool = False
    ) -> tuple[F | None, CompiledFilter | None]:
        """An engine filter equivalent to `flt`. Parts the engine cannot evaluate exactly are
        resolved to an id set by a payload scan, so searches under them stay exact; the
        compiled filter says which it was (a residual means an id set)."""
        if flt is None:
            return None, None
        compiled = self._compile(collection_id, flt, case_insensitive)
        if compiled.residual is None:
            return compiled.qdrant, compiled
        ids = self._residual_ids(collection_id, flt, compiled, case_insensitive)
        return id_set_filter(self._filter_models, ids), compiled

    def wanted_indexes(
        self, flt: FilterNode | None, *, case_insensitive: bool = False
    ) -> dict[str, str]:
        return index_requirements(flt, case_insensitive=case_insensitive)


def _too_large(residual: FilterNode, cap: int) -> FilterScanTooLarge:
    leaves = list(iter_leaves(residual))
    # name the condition that forced the scan, not an indexed one grouped with it
    leaf = next((x for x in leaves if x.operator in _SCANNED), leaves[0] if leaves else None)
    field, op = (leaf.field, leaf.operator) if isinstance(leaf, Leaf) else ("?", "?")
    return FilterScanTooLarge(
        f"the filter's '{op}' on '{field}' cannot run in the engine and would scan more "
        f"than {cap} documents' payloads: add a condition the engine runs natively (eq, in, "
        "a range, starts_with) that narrows the filter to at most that many documents",
        field=field,
        operator=op,
        scan_cap=cap,
    )


def scored_hits(points: Iterable[Any], with_vectors: bool) -> list[ScoredHit]:
    """A search's ranked points as hits (named vectors only when asked for)."""
    out = []
    for p in points:
        payload = p.payload or {}
        vectors = p.vector if with_vectors and isinstance(p.vector, dict) else None
        out.append(ScoredHit(str(payload.get("document_id")), float(p.score), payload, vectors))
    return out


def unscored_hits(records: Iterable[Any]) -> list[ScoredHit]:
    """Scrolled points as hits, score 0."""
    return [
        ScoredHit(str((r.payload or {}).get("document_id")), 0.0, r.payload or {}) for r in records
    ]


def payloads_by_id(records: Iterable[Any]) -> dict[str, dict[str, Any]]:
    return {str((r.payload or {}).get("document_id")): r.payload or {} for r in records}


def vectors_by_id(records: Iterable[Any], vector_name: str) -> dict[str, list[float]]:
    """One named dense vector per document; points without it are left out."""
    out: dict[str, list[float]] = {}
    for rec in records:
        vec = rec.vector.get(vector_name) if isinstance(rec.vector, dict) else None
        if isinstance(vec, list):
            out[str((rec.payload or {}).get("document_id"))] = [float(x) for x in vec]
    return out
