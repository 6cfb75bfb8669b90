"""Ranking quality with the standard definitions of trec_eval (the measure each one matches is
named; tests/unit/test_eval_metrics_reference.py checks them against it), pure functions.

- Graded judgments: a document's gain is its qrels score (linear gain); unjudged or
  non-positive means 0.
- DCG@k = sum over ranks i = 1..k of gain_i / log2(i + 1).
- nDCG@k = DCG@k / IDCG@k, the ideal DCG of the judged gains sorted in decreasing order
  (from the qrels, not from what was retrieved).
- Recall@k = relevant documents in the top k / relevant documents judged (`recall.k`).
- Precision@k = relevant documents in the top k / k, k even when the ranking is shorter
  (`P.k`).
- AP = the sum, over the relevant documents retrieved, of the precision at the rank of each,
  / relevant documents judged (`map`); MAP is its mean.
- RR = 1 / the rank of the first relevant document, 0 if none is retrieved (`recip_rank`);
  MRR is its mean.
- Relevant means a gain > 0 (trec_eval's relevance level 1 on integer grades).
- A ranking naming a document twice counts its first place only.
- A query with no relevant judgment has none of them (None); the means are over the queries
  that have at least one. (trec_eval scores such a query 0 and counts it in its means.)
- A run file scores documents: `ranking_from_scores` orders it the way trec_eval does.

Set scores (POST /v1/evaluations/score) treat predictions and ground truth as sets:
precision = |P ∩ T| / |P| (`set_P`, 0 when nothing is predicted), recall = |P ∩ T| / |T|
(`set_recall`), F-beta = (1 + b²)·P·R / (b²·P + R), 0 when both are 0 (trec_eval's `set_F.x`
takes x = b²).

bench/quality.py computes its figures with these same functions."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Qrels = Mapping[str, Mapping[str, float]]  # query id -> document id -> gain


def dedupe(ranking: Iterable[str]) -> list[str]:
    """The ranking with repeated ids removed (the first occurrence counts)."""
    seen: set[str] = set()
    out = []
    for doc in ranking:
        if doc not in seen:
            seen.add(doc)
            out.append(doc)
    return out


def dcg(gains: Iterable[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ranking_from_scores(scores: Mapping[str, float]) -> list[str]:
    """trec_eval's order of a run: score descending, ties by document id descending."""
    return sorted(scores, key=lambda doc: (scores[doc], doc), reverse=True)


def relevant(judged: Mapping[str, float]) -> set[str]:
    return {doc for doc, g in judged.items() if g > 0}


def ndcg_at_k(ranking: Sequence[str], judged: Mapping[str, float], k: int = 10) -> float | None:
    ideal = dcg(sorted((g for g in judged.values() if g > 0), reverse=True)[:k])
    if ideal <= 0:
        return None
    gains = [max(0.0, judged.get(doc, 0.0)) for doc in dedupe(ranking)[:k]]
    return dcg(gains) / ideal


def recall_at_k(ranking: Sequence[str], judged: Mapping[str, float], k: int = 100) -> float | None:
    rel = relevant(judged)
    if not rel:
        return None
    return len(rel.intersection(dedupe(ranking)[:k])) / len(rel)


def precision_at_k(
    ranking: Sequence[str], judged: Mapping[str, float], k: int = 10
) -> float | None:
    rel = relevant(judged)
    if not rel:
        return None
    return len(rel.intersection(dedupe(ranking)[:k])) / k


def average_precision(ranking: Sequence[str], judged: Mapping[str, float]) -> float | None:
    rel = relevant(judged)
    if not rel:
        return None
    hits, total = 0, 0.0
    for rank, doc in enumerate(dedupe(ranking), start=1):
        if doc in rel:
            hits += 1
            total += hits / rank
    return total / len(rel)


def reciprocal_rank(ranking: Sequence[str], judged: Mapping[str, float]) -> float | None:
    rel = relevant(judged)
    if not rel:
        return None
    return next((1 / r for r, doc in enumerate(dedupe(ranking), start=1) if doc in rel), 0.0)


def mean(values: Iterable[float | None]) -> float:
    """The mean over the values that are defined (queries with a relevant judgment); 0 if none."""
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else 0.0


def set_precision(predicted: Iterable[str], truth: Iterable[str]) -> float:
    p = set(predicted)
    return len(p.intersection(truth)) / len(p) if p else 0.0


def set_recall(predicted: Iterable[str], truth: Iterable[str]) -> float | None:
    t = set(truth)
    return len(t.intersection(predicted)) / len(t) if t else None


def f_beta(precision: float, recall: float, beta: float = 1.0) -> float:
    b2 = beta * beta
    denominator = b2 * precision + recall
    return (1 + b2) * precision * recall / denominator if denominator > 0 else 0.0


@dataclass(frozen=True)
class QueryScore:
    query_id: str
    ndcg: float
    recall: float
    returned: int


@dataclass(frozen=True)
class Evaluation:
    queries: list[QueryScore]
    ndcg: float  # mean nDCG@k_ndcg
    recall: float  # mean Recall@k_recall


def judged_queries(qrels: Qrels) -> list[str]:
    """The queries that count: those with at least one relevant judgment."""
    return [q for q, judged in qrels.items() if relevant(judged)]


def evaluate(
    runs: Mapping[str, Sequence[str]], qrels: Qrels, k_ndcg: int = 10, k_recall: int = 100
) -> Evaluation:
    """`runs`: query id -> ranked document ids. A judged query missing from `runs` scores 0."""
    scores = [
        QueryScore(
            q,
            ndcg_at_k(runs.get(q, []), qrels[q], k_ndcg) or 0.0,  # never None: q is judged
            recall_at_k(runs.get(q, []), qrels[q], k_recall) or 0.0,
            len(runs.get(q, [])),
        )
        for q in judged_queries(qrels)
    ]
    n = len(scores)
    return Evaluation(
        scores,
        sum(s.ndcg for s in scores) / n if n else 0.0,
        sum(s.recall for s in scores) / n if n else 0.0,
    )
