"""Fusion tuned from judged queries (issue 15 item 6), pure.

Input: per query, the ranked list each source of a hybrid feature_search returned (document
id and raw score, best first, at least as deep as the largest top_k searched) and the qrels.
`tune` splits the judged queries half and half (seeded, by query id), scores every grid point
on the tune half with nDCG@10 and reports the pick and the baseline (rrf k=60 at the
retriever's own top_k) on both halves. Fusing goes through `fusion.fuse_sources`, the call the
feature_search stage makes, so what is tuned is what runs.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from stagewise.eval_metrics import (
    Qrels,
    average_precision,
    judged_queries,
    mean,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
)
from stagewise.pipeline.fusion import RRF_K, FusionMethod, RankedList, fuse_sources

Hits = Sequence[tuple[str, float]]  # (document id, raw score), best first
SourceLists = Mapping[str, Mapping[str, Hits]]  # query id -> source name -> hits

RRF_KS = (10, 20, 40, 60, 100)
TOP_KS = (25, 50, 100, 200)
WEIGHT_STEPS = (0.25, 0.5, 0.75)
FINAL_TOP_K = 100  # the depth scored (Recall@100)


@dataclass(frozen=True)
class FusionConfig:
    """One grid point: the fusion, its rrf k, and per source (in source order) weight, top_k."""

    method: FusionMethod
    weights: tuple[float, ...]
    top_ks: tuple[int, ...]
    k: int = RRF_K

    def describe(self, sources: Sequence[str]) -> str:
        name = f"rrf k={self.k}" if self.method == "rrf" else self.method
        parts = [
            f"{s} w={w:g} top_k={t}"
            for s, w, t in zip(sources, self.weights, self.top_ks, strict=True)
        ]
        return f"{name} ({', '.join(parts)})"


@dataclass(frozen=True)
class Scores:
    ndcg: float  # mean nDCG@10, the objective
    recall: float  # mean Recall@100
    map: float
    mrr: float
    queries: int


@dataclass(frozen=True)
class TuneResult:
    sources: tuple[str, ...]
    baseline: FusionConfig
    pick: FusionConfig
    tune_queries: tuple[str, ...]
    test_queries: tuple[str, ...]
    baseline_tune: Scores
    baseline_test: Scores
    pick_tune: Scores
    pick_test: Scores
    searched: int  # grid points scored
    top: list[tuple[FusionConfig, float]] = field(default_factory=list)  # best on the tune half

    @property
    def test_gain(self) -> float:
        return self.pick_test.ndcg - self.baseline_test.ndcg


def split_queries(
    query_ids: Sequence[str], seed: int = 0, tune_share: float = 0.5
) -> tuple[list[str], list[str]]:
    """(tune, test): ordered by a seeded hash of the id, so the split ignores input order."""
    ordered = sorted(
        set(query_ids),
        key=lambda q: (hashlib.sha256(f"{seed}:{q}".encode()).hexdigest(), q),
    )
    cut = round(len(ordered) * tune_share)
    return sorted(ordered[:cut]), sorted(ordered[cut:])


def baseline_config(n_sources: int, top_k: int) -> FusionConfig:
    """What a hybrid retriever runs by default: rrf k=60, equal weights, its own top_k."""
    return FusionConfig("rrf", (1.0,) * n_sources, (top_k,) * n_sources, RRF_K)


def weight_grid(n_sources: int, steps: Sequence[float] = WEIGHT_STEPS) -> list[tuple[float, ...]]:
    """Equal weights, then each source alone turned down by each step (weights are <= 1)."""
    out = [(1.0,) * n_sources]
    for i, w in itertools.product(range(n_sources), steps):
        out.append(tuple(w if j == i else 1.0 for j in range(n_sources)))
    return out


def grid(
    n_sources: int,
    rrf_ks: Sequence[int] = RRF_KS,
    top_ks: Sequence[int] = TOP_KS,
    weight_steps: Sequence[float] = WEIGHT_STEPS,
) -> list[FusionConfig]:
    """rrf (each k), dbsf and weighted, each over the weight grid and per-source top_k."""
    configs: list[FusionConfig] = []
    for depth in itertools.product(top_ks, repeat=n_sources):
        for weights in weight_grid(n_sources, weight_steps):
            configs.extend(FusionConfig("rrf", weights, depth, k) for k in rrf_ks)
            configs.append(FusionConfig("dbsf", weights, depth))
            configs.append(FusionConfig("weighted", weights, depth))
    return configs


def fuse_query(
    lists: Mapping[str, Hits], sources: Sequence[str], config: FusionConfig
) -> list[tuple[str, float]]:
    """One query's ranking under `config`, as feature_search ranks it."""
    ranked = [
        RankedList(name, list(lists.get(name, ()))[:top_k], weight)
        for name, weight, top_k in zip(sources, config.weights, config.top_ks, strict=True)
    ]
    return fuse_sources(ranked, config.method, config.k)


