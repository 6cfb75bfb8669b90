"""rerank: rescore the leading documents against the query and reorder them.

The Mixpeek default, a BAAI bge-reranker-v2-m3 cross-encoder, has no weights available
offline, so this build scores with what it has and says so (`metadata["scorer"]`, and a
warning naming the requested `inference_name`):

* ``<embedder>-maxsim`` (``minilm-maxsim`` with the server's MiniLM embedder): the document
  text is split into sentence-aligned windows of at most 160 words (about 200 word pieces,
  under the model's 256-piece limit, so no part of the text is silently cut), every window
  and the query are embedded with ``ctx.stores.embedder``, and the score is
  ``0.7 * max + 0.3 * mean`` of the query-window cosine similarities: the best passage
  dominates, and a document that stays on topic throughout beats one that mentions the
  query once.
* ``cross-encoder:<dir>``: when ``STAGEWISE_RERANK_MODEL_DIR`` names a local
  sentence-transformers CrossEncoder directory, its ``predict`` scores (query, text) pairs.

The first `max_candidates` documents are scored; the final `score` becomes the rerank score
(also in ``scores["rerank"]`` and `score_field`), the previous one is kept in
``scores["pre_rerank"]``. Documents past the cap, and scored-range documents without text,
follow unscored in their incoming order. Costs 0.01 credits per (query, document) pair.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from jinja2 import Undefined, UndefinedError
from numpy.typing import NDArray
from pydantic import Field, field_validator, model_validator

from stagewise.embeddings.base import Embedder
from stagewise.errors import StageFailed, ValidationFailed
from stagewise.pipeline.docpath import get_field, set_field
from stagewise.pipeline.embed_cache import CachedStageParams, CacheUse, EmbeddingCache
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageResult,
)
from stagewise.pipeline.templating import has_template, render_value, scope

Scores = NDArray[np.float64]

CREDITS_PER_PAIR = 0.01
MODEL_DIR_ENV = "STAGEWISE_RERANK_MODEL_DIR"
WINDOW_WORDS = 160
MAX_WEIGHT = 0.7  # of the best window; the rest goes to the mean over windows
FALLBACK_TEXT_FIELD = "text"

WINDOW_CACHE_SIZE = 20_000  # window embeddings kept (~60 MB at 384-d float64)
# Window embeddings, reused across queries: the same documents come back often.
WINDOW_CACHE = EmbeddingCache(WINDOW_CACHE_SIZE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


class RerankParams(CachedStageParams):  # its cache: document window embeddings
    inference_name: str | None = Field(
        default="BAAI__bge_reranker_v2_m3",
        description="Requested reranker; recorded beside the scorer actually used",
    )
    feature_uri: str | None = Field(
        default=None, description="Custom reranker plugin (not available; recorded only)"
    )
    query: str | None = Field(default="{{INPUT.query}}", description="Query text (templated)")
    document_field: str = Field(
        default="content", description="Dot path of the text; falls back to `text`"
    )
    top_k: int | None = Field(default=None, ge=1, description="Documents kept; None: all")
    max_candidates: int | None = Field(
        default=10, ge=1, le=1000, description="Leading documents scored; None: all"
    )
    score_field: str = Field(default="scores.rerank", description="Where the score is written")
    batch_size: int = Field(default=32, ge=1, le=100, description="Texts per model call")
    max_document_chars: int = Field(
        default=2000, ge=100, le=50000, description="Document text scored, in characters"
    )
    max_concurrent_batches: int = Field(
        default=3, ge=1, le=10, description="Accepted; batches run one after another here"
    )
    combine: Literal["auto", "replace", "rrf"] = Field(
        default="auto",
        description=(
            "replace: order by the rerank score. rrf: fuse the rerank order with the incoming "
            "order (1/(60+rank) each). auto: replace with a cross-encoder, rrf with the "
            "bi-encoder fallback, which alone only repeats the dense signal"
        ),
    )
    decision_model: str | None = Field(default=None, description="Not implemented: refused")
    relevance_criteria: str | None = Field(default=None, description="Not implemented: refused")
    learning_config: dict[str, Any] | None = Field(
        default=None, description="Not implemented: refused"
    )
    hard_timeout_ms: int | None = Field(
        default=None,
        ge=1,
        description="Once passed (checked between model batches) the stage keeps the "
        "incoming order and the execution lists it as degraded",
    )

    @model_validator(mode="after")
    def _implemented(self) -> RerankParams:
        for name in ("decision_model", "relevance_criteria", "learning_config"):
            if getattr(self, name):
                raise ValueError(f"{name} is not implemented in this build; remove it")
        return self

    @field_validator("query", mode="before")
    @classmethod
    def _number_query(cls, value: Any) -> Any:
        # A whole-template query keeps the native type of the input it renders from.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value


# ---------------------------------------------------------------------------------------------
# text


def chunk_text(text: str, window_words: int = WINDOW_WORDS) -> list[str]:
    """Sentence-aligned windows of at most `window_words` words covering the whole text."""
    chunks: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        words = sentence.split()
        if current and len(current) + len(words) > window_words:
            chunks.append(" ".join(current))
            current = []
        while len(words) > window_words:
            chunks.append(" ".join(words[:window_words]))
            words = words[window_words:]
        current.extend(words)
    if current:
        chunks.append(" ".join(current))
    return chunks


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        parts = [v for v in (_as_text(v) for v in value) if v]
        return "\n".join(parts) if parts else None
    return None


def document_text(c: Candidate, field: str) -> str | None:
    """The text to score: `field`, or `text` when the field is missing or empty."""
    text = _as_text(get_field(c, field))
    if text is None and field != FALLBACK_TEXT_FIELD:
        text = _as_text(get_field(c, FALLBACK_TEXT_FIELD))
    return text


# ---------------------------------------------------------------------------------------------
# scorers


class _PastDeadline(Exception):
    """Raised between model batches once the stage's hard_timeout_ms has passed."""


