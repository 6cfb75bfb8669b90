"""eval_metrics against trec_eval (ir-measures over pytrec-eval-terrier) on seeded random run
files and qrels: graded gains 0-3, tied scores, queries with no relevant judgment, documents
named twice in a ranking, runs shorter than k. Every per-query value and every mean to 1e-6.

The comparison is fed honestly: the reference gets the run file's raw (tied) scores and sorts
them itself, our functions get `ranking_from_scores` of the same scores (so the tie order is
checked too) with repeated documents spliced in after their first place, which a run file
cannot hold and which our functions must ignore."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import ir_measures
import pytest
from ir_measures import AP, RR, P, R, SetF, SetP, SetR, nDCG

from stagewise.eval_metrics import (
    average_precision,
    f_beta,
    judged_queries,
    mean,
    ndcg_at_k,
    precision_at_k,
    ranking_from_scores,
    recall_at_k,
    reciprocal_rank,
    set_precision,
    set_recall,
)

pytestmark = [pytest.mark.unit]

TREC = ir_measures.pytrec_eval  # the trec_eval provider, not whichever ir-measures picks
CUTOFFS = (1, 3, 5, 10, 20)
Metric = Callable[[Sequence[str], dict[str, float]], float | None]
Qrels = dict[str, dict[str, float]]
Run = dict[str, dict[str, float]]


def _metrics() -> dict[Any, Metric]:
    out: dict[Any, Metric] = {AP: average_precision, RR: reciprocal_rank}
    for k in CUTOFFS:
        out[nDCG @ k] = lambda r, j, k=k: ndcg_at_k(r, j, k)
        out[P @ k] = lambda r, j, k=k: precision_at_k(r, j, k)
        out[R @ k] = lambda r, j, k=k: recall_at_k(r, j, k)
    return out


METRICS = _metrics()


def _world(seed: int) -> tuple[Qrels, Run, dict[str, list[str]]]:
    rnd = random.Random(seed)
    # Ids of uneven length, so the descending-id tie order is a string order ("d9" > "d10").
    pool = [f"d{rnd.randrange(1000)}" for _ in range(60)]
    qrels: Qrels = {}
    run: Run = {}
    rankings: dict[str, list[str]] = {}
    for q in range(40):
        qid = f"q{q}"
        judged = rnd.sample(pool, rnd.randint(1, 12))
        # One query in five judges nothing relevant.
        top = 0 if q % 5 == 0 else 3
        qrels[qid] = {doc: float(rnd.randint(0, top)) for doc in judged}
        # Runs from 1 to 25 documents (shorter than k=20 often); few score levels: ties.
        retrieved = rnd.sample(sorted(set(pool)), rnd.randint(1, 25))
        run[qid] = {doc: rnd.choice([0.25, 0.5, 0.75, 1.0, 2.0]) for doc in retrieved}
        ranking = ranking_from_scores(run[qid])
        for _ in range(rnd.randint(0, 3)):  # a document named again further down
            at = rnd.randrange(len(ranking))
            ranking.insert(rnd.randint(at + 1, len(ranking)), ranking[at])
        rankings[qid] = ranking
    return qrels, run, rankings


def _as_int(qrels: Qrels) -> dict[str, dict[str, int]]:
    return {q: {d: int(g) for d, g in judged.items()} for q, judged in qrels.items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_metric_agrees_with_trec_eval_per_query(seed: int) -> None:
    qrels, run, rankings = _world(seed)
    assert any(len(set(r)) < len(r) for r in rankings.values())  # duplicates were made
    assert any(len(set(s.values())) < len(s) for s in run.values())  # and ties
    compared = 0
    for m in TREC.iter_calc(list(METRICS), _as_int(qrels), run):
        ours = METRICS[m.measure](rankings[m.query_id], qrels[m.query_id])
        if ours is None:
            # No relevant judgment: trec_eval scores 0, we leave the query out (docstring).
            assert not judged_queries({m.query_id: qrels[m.query_id]})
            assert m.value == 0
            continue
        assert ours == pytest.approx(m.value, abs=1e-6), (m.query_id, str(m.measure))
        compared += 1
    assert compared == len(judged_queries(qrels)) * len(METRICS)


@pytest.mark.parametrize("seed", [4, 5])
def test_means_agree_with_trec_eval_over_the_judged_queries(seed: int) -> None:
    qrels, run, rankings = _world(seed)
    judged = judged_queries(qrels)
    assert 0 < len(judged) < len(qrels)
    # The reference averages over the queries it is given: the judged ones, as our means do.
    reference = TREC.calc_aggregate(
        list(METRICS), _as_int({q: qrels[q] for q in judged}), {q: run[q] for q in judged}
    )
    for measure, fn in METRICS.items():
        ours = mean(fn(rankings[q], qrels[q]) for q in qrels)  # unjudged ones are None
        assert ours == pytest.approx(reference[measure], abs=1e-6), str(measure)


def test_a_ranking_sorted_like_trec_eval_breaks_ties_by_descending_id() -> None:
    assert ranking_from_scores({"a": 1.0, "b": 1.0, "c": 2.0, "d10": 1.0, "d9": 1.0}) == [
        "c",
        "d9",
        "d10",
        "b",
        "a",
    ]


@pytest.mark.parametrize("seed", [6, 7])
def test_set_scores_agree_with_trec_eval(seed: int) -> None:
    rnd = random.Random(seed)
    vocabulary = [f"t{i}" for i in range(30)]
    truth: dict[str, list[str]] = {}
    predicted: dict[str, list[str]] = {}
    for i in range(50):
        truth[f"i{i}"] = rnd.sample(vocabulary, rnd.randint(1, 8))
        guess = rnd.sample(vocabulary, rnd.randint(1, 10))
        predicted[f"i{i}"] = guess + rnd.sample(guess, rnd.randint(0, len(guess)))  # repeats
    qrels = {i: dict.fromkeys(t, 1) for i, t in truth.items()}
    # A set has no order: any scores do; trec_eval's set_F.x takes x = beta squared.
    run = {i: dict.fromkeys(p, 1.0) for i, p in predicted.items()}
    ours: dict[Any, Callable[[str], float | None]] = {
        SetP: lambda i: set_precision(predicted[i], truth[i]),
        SetR: lambda i: set_recall(predicted[i], truth[i]),
        SetF(beta=1): lambda i: f_beta(
            set_precision(predicted[i], truth[i]), set_recall(predicted[i], truth[i]) or 0.0, 1
        ),
        SetF(beta=4): lambda i: f_beta(
            set_precision(predicted[i], truth[i]), set_recall(predicted[i], truth[i]) or 0.0, 2
        ),
    }
    seen = 0
    for m in TREC.iter_calc(list(ours), qrels, run):
        assert ours[m.measure](m.query_id) == pytest.approx(m.value, abs=1e-6), str(m.measure)
        seen += 1
    assert seen == 50 * len(ours)
