"""Acceptance: a flat taxonomy over a small labelled reference collection labels held-out
texts it has never seen, through the taxonomy execute endpoint and through the
taxonomy_enrich stage of a retriever, both driven by the official SDK. The accuracy is
printed and asserted.

Measured with the local all-MiniLM-L6-v2 model on tests/sdk/data/taxonomy_topics.json
(6 topics x 8 references, 30 held-out texts): 30/30 = 1.00 for both paths (every
topology). The threshold sits below that so a model or tokenizer update that moves one
or two borderline texts does not fail the suite, while a broken matcher (chance is 1/6)
still does.
"""

from __future__ import annotations

from typing import Any

import mixpeek
import pytest
from mixpeek.models import (
    CreateRetrieverRequest,
    ExecuteRetrieverRequest,
    JoinResponse,
    Payload1,
)

from tests.sdk.conftest import ClientFactory
from tests.support.taxonomy_world import DATA, TaxonomyWorld

pytestmark = [pytest.mark.sdk]

ACCURACY_FLOOR = 0.85  # measured 1.00 (30/30); see the module docstring


def report(path: str, predicted: list[str | None], truth: list[str]) -> float:
    correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
    accuracy = correct / len(truth)
    misses = [(t, p) for p, t in zip(predicted, truth, strict=True) if p != t]
    print(f"\ntaxonomy accuracy ({path}): {correct}/{len(truth)} = {accuracy:.3f}; misses {misses}")
    return accuracy


def test_execute_labels_held_out_texts(sdk: ClientFactory, taxonomy_world: TaxonomyWorld) -> None:
    api = mixpeek.TaxonomiesApi(sdk(namespace=taxonomy_world.namespace))
    held = DATA["held_out"]
    predicted: list[str | None] = []
    for start in range(0, len(held), 5):  # execute validates at most 5 samples a call
        batch = [
            {"document_id": f"held_{start + i}", "text": d["text"]}
            for i, d in enumerate(held[start : start + 5])
        ]
        answer = api.execute_taxonomy_taxonomies_0(
            taxonomy_world.taxonomy_id, Payload1({"source_documents": batch})
        )
        assert isinstance(answer, JoinResponse)
        assert answer.stats.processed_docs == len(batch)
        assert answer.results is not None and answer.matches is not None
        by_doc = {m.document_id: m for m in answer.matches}
        for doc, result in zip(batch, answer.results, strict=True):
            match = by_doc.get(doc["document_id"])
            predicted.append(match.label if match is not None else None)
            if match is not None:
                # The enriched document carries the node's label as `topic` and the
                # materialised fields.
                assert result["topic"] == match.label
                assert result[f"_taxonomy_{taxonomy_world.taxonomy_id}_label"] == match.label
                assert match.node_id and match.path == [match.label]
    accuracy = report("execute", predicted, [d["label"] for d in held])
    assert accuracy >= ACCURACY_FLOOR


def test_taxonomy_enrich_stage_labels_held_out_texts(
    sdk: ClientFactory, taxonomy_world: TaxonomyWorld
) -> None:
    client = sdk(namespace=taxonomy_world.namespace)
    retrievers = mixpeek.RetrieversApi(client)
    body: dict[str, Any] = {
        "retriever_name": "label-articles",
        "collection_identifiers": [taxonomy_world.articles_id],
        "stages": [
            {
                "stage_name": "held-out",
                "config": {
                    "stage_id": "attribute_filter",
                    "parameters": {"field": "metadata.set", "operator": "eq", "value": "held_out"},
                },
            },
            {
                "stage_name": "label",
                "config": {
                    "stage_id": "taxonomy_enrich",
                    "parameters": {
                        "taxonomy_id": taxonomy_world.taxonomy_id,
                        "top_k": 1,
                        "fields": [{"field_path": "label", "target_field": "predicted"}],
                    },
                },
            },
        ],
    }
    retriever = retrievers.create_retriever(CreateRetrieverRequest.from_dict(body))
    result = retrievers.execute_retriever(
        retriever.retriever_id, ExecuteRetrieverRequest.from_dict({"inputs": {}, "limit": 100})
    )
    assert result.status == "completed", result.error
    docs = result.documents or []
    assert len(docs) == len(DATA["held_out"])
    stats = result.stage_statistics.stages["label"]  # type: ignore[union-attr]
    assert (stats.input_count, stats.output_count) == (30, 30)
    assert stats.metadata["matched"] == 30 and stats.metadata["retriever_runs"] == 30
    prefix = f"_taxonomy_{taxonomy_world.taxonomy_id}"
    for doc in docs:
        assert doc["predicted"] == doc[f"{prefix}_label"]
        assert isinstance(doc[f"{prefix}_id"], str) and isinstance(doc[f"{prefix}_score"], float)
    predicted = [d.get(f"{prefix}_label") for d in docs]
    accuracy = report("taxonomy_enrich stage", predicted, [d["metadata"]["topic"] for d in docs])
    assert accuracy >= ACCURACY_FLOOR
