"""Ranking quality: nDCG@k and Recall@k with their standard definitions (those of trec_eval's
`ndcg_cut` and `recall`, as BEIR reports them), pure functions.

- Graded judgments: a document's gain is its qrels score (linear gain); unjudged or
  non-positive means 0.
- DCG@k = sum over ranks i = 1..k of gain_i / log2(i + 1).
- nDCG@k = DCG@k / IDCG@k, the ideal DCG of the judged gains sorted in decreasing order
  (from the qrels, not from what was retrieved).
- Recall@k = relevant documents in the top k / relevant documents judged.
- A ranking naming a document twice counts its first place only.
- A query with no relevant judgment has neither (None); the means are over the queries that
  have at least one.

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


def ndcg_at_k(ranking: Sequence[str], judged: Mapping[str, float], k: int = 10) -> float | None:
    ideal = dcg(sorted((g for g in judged.values() if g > 0), reverse=True)[:k])
    if ideal <= 0:
        return None
    gains = [max(0.0, judged.get(doc, 0.0)) for doc in dedupe(ranking)[:k]]
    return dcg(gains) / ideal


def recall_at_k(ranking: Sequence[str], judged: Mapping[str, float], k: int = 100) -> float | None:
    relevant = {doc for doc, g in judged.items() if g > 0}
    if not relevant:
        return None
    return len(relevant.intersection(dedupe(ranking)[:k])) / len(relevant)


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
    return [q for q, judged in qrels.items() if any(g > 0 for g in judged.values())]


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
