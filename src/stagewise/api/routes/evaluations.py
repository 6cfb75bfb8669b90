"""Stateless scoring of precomputed predictions (the SDK's score_predictions_evaluations)."""

from __future__ import annotations

from fastapi import APIRouter

from stagewise.api.deps import CurrentKey
from stagewise.api.responses import JsonResponse
from stagewise.api.schemas.evaluations import ScoreBody, ScoreResponse
from stagewise.api.strict_json import StrictJSONRoute
from stagewise.services import evaluation_scoring as svc

router = APIRouter(prefix="/v1/evaluations", tags=["evaluations"], route_class=StrictJSONRoute)


@router.post("/score", response_model=ScoreResponse)
def score_predictions(body: ScoreBody, _: CurrentKey) -> JsonResponse:
    """Precision, recall, F1 and F2 of `predicted` against `ground_truth`, both sets, for one
    pair or an `items` batch: per item and the mean over the items. `k` keeps the first k
    distinct predictions. An empty ground truth is a 422 (recall is undefined); an empty
    prediction scores 0. Any key, read-only ones included: nothing is read or stored."""
    single = svc.Pair(body.predicted, body.ground_truth)
    items = (
        None if body.items is None else [svc.Pair(i.predicted, i.ground_truth) for i in body.items]
    )
    return JsonResponse(svc.score(single, items, body.metrics, body.k))