def score(
    runs: SourceLists,
    qrels: Qrels,
    queries: Sequence[str],
    sources: Sequence[str],
    config: FusionConfig,
    final_top_k: int = FINAL_TOP_K,
    full: bool = True,
) -> Scores:
    """Means over `queries` (a query with no lists scores 0); `full=False` computes nDCG only."""
    ndcg, recall, ap, rr = [], [], [], []
    for q in queries:
        ranking = [doc for doc, _ in fuse_query(runs.get(q, {}), sources, config)][:final_top_k]
        ndcg.append(ndcg_at_k(ranking, qrels[q], 10))
        if full:
            recall.append(recall_at_k(ranking, qrels[q], 100))
            ap.append(average_precision(ranking, qrels[q]))
            rr.append(reciprocal_rank(ranking, qrels[q]))
    return Scores(mean(ndcg), mean(recall), mean(ap), mean(rr), len(queries))


def tune(
    runs: SourceLists,
    qrels: Qrels,
    sources: Sequence[str],
    *,
    default_top_k: int = 100,
    configs: Sequence[FusionConfig] | None = None,
    seed: int = 0,
    final_top_k: int = FINAL_TOP_K,
) -> TuneResult:
    """Pick the best grid point by nDCG@10 on the tune half; the baseline unless strictly better."""
    if len(sources) < 2:
        raise ValueError("fusion tuning needs at least two sources")
    judged = [q for q in judged_queries(qrels)]
    tune_q, test_q = split_queries(judged, seed)
    if not tune_q or not test_q:
        raise ValueError("fusion tuning needs at least two judged queries")
    baseline = baseline_config(len(sources), default_top_k)
    candidates = list(configs) if configs is not None else grid(len(sources))
    base_ndcg = score(runs, qrels, tune_q, sources, baseline, final_top_k, full=False).ndcg
    scored: list[tuple[FusionConfig, float]] = [(baseline, base_ndcg)]
    pick, best = baseline, base_ndcg
    for config in candidates:
        if config == baseline:
            continue
        value = score(runs, qrels, tune_q, sources, config, final_top_k, full=False).ndcg
        scored.append((config, value))
        if value > best:  # strict: an equal score never displaces the baseline or an earlier one
            pick, best = config, value
    top = sorted(scored, key=lambda cv: -cv[1])[:10]  # stable: grid order among ties
    return TuneResult(
        sources=tuple(sources),
        baseline=baseline,
        pick=pick,
        tune_queries=tuple(tune_q),
        test_queries=tuple(test_q),
        baseline_tune=score(runs, qrels, tune_q, sources, baseline, final_top_k),
        baseline_test=score(runs, qrels, test_q, sources, baseline, final_top_k),
        pick_tune=score(runs, qrels, tune_q, sources, pick, final_top_k),
        pick_test=score(runs, qrels, test_q, sources, pick, final_top_k),
        searched=len(scored),
        top=top,
    )
