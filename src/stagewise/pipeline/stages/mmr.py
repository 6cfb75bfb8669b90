"""mmr: Maximal Marginal Relevance, reordering for relevance balanced against diversity.

At each step the stage picks the document maximising

    lambda * relevance(d) - (1 - lambda) * max_{s in selected} similarity(d, s)

where relevance is the `score_field` value min-max normalised to [0, 1] over the input (the
first pick, with nothing selected yet, is the most relevant document). Ties go to the more
relevant document, then to the earlier one upstream.

Similarity comes from one of three modes, chosen in this order (as the Mixpeek API does):

1. `diversity_feature_uri`: one embedding space;
2. `diversity_features`: several spaces, similarities averaged with normalised weights;
3. `diversity_fields`: no embeddings, Jaccard similarity of the documents' field values (a
   scalar is a one-element set, so two scalars are similar iff equal), weighted per field;
4. none set: the first dense feature the previous feature_search ranked by that the
   candidate's collection has, else the collection's first vector index.

Vectors are read from the index per collection with one `vectors()` call each; documents of
different collections are compared only when their vectors come from the same feature URI
with the same dimensions (otherwise their similarity is 0), and a document without a vector
is similar to nothing. The n x n similarity matrix is built once with numpy and the greedy
selection is O(k * n) vector operations.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stagewise.domain.records import CollectionRecord, VectorIndexSpec
from stagewise.errors import ValidationFailed
from stagewise.pipeline.docpath import get_field, set_field
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)
from stagewise.pipeline.templating import has_template

Matrix = NDArray[np.float64]
Metric = Literal["cosine", "dot", "euclidean"]
_TIE = 1e-12


class DiversityFeature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feature_uri: str = Field(description="Feature URI of the embedding to diversify over")
    weight: float = Field(default=1.0, ge=0.0, le=1.0, description="Relative weight")


class MMRParams(StageParams):
    lambda_: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        alias="lambda",
        description="Weight of relevance against diversity: 1 = pure relevance, 0 = pure diversity",
    )
    top_k: int = Field(default=25, ge=1, le=500, description="Documents returned")
    diversity_feature_uri: str | None = Field(
        default=None, description="One embedding space for similarity"
    )
    diversity_features: list[DiversityFeature] | None = Field(
        default=None, description="Several embedding spaces, weights normalised to sum to 1"
    )
    diversity_fields: list[str] | None = Field(
        default=None, description="Dot paths compared by value (Jaccard over list values)"
    )
    diversity_field_weights: dict[str, float] | None = Field(
        default=None, description="Weight per diversity field; unlisted fields weigh 1"
    )
    score_field: str = Field(default="score", description="Relevance: this value, min-max scaled")
    mmr_score_field: str = Field(default="scores.mmr", description="Where the MMR score goes")
    similarity_metric: Metric = Field(
        default="cosine", description="cosine, dot, or euclidean (as 1 / (1 + distance))"
    )

    @model_validator(mode="after")
    def _check_weights(self) -> MMRParams:
        if self.diversity_features is not None:
            if not self.diversity_features:
                raise ValueError("diversity_features must not be empty")
            if sum(f.weight for f in self.diversity_features) <= 0:
                raise ValueError("diversity_features weights must not all be 0")
        if self.diversity_field_weights:
            unknown = sorted(set(self.diversity_field_weights) - set(self.diversity_fields or []))
            if unknown:
                raise ValueError(
                    f"diversity_field_weights names fields not in diversity_fields: {unknown}"
                )
            if any(w < 0 for w in self.diversity_field_weights.values()):
                raise ValueError("diversity_field_weights must not be negative")
        if self.diversity_fields is not None:
            if not self.diversity_fields:
                raise ValueError("diversity_fields must not be empty")
            if sum(self.field_weight(f) for f in self.diversity_fields) <= 0:
                raise ValueError("diversity_field_weights must not all be 0")
        return self

    def field_weight(self, path: str) -> float:
        return float((self.diversity_field_weights or {}).get(path, 1.0))

    def mode(self) -> Literal["feature", "features", "fields", "auto"]:
        if self.diversity_feature_uri:
            return "feature"
        if self.diversity_features:
            return "features"
        if self.diversity_fields:
            return "fields"
        return "auto"


# ---------------------------------------------------------------------------------------------
# similarity


def pairwise_similarity(vectors: Matrix, metric: Metric) -> Matrix:
    """Similarity of every row with every row."""
    if metric == "cosine":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        sim: Matrix = unit @ unit.T
        return sim
    gram: Matrix = vectors @ vectors.T
    if metric == "dot":
        return gram
    sq = np.diag(gram)
    dist = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0, None))
    out: Matrix = 1.0 / (1.0 + dist)
    return out


def _value_key(value: Any) -> tuple[str, Any]:
    """Hashable, type-strict identity of a field value ("5" != 5, True != 1, 5 == 5.0)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value)
    return ("j", json.dumps(value, sort_keys=True, default=str))


