"""Stateless scoring (POST /v1/evaluations/score): precision, recall, F1 and F2 of predicted
terms or ids against a ground truth, each a set, per item and macro-averaged over the items.
The metrics are eval_metrics.py's set scores; nothing is read or stored."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stagewise.errors import ValidationFailed
from stagewise.eval_metrics import dedupe, f_beta, mean, set_precision, set_recall

# Both the name and its meaning are the SDK's (ScorePredictionsRequest.metrics).
METRICS: dict[str, Callable[[float, float], float]] = {
    "precision": lambda p, r: p,
    "recall": lambda p, r: r,
    "f1": lambda p, r: f_beta(p, r, 1.0),
    "f2": lambda p, r: f_beta(p, r, 2.0),
}
# Each item is an entry of per_item in the answer: the bound keeps that answer sized.
MAX_ITEMS = 10_000


@dataclass(frozen=True)
class Pair:
    predicted: Sequence[str] | None
    ground_truth: Sequence[str] | None


def _refuse(message: str, code: str, field: str, **details: Any) -> ValidationFailed:
    return ValidationFailed(message, code=code, field=field, **details)


def resolve_metrics(requested: Sequence[str] | None) -> list[str]:
    """The request's metrics in its order (a repeat counts once); all four when none is sent."""
    if requested is None:
        return list(METRICS)
    if not requested:
        raise _refuse("metrics is empty", "invalid_metric", "metrics", allowed=list(METRICS))
    for name in requested:
        if name not in METRICS:
            raise _refuse(
                f"Unknown metric '{name}'; allowed: {', '.join(METRICS)}",
                "invalid_metric",
                "metrics",
                metric=name,
                allowed=list(METRICS),
            )
    return dedupe(requested)


def resolve_pairs(single: Pair, items: Sequence[Pair] | None) -> list[tuple[str, Pair]]:
    """Exactly one form: the single pair or the `items` batch. Each item names its field."""
    has_single = single.predicted is not None or single.ground_truth is not None
    if has_single and items is not None:
        raise _refuse(
            "Send either predicted + ground_truth or items, not both",
            "invalid_score_request",
            "items",
        )
    if items is not None:
        if not items:
            raise _refuse("items is empty", "invalid_score_request", "items")
        if len(items) > MAX_ITEMS:
            raise _refuse(
                f"items holds {len(items)} pairs; at most {MAX_ITEMS}",
                "too_many_items",
                "items",
                max_items=MAX_ITEMS,
            )
        return [(f"items[{i}]", pair) for i, pair in enumerate(items)]
    if not has_single:
        raise _refuse(
            "Send predicted + ground_truth, or items", "invalid_score_request", "predicted"
        )
    return [("", single)]


def _score_pair(where: str, pair: Pair, k: int | None) -> tuple[float, float]:
    prefix = f"{where}." if where else ""
    predicted_all, truth = pair.predicted, pair.ground_truth
    if predicted_all is None or truth is None:
        name = "predicted" if predicted_all is None else "ground_truth"
        raise _refuse(
            f"{prefix}{name} is missing: a pair needs both predicted and ground_truth",
            "invalid_score_request",
            prefix + name,
        )
    # Sets: a repeat counts at its first place, so the cutoff keeps k distinct predictions.
    predicted = dedupe(predicted_all)[:k]
    recall = set_recall(predicted, truth)
    if recall is None:
        raise _refuse(
            f"{prefix}ground_truth is empty: recall is undefined",
            "empty_ground_truth",
            prefix + "ground_truth",
        )
    return set_precision(predicted, truth), recall


def score(
    single: Pair, items: Sequence[Pair] | None, metrics: Sequence[str] | None, k: int | None
) -> dict[str, Any]:
    """The ScorePredictionsResponse body. Every item is checked before any is scored."""
    names = resolve_metrics(metrics)
    scored = [_score_pair(where, pair, k) for where, pair in resolve_pairs(single, items)]
    per_item = [{m: METRICS[m](p, r) for m in names} for p, r in scored]
    return {
        "metrics": names,
        "k": k,
        "count": len(per_item),
        "per_item": per_item,
        "aggregate": {m: mean(item[m] for item in per_item) for m in names},
    }
