"""feature_search: dense, BM25 and hybrid search with fusion, pre-filters, facets, group_by."""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np

from stagewise.domain.filters import FilterNode
from stagewise.domain.records import CollectionRecord, VectorIndexSpec
from stagewise.errors import StageFailed, ValidationFailed
from stagewise.pipeline import search_extras as extras
from stagewise.pipeline.candidates import doc_from_payload
from stagewise.pipeline.embed_cache import CacheUse, EmbeddingCache
from stagewise.pipeline.fusion import RRF_K, RankedList, fuse_sources
from stagewise.pipeline.registry import register
from stagewise.pipeline.search_params import (
    DocumentRef,
    FeatureSearchConfig,
    FeatureSearchParams,
)
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)
from stagewise.storage.protocols import SearchAnswer, SearchRequest

CREDITS_PER_SEARCH = 1.0
CREDITS_PER_EMBEDDING = 1.0
CREDITS_PER_HIT = 0.001
QUERY_CACHE = EmbeddingCache(4096)  # query text embeddings (see embed_cache)


def _query_value(search: FeatureSearchConfig) -> tuple[str, Any]:
    q = search.query
    if q is None:
        return "text", None
    if isinstance(q, str):
        return "text", q
    if q.input_mode == "text":
        return "text", q.value if q.value is not None else q.text
    if q.input_mode == "vector":
        return "vector", q.value
    if q.input_mode == "document":
        return "document", q.document_ref
    raise ValidationFailed(
        f"feature_search query input_mode '{q.input_mode}' needs a media model this server "
        "does not have; use text, vector or document",
        code="unsupported_input_mode",
    )


def _spec(col: CollectionRecord, search: FeatureSearchConfig) -> VectorIndexSpec | None:
    return col.vector_index(search.feature_uri)