class Scorer(Protocol):
    name: str

    def score(
        self, query: str, texts: Sequence[str], batch_size: int, check: Callable[[], None]
    ) -> Scores: ...


class MaxSimScorer:
    """Bi-encoder relevance: max and mean of query-window similarities (module doc)."""

    def __init__(self, embedder: Embedder, cache: CacheUse, ttl_s: float | None) -> None:
        self.embedder = embedder
        self.name = f"{embedder.label}-maxsim"
        self.batches = 0
        self.cache = cache
        self.ttl_s = ttl_s

    def _embed(self, texts: list[str]) -> NDArray[np.float64]:
        self.batches += 1
        return np.asarray(self.embedder.embed(texts), dtype=np.float64)

    def _window_vectors(
        self, chunks: list[str], batch_size: int, check: Callable[[], None]
    ) -> NDArray[np.float64]:
        model = (self.name, self.embedder.name, self.embedder.dimensions)
        return WINDOW_CACHE.embed(
            model, chunks, self._embed, self.cache, self.ttl_s, batch_size, check
        )

    def score(
        self, query: str, texts: Sequence[str], batch_size: int, check: Callable[[], None]
    ) -> Scores:
        if not texts:
            return np.zeros(0, dtype=np.float64)
        chunks: list[str] = []
        counts: list[int] = []
        for text in texts:
            pieces = chunk_text(text) or [text]
            chunks.extend(pieces)
            counts.append(len(pieces))
        q = np.asarray(self.embedder.embed([query])[0], dtype=np.float64)
        vectors = self._window_vectors(chunks, batch_size, check)
        sims = vectors @ q
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        best = np.maximum.reduceat(sims, starts)
        mean = np.add.reduceat(sims, starts) / np.asarray(counts, dtype=np.float64)
        out: Scores = MAX_WEIGHT * best + (1.0 - MAX_WEIGHT) * mean
        return out


_CROSS_ENCODERS: dict[str, Any] = {}
_CROSS_LOCK = threading.Lock()