def field_similarity(values: list[Any]) -> Matrix:
    """Jaccard similarity of the value sets (a missing value is the empty set)."""
    n = len(values)
    vocab: dict[tuple[str, Any], int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for i, value in enumerate(values):
        items = value if isinstance(value, list) else ([] if value is None else [value])
        for item in items:
            if item is None:
                continue
            col = vocab.setdefault(_value_key(item), len(vocab))
            rows.append(i)
            cols.append(col)
    incidence = np.zeros((n, max(len(vocab), 1)), dtype=np.float64)
    incidence[rows, cols] = 1.0
    inter = incidence @ incidence.T
    sizes = incidence.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    sim: Matrix = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return sim


def normalised_relevance(values: list[Any]) -> Matrix:
    """Min-max scaled to [0, 1]; non-numeric or missing values count as the minimum (0)."""
    raw = np.array(
        [
            float(v)
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            else np.nan
            for v in values
        ],
        dtype=np.float64,
    )
    out = np.zeros(len(values), dtype=np.float64)
    finite = ~np.isnan(raw)
    if not finite.any():
        return out
    lo, hi = float(raw[finite].min()), float(raw[finite].max())
    out[finite] = 1.0 if hi == lo else (raw[finite] - lo) / (hi - lo)
    return out


def mmr_select(
    relevance: Matrix, similarity: Matrix, lam: float, k: int, ctx: StageContext | None = None
) -> tuple[list[int], list[float]]:
    """Greedy MMR: indices in selection order and the MMR value each was picked with."""
    n = len(relevance)
    selected = np.zeros(n, dtype=bool)
    redundancy = np.zeros(n, dtype=np.float64)  # max similarity to the selected; 0 at first
    order: list[int] = []
    values: list[float] = []
    for step in range(min(k, n)):
        if ctx is not None:
            ctx.budget.check()
        mmr = lam * relevance - (1.0 - lam) * redundancy
        mmr[selected] = -np.inf
        best = float(mmr.max())
        ties = np.flatnonzero(mmr >= best - _TIE)
        pick = int(ties[int(np.argmax(relevance[ties]))])
        order.append(pick)
        values.append(float(mmr[pick]))
        selected[pick] = True
        row = similarity[pick]
        redundancy = row.copy() if step == 0 else np.maximum(redundancy, row)
    return order, values


def _previous_dense_uris(candidates: list[Candidate]) -> list[str]:
    """Dense feature URIs the previous feature_search ranked by (from score provenance)."""
    seen: dict[str, None] = {}
    for c in candidates[:50]:
        sources = c.scores.get("sources")
        if isinstance(sources, dict):
            for name in sources:
                if isinstance(name, str) and name.startswith("dense:"):
                    seen.setdefault(name[len("dense:") :].split("#", 1)[0], None)
    return list(seen)


@register
class MMR(Stage):
    stage_id: ClassVar[str] = "mmr"
    category: ClassVar[Category] = "sort"
    description: ClassVar[str] = (
        "Maximal Marginal Relevance: reorder for relevance balanced against diversity, over "
        "one or several embedding spaces or over field values"
    )
    icon: ClassVar[str] = "shuffle"
    Params = MMRParams
    credits_per_document: ClassVar[float] = 0.001

    @classmethod
    def validate_for(cls, params: StageParams, collections: list[CollectionRecord]) -> None:
        p: MMRParams = params  # type: ignore[assignment]
        if not collections:
            return
        uris: list[tuple[str, str]] = []
        if p.diversity_feature_uri:
            uris.append(("diversity_feature_uri", p.diversity_feature_uri))
        for i, feat in enumerate(p.diversity_features or []):
            uris.append((f"diversity_features[{i}].feature_uri", feat.feature_uri))
        valid = sorted({s.feature_uri for col in collections for s in col.vector_indexes})
        for where, uri in uris:
            if has_template(uri):
                continue
            if not any(col.vector_index(uri) is not None for col in collections):
                names = [col.collection_name for col in collections]
                raise ValidationFailed(
                    f"mmr {where} '{uri}' does not exist in the target collections {names}. "
                    f"Valid: {valid}",
                    code="unknown_feature_uri",
                    valid_feature_uris=valid,
                )

    # -- vectors -------------------------------------------------------------------------------

    def _vector_similarity(
        self,
        ctx: StageContext,
        candidates: list[Candidate],
        uri: str | None,
        metric: Metric,
        used: dict[str, None],
    ) -> tuple[Matrix, int]:
        """One feature's n x n similarity and how many candidates had no vector for it."""
        n = len(candidates)
        by_collection: dict[str, list[int]] = {}
        for i, c in enumerate(candidates):
            by_collection.setdefault(c.collection_id, []).append(i)
        preferred = _previous_dense_uris(candidates) if uri is None else [uri]
        rows: dict[int, list[float]] = {}
        space_of: dict[int, str] = {}
        for collection_id, members in by_collection.items():
            ctx.budget.check()
            col = ctx.collection(collection_id)
            spec = self._spec(col, preferred, fallback=uri is None)
            if spec is None:
                continue
            used.setdefault(spec.feature_uri, None)
            found = ctx.stores.index.vectors(
                collection_id, [candidates[i].document_id for i in members], spec.name
            )
            for i in members:
                vec = found.get(candidates[i].document_id)
                if vec:
                    rows[i] = vec
                    space_of[i] = f"{spec.feature_uri}\x1f{len(vec)}"
        spaces: dict[str, list[int]] = {}
        for i, key in space_of.items():
            spaces.setdefault(key, []).append(i)
        sim = np.zeros((n, n), dtype=np.float64)
        for members in spaces.values():
            block = np.asarray([rows[i] for i in members], dtype=np.float64)
            idx = np.asarray(members)
            sim[np.ix_(idx, idx)] = pairwise_similarity(block, metric)
        return sim, n - len(rows)

    @staticmethod
    def _spec(
        col: CollectionRecord | None, preferred: list[str], *, fallback: bool
    ) -> VectorIndexSpec | None:
        if col is None:
            return None
        for uri in preferred:
            spec = col.vector_index(uri)
            if spec is not None:
                return spec
        if fallback and col.vector_indexes:
            return col.vector_indexes[0]
        return None

    # -- run -----------------------------------------------------------------------------------

    def similarity(
        self, ctx: StageContext, candidates: list[Candidate]
    ) -> tuple[Matrix, dict[str, Any]]:
        p: MMRParams = self.params  # type: ignore[assignment]
        mode = p.mode()
        n = len(candidates)
        info: dict[str, Any] = {"mode": mode}
        used: dict[str, None] = {}
        if mode == "fields":
            fields = p.diversity_fields or []
            total = sum(p.field_weight(f) for f in fields)
            sim = np.zeros((n, n), dtype=np.float64)
            for path in fields:
                weight = p.field_weight(path) / total
                if weight > 0:
                    sim += weight * field_similarity([get_field(c, path) for c in candidates])
            info["diversity_fields"] = {f: p.field_weight(f) / total for f in fields}
            return sim, info
        features: list[tuple[str | None, float]]
        if mode == "feature":
            features = [(p.diversity_feature_uri, 1.0)]
        elif mode == "features":
            feats = p.diversity_features or []
            total = sum(f.weight for f in feats)
            features = [(f.feature_uri, f.weight / total) for f in feats]
        else:
            features = [(None, 1.0)]
        sim = np.zeros((n, n), dtype=np.float64)
        missing: dict[str, int] = {}
        for uri, weight in features:
            part, absent = self._vector_similarity(ctx, candidates, uri, p.similarity_metric, used)
            if weight > 0:
                sim += weight * part
            missing[uri or "auto"] = absent
        info["feature_uris"] = list(used)
        info["missing_vectors"] = missing
        if any(missing.values()):
            ctx.warnings.append(
                f"mmr: documents without a diversity vector count as similar to nothing: {missing}"
            )
        return sim, info

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: MMRParams = self.params  # type: ignore[assignment]
        if not candidates:
            return StageResult([], metadata={"mode": p.mode(), "lambda": p.lambda_, "selected": 0})
        # The modes are exclusive: a lower-precedence setting given too is ignored, loudly.
        mode = p.mode()
        ignored = []
        if p.diversity_features and mode == "feature":
            ignored.append("diversity_features")
        if p.diversity_fields and mode in ("feature", "features"):
            ignored.append("diversity_fields")
        if ignored:
            ctx.warnings.append(f"mmr: {ignored} ignored; mode '{mode}' takes precedence")
        relevance = normalised_relevance([get_field(c, p.score_field) for c in candidates])
        sim, info = self.similarity(ctx, candidates)
        order, values = mmr_select(relevance, sim, p.lambda_, p.top_k, ctx)
        out: list[Candidate] = []
        for idx, value in zip(order, values, strict=True):
            c = candidates[idx]
            set_field(c, p.mmr_score_field, value)
            out.append(c)
        metadata: dict[str, Any] = {
            **info,
            "lambda": p.lambda_,
            "similarity_metric": p.similarity_metric,
            "score_field": p.score_field,
            "input_count": len(candidates),
            "selected": len(out),
        }
        if ignored:
            metadata["ignored"] = ignored
        return StageResult(out, metadata=metadata)