@register
class FeatureSearch(Stage):
    stage_id: ClassVar[str] = "feature_search"
    category: ClassVar[Category] = "filter"
    description: ClassVar[str] = (
        "Dense (vector), lexical (BM25) or hybrid search over collection features, fused with "
        "rrf, dbsf, weighted or max; pre-filters are pushed into the search"
    )
    icon: ClassVar[str] = "search"
    Params = FeatureSearchParams
    keeps_cache: ClassVar[bool] = True

    @classmethod
    def validate_for(cls, params: StageParams, collections: list[CollectionRecord]) -> None:
        p: FeatureSearchParams = params  # type: ignore[assignment]
        for i, search in enumerate(p.searches):
            targets = collections
            if search.collection_identifiers or p.collection_identifiers:
                wanted = set(search.collection_identifiers or p.collection_identifiers or [])
                targets = [c for c in collections if {c.collection_id, c.collection_name} & wanted]
            for col in targets:
                if _spec(col, search) is None:
                    valid = [s.feature_uri for s in col.vector_indexes]
                    raise ValidationFailed(
                        f"searches[{i}].feature_uri '{search.feature_uri}' does not exist in "
                        f"collection '{col.collection_name}'. Valid: {valid}",
                        code="unknown_feature_uri",
                        valid_feature_uris=valid,
                    )
                if search.lexical and col.text_field is None:
                    raise ValidationFailed(
                        f"searches[{i}] is lexical but collection '{col.collection_name}' has no "
                        "text feature to run BM25 over",
                        code="no_text_index",
                    )
            mode, value = _query_value(search)
            if mode == "vector" and isinstance(value, list):
                for col in targets:
                    spec = _spec(col, search)
                    if spec is not None and len(value) != spec.dimensions:
                        raise ValidationFailed(
                            f"searches[{i}] query vector has {len(value)} dimensions; "
                            f"'{spec.feature_uri}' expects {spec.dimensions}",
                            code="vector_dimension_mismatch",
                        )

    def _targets(self, ctx: StageContext, search: FeatureSearchConfig) -> list[CollectionRecord]:
        p: FeatureSearchParams = self.params  # type: ignore[assignment]
        wanted = search.collection_identifiers or p.collection_identifiers
        if not wanted:
            return ctx.collections
        out = []
        for ident in wanted:
            col = ctx.collection(ident)
            if col is None:
                raise StageFailed(f"feature_search: collection '{ident}' no longer exists")
            out.append(col)
        return out

    def _request(
        self,
        ctx: StageContext,
        search: FeatureSearchConfig,
        col: CollectionRecord,
        flt: FilterNode | None,
        to_embed: list[tuple[SearchRequest, str]],
    ) -> SearchRequest | None:
        """One engine request. A text query's vector is filled in once every text is known
        (`to_embed` collects them, so they are embedded in one model call)."""
        spec = _spec(col, search)
        if spec is None:
            raise StageFailed(
                f"feature_search: '{search.feature_uri}' is not in collection "
                f"'{col.collection_name}'"
            )
        mode, value = _query_value(search)
        if value is None or value == "" or value == []:
            return None
        common: dict[str, Any] = {
            "limit": search.top_k,
            "filter": flt,
            "score_threshold": search.min_score,
            "with_payload": False,
        }
        if search.lexical:
            return SearchRequest(text=str(value), **common)
        if mode == "text":
            request = SearchRequest(vector_name=spec.name, **common)
            to_embed.append((request, str(value)))
            return request
        if mode == "vector":
            if not isinstance(value, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in value
            ):
                raise ValidationFailed(
                    "feature_search: a vector query needs a list of finite numbers",
                    code="invalid_vector",
                )
            vector = [float(v) for v in value]
            if len(vector) != spec.dimensions:
                raise ValidationFailed(
                    f"query vector has {len(vector)} dimensions; '{spec.feature_uri}' expects "
                    f"{spec.dimensions}",
                    code="vector_dimension_mismatch",
                )
            return SearchRequest(vector_name=spec.name, vector=vector, **common)
        ref: DocumentRef = value
        ref_col = ctx.collection(ref.collection_id)
        doc = (
            ctx.stores.metadata.get_document(ref_col.collection_id, ref.document_id)
            if ref_col
            else None
        )
        if doc is None or spec.name not in doc.vectors:
            raise StageFailed(
                f"feature_search: document '{ref.document_id}' has no '{spec.feature_uri}' vector"
            )
        return SearchRequest(vector_name=spec.name, vector=doc.vectors[spec.name], **common)

    def _embed(self, ctx: StageContext, to_embed: list[tuple[SearchRequest, str]]) -> CacheUse:
        """Embed the query texts (reusing cached embeddings, per cache_behavior)."""
        p: FeatureSearchParams = self.params  # type: ignore[assignment]
        use = CacheUse(p.cache_behavior or "auto")
        if not to_embed:
            return use
        embedder = ctx.stores.embedder
        ordered = list(dict.fromkeys(text for _, text in to_embed))
        # Charged per distinct text whether or not the cache serves it: credits are a
        # deterministic price (docs/credits.md), the cache only saves time.
        ctx.budget.charge(CREDITS_PER_EMBEDDING * len(ordered))
        model = (embedder.label, embedder.name, embedder.dimensions)
        ttl = None if p.cache_ttl_seconds is None else float(p.cache_ttl_seconds)
        matrix = QUERY_CACHE.embed(model, ordered, embedder.embed, use, ttl)
        vectors = {
            text: np.asarray(row, dtype=np.float32).tolist()
            for text, row in zip(ordered, matrix, strict=True)
        }
        for req, text in to_embed:
            req.vector = vectors[text]
        return use

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: FeatureSearchParams = self.params  # type: ignore[assignment]
        flt = ctx.stage_filter
        if not p.searches:
            out = extras.filter_only(ctx, flt, p.final_top_k)
            return StageResult(
                out, metadata={"mode": "filter_only"}, considered=self._pool(ctx, ctx.collections)
            )
        deadline = (
            None if p.hard_timeout_ms is None else time.perf_counter() + p.hard_timeout_ms / 1000
        )
        lists: list[RankedList] = []
        # key -> (collection_id, payload); searches return ids only, and the payloads of the
        # fused survivors are fetched once at the end (most hits of a hybrid search are cut).
        payloads: extras.Payloads = {}
        to_embed: list[tuple[SearchRequest, str]] = []
        skipped: list[int] = []
        # Plan every (search, collection) request first, so each collection answers all of
        # its searches in one engine call, and every query text is embedded in one call.
        planned: list[list[tuple[str, SearchRequest]]] = []
        by_collection: dict[str, list[SearchRequest]] = {}
        targets: dict[str, CollectionRecord] = {}
        for search in p.searches:
            ctx.budget.charge(CREDITS_PER_SEARCH)
            pairs: list[tuple[str, SearchRequest]] = []
            for col in self._targets(ctx, search):
                targets[col.collection_id] = col
                request = self._request(ctx, search, col, flt, to_embed)
                if request is not None:
                    pairs.append((col.collection_id, request))
                    by_collection.setdefault(col.collection_id, []).append(request)
            planned.append(pairs)
        cache = self._embed(ctx, to_embed)
        answers: dict[str, list[SearchAnswer]] = {}
        timed_out: set[str] = set()
        degraded: list[dict[str, Any]] = []
        for collection_id, batch in by_collection.items():
            ctx.budget.check()
            if deadline is not None and time.perf_counter() > deadline:
                degraded.append(_timed_out(targets[collection_id], p.hard_timeout_ms))
                timed_out.add(collection_id)
                answers[collection_id] = [SearchAnswer([]) for _ in batch]
                continue
            answers[collection_id] = ctx.stores.index.search(collection_id, batch)
        hits_of = {
            id(req): answer.hits
            for collection_id, batch in by_collection.items()
            for req, answer in zip(batch, answers[collection_id], strict=True)
        }
        for i, (search, pairs) in enumerate(zip(p.searches, planned, strict=True)):
            merged: list[tuple[str, float]] = []
            for collection_id, request in pairs:
                for h in hits_of[id(request)]:
                    key = f"{collection_id}\x1f{h.document_id}"
                    payloads.setdefault(key, (collection_id, None))
                    merged.append((key, h.score))
            if not pairs:
                if search.on_empty == "skip" or search.optional:
                    skipped.append(i)
                    continue
                if search.on_empty != "random":
                    raise StageFailed(
                        f"feature_search: searches[{i}] has an empty query "
                        "(set on_empty to 'skip' to ignore it)"
                    )
                ids = [c.collection_id for c in self._targets(ctx, search)]
                merged = extras.random_pool(ctx, ids, flt, search.top_k, payloads)
            merged.sort(key=lambda kv: (-kv[1], kv[0]))
            name = f"{'bm25' if search.lexical else 'dense'}:{search.feature_uri}"
            if any(lst.name == name for lst in lists):
                name = f"{name}#{i}"
            lists.append(RankedList(name, merged[: search.top_k], search.weight))
        ctx.budget.charge(CREDITS_PER_HIT * sum(len(lst.hits) for lst in lists))
        fused = fuse_sources(lists, p.fusion, RRF_K)
        survivors = fused[: p.final_top_k]
        provenance = self._provenance(lists, {key for key, _ in survivors})
        self._fetch_payloads(ctx, [key for key, _ in survivors], payloads)
        out = self._candidates(survivors, payloads, provenance, len(lists), p.fusion)
        filtering = extras.filter_report(answers)
        metadata: dict[str, Any] = {
            "searches": [
                {"name": lst.name, "hits": len(lst.hits), "weight": lst.weight} for lst in lists
            ],
            "fusion": p.fusion if len(lists) > 1 else None,
            "skipped_searches": skipped,
            "filter": filtering if flt is not None else None,
            "cache": cache.report(),
        }
        if filtering["unindexed_fields"]:
            ctx.warnings.append(
                "feature_search: no payload index on "
                f"{', '.join(filtering['unindexed_fields'])}, so the filtered search scanned "
                "every point (exact, slower); declare it in the namespace's payload_indexes, "
                "or filter on it in a retriever's stage, to have it indexed"
            )
        if p.group_by is not None:
            out = extras.group(out, p.group_by)
            metadata["group_by"] = p.group_by.field
        result = StageResult(
            out,
            metadata=metadata,
            # Collections skipped past hard_timeout_ms were not considered.
            considered=self._pool(ctx, [c for cid, c in targets.items() if cid not in timed_out]),
            stage_cache_hit=cache.served_from_cache,
            degraded=degraded,
        )
        if p.facets:
            result.facets = extras.facets(ctx, p.facets, flt)
            metadata["facets"] = result.facets
        return result

    @staticmethod
    def _pool(ctx: StageContext, collections: list[CollectionRecord]) -> int:
        """The points a first-stage search ranks: every point of its collections."""
        return sum(ctx.stores.index.count(col.collection_id) for col in collections)

    @staticmethod
    def _candidates(
        survivors: list[tuple[str, float]],
        payloads: extras.Payloads,
        provenance: dict[str, dict[str, Any]],
        n_lists: int,
        fusion: str,
    ) -> list[Candidate]:
        out: list[Candidate] = []
        for key, score in survivors:
            collection_id, payload = payloads[key]
            if payload is None:  # deleted since the search ran
                continue
            scores: dict[str, Any] = {"sources": provenance.get(key, {})}
            if n_lists > 1:
                scores["fused"] = score
                scores["fusion"] = fusion
            out.append(
                Candidate(
                    document_id=key.split("\x1f", 1)[1],
                    collection_id=collection_id,
                    score=score,
                    doc=doc_from_payload(payload),
                    scores=scores,
                )
            )
        return out

    @staticmethod
    def _provenance(lists: list[RankedList], keep: set[str]) -> dict[str, dict[str, Any]]:
        """Each kept hit's raw score, rank and weight in every list that found it."""
        out: dict[str, dict[str, Any]] = {}
        for lst in lists:
            for rank, (key, raw) in enumerate(lst.hits, start=1):
                if key in keep:
                    out.setdefault(key, {})[lst.name] = {
                        "raw": raw,
                        "rank": rank,
                        "weight": lst.weight,
                    }
        return out

    @staticmethod
    def _fetch_payloads(ctx: StageContext, keys: list[str], payloads: extras.Payloads) -> None:
        wanted: dict[str, list[str]] = {}
        for key in keys:
            collection_id, payload = payloads[key]
            if payload is None:
                wanted.setdefault(collection_id, []).append(key.split("\x1f", 1)[1])
        for collection_id, ids in wanted.items():
            for doc_id, payload in ctx.stores.index.payloads(collection_id, ids).items():
                payloads[f"{collection_id}\x1f{doc_id}"] = (collection_id, payload)


def _timed_out(col: CollectionRecord, hard_timeout_ms: int | None) -> dict[str, Any]:
    return {
        "resource": "collection",
        "id": col.collection_id,
        "reason": f"feature_search passed its hard_timeout_ms ({hard_timeout_ms} ms) before "
        f"searching collection '{col.collection_name}'",
        "next_step": "raise the stage's hard_timeout_ms, or narrow the search",
    }
