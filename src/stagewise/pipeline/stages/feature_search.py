"""feature_search: dense, BM25 and hybrid search with fusion, pre-filters, facets, group_by."""

from __future__ import annotations

import random
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from stagewise.domain.records import CollectionRecord, VectorIndexSpec
from stagewise.errors import StageFailed, ValidationFailed
from stagewise.pipeline.candidates import doc_from_payload
from stagewise.pipeline.fusion import RRF_K, RankedList, fuse
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)
from stagewise.storage.protocols import ScoredHit, SearchRequest

CREDITS_PER_SEARCH = 1.0
CREDITS_PER_EMBEDDING = 1.0
CREDITS_PER_HIT = 0.001


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class DocumentRef(_Model):
    collection_id: str
    document_id: str


class SearchQuery(_Model):
    input_mode: Literal["text", "vector", "document", "content", "multi_content"] = "text"
    value: Any = None
    text: str | None = None
    embedding_task: str | None = None
    document_ref: DocumentRef | None = None
    values: list[str] | None = None


class FeatureSearchConfig(_Model):
    feature_uri: str
    query: SearchQuery | str | None = None
    top_k: int = Field(default=100, ge=1, le=5000)
    min_score: float | None = Field(default=None, ge=0, le=1)
    weight: float = Field(default=1.0, ge=0, le=1)
    lexical: bool = False
    optional: bool = False
    on_empty: Literal["error", "skip", "random"] = "error"
    collection_identifiers: list[str] | None = None
    query_preprocessing: dict[str, Any] | None = None


class FacetConfig(_Model):
    key: str
    limit: int = Field(default=10, ge=1, le=1000)
    exact: bool = False


class GroupByConfig(_Model):
    field: str
    max_per_group: int = Field(default=1, ge=1)
    limit: int = Field(default=25, ge=1)
    output_mode: Literal["all", "first", "flatten"] = "all"


