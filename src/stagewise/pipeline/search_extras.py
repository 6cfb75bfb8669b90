"""What feature_search does besides ranking: group_by, facets, the random pool of an empty
query, the filter-only mode, and the report of how each collection applied its filter."""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stagewise.domain.filters import FilterNode, parse_path
from stagewise.pipeline.candidates import doc_from_payload
from stagewise.pipeline.docpath import get_field
from stagewise.pipeline.stage import Candidate, StageContext
from stagewise.storage.protocols import SearchAnswer

Payloads = dict[str, tuple[str, dict[str, Any] | None]]  # key -> (collection_id, payload)
RANDOM_POOL = 10_000


class FacetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    limit: int = Field(default=10, ge=1, le=1000)
    exact: bool = False

    @field_validator("key")
    @classmethod
    def _a_field_path(cls, key: str) -> str:
        # Checked once rendered: a templated key is validated when the run renders it.
        if parse_path(key) is None:
            raise ValueError(f"facet key '{key}' is not a field path such as 'metadata.color'")
        return key


class GroupByConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    field: str
    max_per_group: int = Field(default=1, ge=1)
    limit: int = Field(default=25, ge=1)
    output_mode: Literal["all", "first", "flatten"] = "all"


def group(cands: list[Candidate], cfg: GroupByConfig) -> list[Candidate]:
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


def facets(
    ctx: StageContext, configs: list[FacetConfig], flt: FilterNode | None
) -> list[dict[str, Any]]:
    """Value counts over the stage's collections under its filter. A read never creates a
    payload index: facet keys are indexed when the retriever is created, and an unindexed
    key is counted by a bounded scan whose entry says it is not exact."""
    out = []
    for facet in configs:
        counts: dict[Any, int] = {}
        exact = True
        scanned = 0
        for col in ctx.collections:
            answer = ctx.stores.index.facet(col.collection_id, facet.key, facet.limit, flt)
            exact = exact and answer.exact
            scanned += answer.scanned or 0
            for value, count in answer.values:
                counts[value] = counts.get(value, 0) + count
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[: facet.limit]
        entry: dict[str, Any] = {
            "key": facet.key,
            "values": [{"value": v, "count": n} for v, n in ranked],
            "exact": exact,
        }
        if scanned:
            entry["scanned_points"] = scanned  # counted by a scan: the key has no index
        out.append(entry)
    return out


def random_pool(
    ctx: StageContext,
    collection_ids: list[str],
    flt: FilterNode | None,
    top_k: int,
    payloads: Payloads,
) -> list[tuple[str, float]]:
    """An empty query with on_empty='random': a random sample of the filtered documents."""
    pool: list[tuple[str, float]] = []
    for collection_id in collection_ids:
        for h in ctx.stores.index.scroll(collection_id, flt, RANDOM_POOL):
            key = f"{collection_id}\x1f{h.document_id}"
            payloads[key] = (collection_id, h.payload)
            pool.append((key, 0.0))
    return random.Random().sample(pool, min(top_k, len(pool)))


def filter_only(ctx: StageContext, flt: FilterNode | None, limit: int) -> list[Candidate]:
    """No searches: the first `limit` documents matching the filter, unscored."""
    out: list[Candidate] = []
    for col in ctx.collections:
        for h in ctx.stores.index.scroll(col.collection_id, flt, limit - len(out)):
            out.append(
                Candidate(h.document_id, col.collection_id, 0.0, doc_from_payload(h.payload))
            )
        if len(out) >= limit:
            break
    return out


def filter_report(answers: dict[str, list[SearchAnswer]]) -> dict[str, Any]:
    """How each collection's searches applied the filter, and the fields that forced an
    exact scan because they have no payload index (see SearchAnswer)."""
    paths: dict[str, list[str]] = {}
    unindexed: set[str] = set()
    for collection_id, batch in answers.items():
        for answer in batch:
            if answer.filter_path is not None:
                kinds = paths.setdefault(collection_id, [])
                if answer.filter_path not in kinds:
                    kinds.append(answer.filter_path)
            unindexed.update(answer.unindexed_fields)
    return {"paths": paths, "unindexed_fields": sorted(unindexed)}