class CrossEncoderScorer:
    """A local sentence-transformers CrossEncoder scoring (query, text) pairs."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.name = f"cross-encoder:{model_dir.name}"
        self.batches = 0

    def _model(self) -> Any:
        key = str(self.model_dir)
        with _CROSS_LOCK:
            if key not in _CROSS_ENCODERS:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                module: Any = importlib.import_module("sentence_transformers")
                try:
                    _CROSS_ENCODERS[key] = module.CrossEncoder(
                        key, device="cpu", local_files_only=True
                    )
                except Exception as exc:
                    raise StageFailed(
                        f"rerank: cannot load the CrossEncoder in {MODEL_DIR_ENV}={key}: {exc}"
                    ) from exc
            return _CROSS_ENCODERS[key]

    def score(
        self, query: str, texts: Sequence[str], batch_size: int, check: Callable[[], None]
    ) -> Scores:
        model = self._model()
        out = np.empty(len(texts), dtype=np.float64)
        for start in range(0, len(texts), batch_size):
            check()
            pairs = [[query, t] for t in texts[start : start + batch_size]]
            predicted = model.predict(
                pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True
            )
            out[start : start + len(pairs)] = np.asarray(predicted, dtype=np.float64).reshape(-1)
            self.batches += 1
        return out


def make_scorer(
    embedder: Embedder, cache: CacheUse, ttl_s: float | None
) -> MaxSimScorer | CrossEncoderScorer:
    model_dir = os.environ.get(MODEL_DIR_ENV, "").strip()
    if not model_dir:
        return MaxSimScorer(embedder, cache, ttl_s)
    path = Path(model_dir)
    if not path.is_dir():
        raise StageFailed(f"rerank: {MODEL_DIR_ENV}={model_dir} is not a directory")
    return CrossEncoderScorer(path)


# ---------------------------------------------------------------------------------------------
# stage


@register
class Rerank(Stage):
    stage_id: ClassVar[str] = "rerank"
    category: ClassVar[Category] = "sort"
    description: ClassVar[str] = (
        "Rescore the leading documents against the query and reorder them (local MiniLM "
        "max-sim scorer, or a local CrossEncoder from STAGEWISE_RERANK_MODEL_DIR)"
    )
    icon: ClassVar[str] = "list-ordered"
    Params = RerankParams
    keeps_cache: ClassVar[bool] = True
    credits_per_document: ClassVar[float] = 0.0  # charged per scored pair instead

    def _query(self, ctx: StageContext) -> str:
        """The rendered query. The runner renders the parameters it was given; the default
        ('{{INPUT.query}}') is not among them, so a template left here is rendered now."""
        p: RerankParams = self.params  # type: ignore[assignment]
        value: Any = p.query
        if isinstance(value, str) and has_template(value):
            try:
                value = render_value(value, scope(inputs=ctx.inputs, context=ctx.context))
                if isinstance(value, Undefined):
                    value = None
            except UndefinedError:
                value = None
        return "" if value is None else str(value).strip()

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: RerankParams = self.params  # type: ignore[assignment]
        query = self._query(ctx)
        if not query:
            raise ValidationFailed(
                "rerank needs a query: set the stage's query parameter or pass inputs.query",
                code="rerank_query_missing",
            )
        head = candidates if p.max_candidates is None else candidates[: p.max_candidates]
        tail = candidates[len(head) :]
        with_text: list[tuple[Candidate, str]] = []
        no_text: list[Candidate] = []
        truncated = 0
        for c in head:
            text = document_text(c, p.document_field)
            if text is None:
                no_text.append(c)
                continue
            if len(text) > p.max_document_chars:
                text = text[: p.max_document_chars]
                truncated += 1
            with_text.append((c, text))
        cache = CacheUse(p.cache_behavior or "auto")
        ttl = None if p.cache_ttl_seconds is None else float(p.cache_ttl_seconds)
        # A misconfigured model fails before charging.
        scorer = make_scorer(ctx.stores.embedder, cache, ttl)
        credits = CREDITS_PER_PAIR * len(with_text)
        ctx.budget.charge(credits)
        deadline = (
            None if p.hard_timeout_ms is None else time.perf_counter() + p.hard_timeout_ms / 1000
        )

        def check() -> None:
            ctx.budget.check()
            if deadline is not None and time.perf_counter() > deadline:
                raise _PastDeadline

        try:
            scores = scorer.score(query, [t for _, t in with_text], p.batch_size, check)
        except _PastDeadline:
            return self._timed_out(ctx, candidates, p, scorer.name, credits)
        combine = p.combine
        if combine == "auto":
            combine = "replace" if isinstance(scorer, CrossEncoderScorer) else "rrf"
        scored: list[Candidate] = []
        for (c, _), value in zip(with_text, scores.tolist(), strict=True):
            c.scores["pre_rerank"] = c.score
            c.scores["rerank"] = value
            set_field(c, p.score_field, value)
            scored.append(c)
        by_rerank = sorted(range(len(scored)), key=lambda i: -scored[i].scores["rerank"])
        rerank_rank = {i: r for r, i in enumerate(by_rerank, start=1)}
        for i, c in enumerate(scored):
            if combine == "rrf":
                c.score = 1 / (60 + i + 1) + 1 / (60 + rerank_rank[i])
                c.scores["rerank_fused"] = c.score
            else:
                c.score = c.scores["rerank"]
        scored.sort(key=lambda c: -c.score)  # stable: equal scores keep the incoming order
        out = scored + no_text + tail
        if p.top_k is not None:
            out = out[: p.top_k]
        if p.inference_name and p.inference_name != scorer.name:
            ctx.warnings.append(
                f"rerank: '{p.inference_name}' is not available in this build; "
                f"scored with '{scorer.name}'"
            )
        if p.feature_uri:
            ctx.warnings.append(
                f"rerank: reranker plugin '{p.feature_uri}' is not available; "
                f"scored with '{scorer.name}'"
            )
        metadata: dict[str, Any] = {
            "inference_name": p.inference_name,
            "feature_uri": p.feature_uri,
            "scorer": scorer.name,
            "combine": combine,
            "scored": len(scored),
            "unscored_past_max_candidates": len(tail),
            "unscored_without_text": len(no_text),
            "truncated_documents": truncated,
            "batches": scorer.batches,
            "credits": credits,
            "cache": cache.report(),
        }
        return StageResult(out, metadata=metadata, stage_cache_hit=cache.served_from_cache)

    @staticmethod
    def _timed_out(
        ctx: StageContext, candidates: list[Candidate], p: RerankParams, scorer: str, credits: float
    ) -> StageResult:
        """Past hard_timeout_ms: the documents keep their incoming order, unreranked."""
        reason = f"rerank passed its hard_timeout_ms ({p.hard_timeout_ms} ms) while scoring"
        ctx.warnings.append(f"{reason}; the documents keep their incoming order")
        out = candidates if p.top_k is None else candidates[: p.top_k]
        degraded = {
            "resource": "stage",
            "id": ctx.stage_name,
            "reason": reason,
            "next_step": "raise hard_timeout_ms or lower max_candidates",
        }
        metadata = {"scorer": scorer, "timed_out": True, "credits": credits}
        return StageResult(out, metadata=metadata, degraded=[degraded])
