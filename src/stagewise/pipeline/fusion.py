"""Fusing ranked lists: rrf, dbsf, weighted, max. Pure functions; ties by document id."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

FusionMethod = Literal["rrf", "dbsf", "weighted", "max"]
RRF_K = 60


@dataclass(frozen=True)
class RankedList:
    """One source's hits, best first: (key, raw score)."""

    name: str
    hits: Sequence[tuple[str, float]]
    weight: float = 1.0


def rrf(lists: Sequence[RankedList], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal rank fusion: sum of weight / (k + rank), ranks from 1."""
    fused: dict[str, float] = {}
    for lst in lists:
        for rank, (key, _) in enumerate(lst.hits, start=1):
            fused[key] = fused.get(key, 0.0) + lst.weight / (k + rank)
    return fused


def _dbsf_normalise(scores: Sequence[float]) -> list[float]:
    """Qdrant's definition: sample standard deviation; a single hit scores 0.5."""
    n = len(scores)
    if n < 2:
        return [0.5] * n
    mean = sum(scores) / n
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1))
    low, high = mean - 3 * std, mean + 3 * std
    if high == low:
        return [0.5] * n
    return [(s - low) / (high - low) for s in scores]


def dbsf(lists: Sequence[RankedList]) -> dict[str, float]:
    """Distribution-based score fusion: each list scaled so mean +/- 3 sd maps to [0, 1], summed."""
    fused: dict[str, float] = {}
    for lst in lists:
        normalised = _dbsf_normalise([s for _, s in lst.hits])
        for (key, _), norm in zip(lst.hits, normalised, strict=True):
            fused[key] = fused.get(key, 0.0) + lst.weight * norm
    return fused


def weighted(lists: Sequence[RankedList]) -> dict[str, float]:
    """Raw scores times weights, summed (the sources must share one score scale)."""
    fused: dict[str, float] = {}
    for lst in lists:
        for key, score in lst.hits:
            fused[key] = fused.get(key, 0.0) + lst.weight * score
    return fused


def best(lists: Sequence[RankedList]) -> dict[str, float]:
    """The best weighted raw score any source gave."""
    fused: dict[str, float] = {}
    for lst in lists:
        for key, score in lst.hits:
            value = lst.weight * score
            if key not in fused or value > fused[key]:
                fused[key] = value
    return fused


def fuse(
    lists: Sequence[RankedList], method: FusionMethod, k: int = RRF_K
) -> list[tuple[str, float]]:
    """Fused (key, score), best first, ties broken by key ascending."""
    if method == "rrf":
        scores = rrf(lists, k)
    elif method == "dbsf":
        scores = dbsf(lists)
    elif method == "weighted":
        scores = weighted(lists)
    elif method == "max":
        scores = best(lists)
    else:  # pragma: no cover - guarded by the Params model
        raise ValueError(f"unknown fusion {method}")
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def fuse_sources(
    lists: Sequence[RankedList], method: FusionMethod, k: int = RRF_K
) -> list[tuple[str, float]]:
    """What feature_search ranks: one list as it is (raw scores), several fused."""
    if not lists:
        return []
    if len(lists) == 1:
        return list(lists[0].hits)
    return fuse(lists, method, k)
