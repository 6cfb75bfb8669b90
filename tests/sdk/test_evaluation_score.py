"""POST /v1/evaluations/score through the SDK's score_predictions_evaluations: its strict
models parse every answer, and the numbers are checked against trec_eval's set measures
(ir-measures over pytrec-eval-terrier), fed the same sets our cutoff keeps."""

from __future__ import annotations

import random
from typing import Any

import ir_measures
import mixpeek
import pytest
from ir_measures import SetF, SetP, SetR
from mixpeek.exceptions import UnauthorizedException, UnprocessableEntityException
from mixpeek.models import ScoreItem, ScorePredictionsRequest, ScorePredictionsResponse

from tests.sdk.conftest import ClientFactory
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.sdk, pytest.mark.store_only]

# Our metric names and trec_eval's: set_F.x takes x = beta squared, so F2 is SetF(beta=4).
REFERENCE = {"precision": SetP, "recall": SetR, "f1": SetF(beta=1), "f2": SetF(beta=4)}


def _api(sdk: ClientFactory, key: str | None = None) -> mixpeek.RetrieverEvaluationsApi:
    return mixpeek.RetrieverEvaluationsApi(sdk(key))


def _batch(seed: int, n: int) -> list[tuple[list[str], list[str]]]:
    """Extraction-style items: templated terms, repeats in the predictions, some misses."""
    rnd = random.Random(seed)
    vocabulary = [f"term-{i}" for i in range(25)]
    out = []
    for _ in range(n):
        truth = rnd.sample(vocabulary, rnd.randint(1, 7))
        guess = rnd.sample(vocabulary, rnd.randint(1, 9))
        predicted = guess + rnd.sample(guess, rnd.randint(0, min(3, len(guess))))
        rnd.shuffle(predicted)  # a repeat may come before the cutoff: it must not use a place
        out.append((predicted, truth))
    return out


def _reference(pairs: list[tuple[list[str], list[str]]], k: int | None) -> dict[str, Any]:
    """trec_eval on the first k distinct predictions of each item (order is the cutoff's
    only business: within the kept set the scores tie and trec_eval's order does not matter)."""
    kept = {f"i{n}": list(dict.fromkeys(p))[:k] for n, (p, _) in enumerate(pairs)}
    qrels = {f"i{n}": dict.fromkeys(t, 1) for n, (_, t) in enumerate(pairs)}
    run = {q: dict.fromkeys(docs, 1.0) for q, docs in kept.items()}
    measures = list(REFERENCE.values())
    per_item: dict[str, dict[Any, float]] = {q: {} for q in qrels}
    for m in ir_measures.pytrec_eval.iter_calc(measures, qrels, run):
        per_item[m.query_id][m.measure] = m.value
    aggregate = ir_measures.pytrec_eval.calc_aggregate(measures, qrels, run)
    return {"per_item": [per_item[f"i{n}"] for n in range(len(pairs))], "aggregate": aggregate}


@pytest.mark.parametrize("k", [None, 1, 3])
def test_a_batch_agrees_with_trec_eval(sdk: ClientFactory, k: int | None) -> None:
    pairs = _batch(seed=11 + (k or 0), n=40)
    request = ScorePredictionsRequest(
        items=[ScoreItem(predicted=p, ground_truth=t) for p, t in pairs], k=k
    )
    got = _api(sdk).score_predictions_evaluations(request)
    assert isinstance(got, ScorePredictionsResponse)
    assert got.metrics == ["precision", "recall", "f1", "f2"] and got.k == k and got.count == 40
    ref = _reference(pairs, k)
    for ours, theirs in zip(got.per_item, ref["per_item"], strict=True):
        for name, measure in REFERENCE.items():
            assert ours[name] == pytest.approx(theirs[measure], abs=1e-6), name
    for name, measure in REFERENCE.items():
        assert got.aggregate[name] == pytest.approx(ref["aggregate"][measure], abs=1e-6), name
    # The same request again: the same answer.
    assert _api(sdk).score_predictions_evaluations(request) == got


def test_the_single_pair_form_keeps_the_metrics_in_request_order(sdk: ClientFactory) -> None:
    predicted, truth = ["cat", "dog", "cat", "emu"], ["cat", "emu", "owl", "yak"]
    got = _api(sdk).score_predictions_evaluations(
        ScorePredictionsRequest(
            predicted=predicted, ground_truth=truth, metrics=["f2", "precision", "f2"]
        )
    )
    assert got.metrics == ["f2", "precision"] and got.count == 1 and got.k is None
    ref = _reference([(predicted, truth)], None)
    assert got.per_item[0] == pytest.approx(
        {"f2": ref["per_item"][0][SetF(beta=4)], "precision": ref["per_item"][0][SetP]}, abs=1e-6
    )
    # 2 of 3 distinct predictions are right, 2 of 4 truths are found.
    assert got.aggregate == pytest.approx(
        {"f2": 5 * (2 / 3) * 0.5 / (4 * (2 / 3) + 0.5), "precision": 2 / 3}
    )