class FeatureSearchParams(StageParams):
    model_config = ConfigDict(extra="allow")
    searches: list[FeatureSearchConfig] = Field(default_factory=list, max_length=10)
    final_top_k: int = Field(default=25, ge=1, le=5000)
    fusion: Literal["rrf", "dbsf", "weighted", "max"] = "rrf"
    collection_identifiers: list[str] | None = None
    facets: list[FacetConfig] | None = None
    group_by: GroupByConfig | None = None
    auto_preprocess: bool = True
    hard_timeout_ms: int | None = None
    cache_behavior: Literal["auto", "disabled", "aggressive"] = "auto"
    cache_ttl_seconds: int | None = None


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
        flt: dict[str, Any] | None,
        embed_cache: dict[str, list[float]],
    ) -> SearchRequest | None:
        spec = _spec(col, search)
        if spec is None:
            raise StageFailed(
                f"feature_search: '{search.feature_uri}' is not in collection "
                f"'{col.collection_name}'"
            )
        mode, value = _query_value(search)
        if value is None or value == "" or value == []:
            return None
        if search.lexical:
            return SearchRequest(
                limit=search.top_k,
                text=str(value),
                filter=flt,
                score_threshold=search.min_score,
                with_payload=False,
            )
        if mode == "text":
            text = str(value)
            if text not in embed_cache:
                ctx.budget.charge(CREDITS_PER_EMBEDDING)
                embed_cache[text] = ctx.stores.embedder.embed([text])[0].tolist()
            vector = embed_cache[text]
        elif mode == "vector":
            vector = [float(v) for v in value]
            if len(vector) != spec.dimensions:
                raise ValidationFailed(
                    f"query vector has {len(vector)} dimensions; '{spec.feature_uri}' expects "
                    f"{spec.dimensions}",
                    code="vector_dimension_mismatch",
                )
        else:
            ref: DocumentRef = value
            ref_col = ctx.collection(ref.collection_id)
            doc = (
                ctx.stores.metadata.get_document(ref_col.collection_id, ref.document_id)
                if ref_col
                else None
            )
            if doc is None or spec.name not in doc.vectors:
                raise StageFailed(
                    f"feature_search: document '{ref.document_id}' has no "
                    f"'{spec.feature_uri}' vector"
                )
            vector = doc.vectors[spec.name]
        return SearchRequest(
            limit=search.top_k,
            vector_name=spec.name,
            vector=vector,
            filter=flt,
            score_threshold=search.min_score,
            with_payload=False,
        )

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: FeatureSearchParams = self.params  # type: ignore[assignment]
        flt = ctx.stage_filter
        if not p.searches:
            return self._filter_only(ctx, flt)
        lists: list[RankedList] = []
        # key -> (collection_id, payload); searches return ids only, and the payloads of the
        # fused survivors are fetched once at the end (most hits of a hybrid search are cut).
        payloads: dict[str, tuple[str, dict[str, Any] | None]] = {}
        embed_cache: dict[str, list[float]] = {}
        skipped: list[int] = []
        # Plan every (search, collection) request first, so each collection answers all of
        # its searches in one engine call.
        planned: list[list[tuple[str, SearchRequest]]] = []
        by_collection: dict[str, list[SearchRequest]] = {}
        for search in p.searches:
            ctx.budget.charge(CREDITS_PER_SEARCH)
            pairs: list[tuple[str, SearchRequest]] = []
            for col in self._targets(ctx, search):
                request = self._request(ctx, search, col, flt, embed_cache)
                if request is not None:
                    pairs.append((col.collection_id, request))
                    by_collection.setdefault(col.collection_id, []).append(request)
            planned.append(pairs)
        answers: dict[int, list[ScoredHit]] = {}
        for collection_id, batch in by_collection.items():
            ctx.budget.check()
            for req, hits in zip(batch, ctx.stores.index.search(collection_id, batch), strict=True):
                answers[id(req)] = hits
        for i, (search, pairs) in enumerate(zip(p.searches, planned, strict=True)):
            merged: list[tuple[str, float]] = []
            for collection_id, request in pairs:
                for h in answers[id(request)]:
                    key = f"{collection_id}\x1f{h.document_id}"
                    payloads.setdefault(key, (collection_id, None))
                    merged.append((key, h.score))
            if not pairs:
                if search.on_empty == "skip" or search.optional:
                    skipped.append(i)
                    continue
                if search.on_empty == "random":
                    merged = self._random(ctx, search, flt, payloads)
                else:
                    raise StageFailed(
                        f"feature_search: searches[{i}] has an empty query "
                        "(set on_empty to 'skip' to ignore it)"
                    )
            merged.sort(key=lambda kv: (-kv[1], kv[0]))
            name = f"{'bm25' if search.lexical else 'dense'}:{search.feature_uri}"
            if any(lst.name == name for lst in lists):
                name = f"{name}#{i}"
            lists.append(RankedList(name, merged[: search.top_k], search.weight))
        ctx.budget.charge(CREDITS_PER_HIT * sum(len(lst.hits) for lst in lists))
        fused = list(lists[0].hits) if len(lists) == 1 else fuse(lists, p.fusion, RRF_K)
        survivors = fused[: p.final_top_k]
        provenance = self._provenance(lists, {key for key, _ in survivors})
        self._fetch_payloads(ctx, [key for key, _ in survivors], payloads)
        out: list[Candidate] = []
        for key, score in survivors:
            collection_id, payload = payloads[key]
            if payload is None:  # deleted since the search ran
                continue
            scores: dict[str, Any] = {"sources": provenance.get(key, {})}
            if len(lists) > 1:
                scores["fused"] = score
                scores["fusion"] = p.fusion
            out.append(
                Candidate(
                    document_id=key.split("\x1f", 1)[1],
                    collection_id=collection_id,
                    score=score,
                    doc=doc_from_payload(payload),
                    scores=scores,
                )
            )
        metadata: dict[str, Any] = {
            "searches": [
                {"name": lst.name, "hits": len(lst.hits), "weight": lst.weight} for lst in lists
            ],
            "fusion": p.fusion if len(lists) > 1 else None,
            "skipped_searches": skipped,
            "filter_pushed_down": flt is not None,
        }
        if p.group_by is not None:
            out = self._group(out, p.group_by)
            metadata["group_by"] = p.group_by.field
        result = StageResult(out, metadata=metadata)
        if p.facets:
            result.facets = self._facets(ctx, p.facets, flt)
            metadata["facets"] = result.facets
        return result

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
    def _fetch_payloads(
        ctx: StageContext, keys: list[str], payloads: dict[str, tuple[str, dict[str, Any] | None]]
    ) -> None:
        wanted: dict[str, list[str]] = {}
        for key in keys:
            collection_id, payload = payloads[key]
            if payload is None:
                wanted.setdefault(collection_id, []).append(key.split("\x1f", 1)[1])
        for collection_id, ids in wanted.items():
            for doc_id, payload in ctx.stores.index.payloads(collection_id, ids).items():
                payloads[f"{collection_id}\x1f{doc_id}"] = (collection_id, payload)

    def _random(
        self,
        ctx: StageContext,
        search: FeatureSearchConfig,
        flt: dict[str, Any] | None,
        payloads: dict[str, tuple[str, dict[str, Any] | None]],
    ) -> list[tuple[str, float]]:
        pool: list[tuple[str, float]] = []
        for col in self._targets(ctx, search):
            for h in ctx.stores.index.scroll(col.collection_id, flt, 10_000):
                key = f"{col.collection_id}\x1f{h.document_id}"
                payloads[key] = (col.collection_id, h.payload)
                pool.append((key, 0.0))
        rng = random.Random()
        return rng.sample(pool, min(search.top_k, len(pool)))

    def _filter_only(self, ctx: StageContext, flt: dict[str, Any] | None) -> StageResult:
        p: FeatureSearchParams = self.params  # type: ignore[assignment]
        out: list[Candidate] = []
        for col in ctx.collections:
            for h in ctx.stores.index.scroll(col.collection_id, flt, p.final_top_k - len(out)):
                out.append(
                    Candidate(h.document_id, col.collection_id, 0.0, doc_from_payload(h.payload))
                )
            if len(out) >= p.final_top_k:
                break
        return StageResult(out, metadata={"mode": "filter_only"})

    @staticmethod
    def _group(cands: list[Candidate], cfg: GroupByConfig) -> list[Candidate]:
        from stagewise.pipeline.docpath import get_field

        groups: dict[str, list[Candidate]] = {}
        for c in cands:
            key = repr(get_field(c, cfg.field))
            groups.setdefault(key, [])
            if len(groups[key]) < cfg.max_per_group:
                groups[key].append(c)
        kept = list(groups.values())[: cfg.limit]
        if cfg.output_mode == "first":
            return [g[0] for g in kept]
        out = []
        for g in kept:
            for rank, c in enumerate(g, start=1):
                if cfg.output_mode == "all":
                    c.doc["_group"] = {
                        "key": get_field(c, cfg.field),
                        "size": len(g),
                        "rank_in_group": rank,
                    }
                out.append(c)
        return out

    @staticmethod
    def _facets(
        ctx: StageContext, facets: list[FacetConfig], flt: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        out = []
        for facet in facets:
            counts: dict[Any, int] = {}
            for col in ctx.collections:
                ctx.stores.index.ensure_payload_index(col.collection_id, facet.key, "keyword")
                for value, count in ctx.stores.index.facet(
                    col.collection_id, facet.key, facet.limit, flt
                ):
                    counts[value] = counts.get(value, 0) + count
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[: facet.limit]
            out.append({"key": facet.key, "values": [{"value": v, "count": n} for v, n in ranked]})
        return out