def test_an_empty_prediction_scores_zero(sdk: ClientFactory) -> None:
    got = _api(sdk).score_predictions_evaluations(
        ScorePredictionsRequest(
            items=[
                ScoreItem(predicted=[], ground_truth=["a"]),
                ScoreItem(predicted=["a"], ground_truth=["a"]),
            ]
        )
    )
    assert got.per_item[0] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "f2": 0.0}
    assert got.per_item[1] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "f2": 1.0}
    assert got.aggregate == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "f2": 0.5}


@pytest.mark.parametrize(
    ("request_body", "code", "field"),
    [
        (
            {"predicted": ["a"], "ground_truth": ["a"], "metrics": ["ndcg"]},
            "invalid_metric",
            "metrics",
        ),
        ({"predicted": ["a"], "ground_truth": ["a"], "metrics": []}, "invalid_metric", "metrics"),
        ({"items": []}, "invalid_score_request", "items"),
        ({"items": [{"predicted": [], "ground_truth": ["a"]}] * 10_001}, "too_many_items", "items"),
        ({}, "invalid_score_request", "predicted"),
        ({"predicted": ["a"]}, "invalid_score_request", "ground_truth"),
        (
            {"predicted": ["a"], "ground_truth": ["a"], "items": [{"predicted": ["a"]}]},
            "invalid_score_request",
            "items",
        ),
        (
            {"items": [{"predicted": ["a"], "ground_truth": ["a"]}, {"ground_truth": ["a"]}]},
            "invalid_score_request",
            "items[1].predicted",
        ),
        (
            {"items": [{"predicted": ["a"], "ground_truth": []}]},
            "empty_ground_truth",
            "items[0].ground_truth",
        ),
    ],
)
def test_bad_requests_are_422s_naming_the_field(
    sdk: ClientFactory, request_body: dict[str, Any], code: str, field: str
) -> None:
    request = ScorePredictionsRequest.from_dict(request_body)
    assert request is not None
    with pytest.raises(UnprocessableEntityException) as exc:
        _api(sdk).score_predictions_evaluations(request)
    error = exc.value.data.error
    assert (error.code, error.details["field"]) == (code, field)


@pytest.mark.parametrize(
    "body",
    [
        {"predicted": ["a"], "ground_truth": ["a"], "k": 0},
        {"predicted": ["a"], "ground_truth": ["a"], "k": -3},
        {"predicted": ["a"], "ground_truth": ["a"], "k": "3"},
        {"predicted": ["a"], "ground_truth": ["a"], "k": True},
        {"predicted": ["a"], "ground_truth": ["a"], "k": 2.5},
        {"predicted": [1, 2], "ground_truth": ["a"]},
        {"predicted": "a", "ground_truth": ["a"]},
        {"items": [{"predicted": ["a"], "ground_truth": [None]}]},
        {"items": {"predicted": ["a"], "ground_truth": ["a"]}},
        {"predicted": ["a"], "ground_truth": ["a"], "metrics": "f1"},
    ],
)
def test_what_the_sdk_would_refuse_is_refused_over_http_too(
    server: ServerHandle, body: dict[str, Any]
) -> None:
    with server.client(server.admin_key) as http:
        resp = http.post("/v1/evaluations/score", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["success"] is False and resp.json()["error"]["type"] == "ValidationError"


def test_any_key_may_score_and_no_key_may_not(server: ServerHandle, sdk: ClientFactory) -> None:
    with server.client(server.admin_key) as admin:
        made = admin.post("/v1/keys", json={"read_only": True}).raise_for_status().json()
    request = ScorePredictionsRequest(predicted=["a", "b"], ground_truth=["b"])
    got = _api(sdk, made["key"]).score_predictions_evaluations(request)
    assert got.aggregate["precision"] == 0.5 and got.aggregate["recall"] == 1.0
    with server.client() as anonymous:
        resp = anonymous.post("/v1/evaluations/score", json=request.to_dict())
    assert resp.status_code == 401
    with pytest.raises(UnauthorizedException):
        _api(sdk, "sk_not_a_key").score_predictions_evaluations(request)
