"""Hierarchical taxonomies through the SDK, and materialisation onto documents
(services/taxonomy_materialize.py) as ingestion calls it."""

from __future__ import annotations

import uuid
from typing import Any

import mixpeek
import pytest
from mixpeek.exceptions import UnprocessableEntityException
from mixpeek.models import CreateTaxonomyRequest, DocumentCreateRequest, Payload1

from stagewise.domain.records import DocumentRecord
from stagewise.services.taxonomy_materialize import materialize_taxonomies
from tests.sdk.conftest import ClientFactory
from tests.support.server import ServerHandle
from tests.support.taxonomy_world import (
    TaxonomyWorld,
    create_taxonomy,
    flat_config,
    matcher_retriever,
    text_collection,
)

pytestmark = [pytest.mark.sdk]

MAPPINGS = [{"input_key": "query", "source_type": "payload", "path": "text"}]


def tree(client: mixpeek.ApiClient) -> tuple[dict[str, str], str]:
    """kingdom (animal, plant) -> breeds (poodle), trees (oak): collection ids by name, and
    one retriever reading all three."""
    nodes = {
        "kingdom": [("animal", "an animal, a living creature"), ("plant", "a green plant")],
        "breeds": [("poodle", "a poodle, a curly haired dog breed")],
        "trees": [("oak", "an oak tree with acorns")],
    }
    ids = {}
    docs = mixpeek.CollectionDocumentsApi(client)
    for name, items in nodes.items():
        ids[name] = text_collection(client, f"{name}-{uuid.uuid4().hex[:6]}")
        for label, text in items:
            body = {"text": text, "label": label, "rank": name}
            docs.create_document(ids[name], DocumentCreateRequest.from_dict(body))
    return ids, matcher_retriever(client, f"tree-{uuid.uuid4().hex[:6]}", list(ids.values()))


def hierarchical(ids: dict[str, str], retriever: str, **node_extra: Any) -> dict[str, Any]:
    return {
        "taxonomy_type": "hierarchical",
        "retriever_id": retriever,
        "input_mappings": MAPPINGS,
        "hierarchical_nodes": [
            {
                "collection_id": ids["kingdom"],
                "label": "Kingdom",
                "enrichment_fields": [{"field_path": "label", "target_field": "kingdom"}],
            },
            {
                "collection_id": ids["breeds"],
                "parent_collection_id": ids["kingdom"],
                "enrichment_fields": [{"field_path": "label", "target_field": "breed"}],
                **node_extra,
            },
            {"collection_id": ids["trees"], "parent_collection_id": ids["kingdom"]},
        ],
    }


def test_hierarchical_taxonomy_deepest_match_wins(
    sdk: ClientFactory, taxonomy_world: TaxonomyWorld
) -> None:
    client = sdk(namespace=taxonomy_world.namespace)
    ids, retriever = tree(client)
    api = mixpeek.TaxonomiesApi(client)
    name = f"tree-{uuid.uuid4().hex[:6]}"
    made = api.create_taxonomy_taxonomies(
        CreateTaxonomyRequest.from_dict(
            {"taxonomy_name": name, "config": hierarchical(ids, retriever)}
        )
    )
    config = made.config.actual_instance
    assert config.taxonomy_type == "hierarchical" and len(config.hierarchical_nodes) == 3
    assert config.hierarchical_nodes[1].parent_collection_id == ids["kingdom"]
    docs = [{"document_id": "dog", "text": "my curly poodle dog"}]
    answer = api.execute_taxonomy_taxonomies_0(name, Payload1({"source_documents": docs}))
    (match,) = answer.matches or []
    assert (match.label, match.hierarchy_level, match.path) == ("poodle", 1, ["animal", "poodle"])
    result = (answer.results or [])[0]
    assert (result["kingdom"], result["breed"]) == ("animal", "poodle")
    assert result[f"_taxonomy_{made.taxonomy_id}_label"] == "poodle"

    def refused(config: dict[str, Any]) -> str:
        body = {"taxonomy_name": f"bad-{uuid.uuid4().hex[:6]}", "config": config}
        with pytest.raises(UnprocessableEntityException) as exc:
            api.create_taxonomy_taxonomies(CreateTaxonomyRequest.from_dict(body))
        return str(exc.value.data.error.message)

    cycle = hierarchical(ids, retriever)
    cycle["hierarchical_nodes"][0]["parent_collection_id"] = ids["breeds"]
    assert "cycle" in refused(cycle)
    orphan = hierarchical(ids, retriever)
    orphan["hierarchical_nodes"][1]["parent_collection_id"] = taxonomy_world.topics_id
    assert "not a node" in refused(orphan)
    twice = hierarchical(ids, retriever)
    twice["hierarchical_nodes"].append({"collection_id": ids["trees"]})
    assert "one hierarchical node only" in refused(twice)
    assert "not supported" in refused({**hierarchical(ids, retriever), "path_field": "folder"})
    # The topics matcher does not read the tree's collections.
    assert "does not read" in refused(hierarchical(ids, taxonomy_world.matcher_id))


@pytest.mark.inprocess  # calls materialize_taxonomies with the server's own stores
def test_materialize_writes_assignments_onto_documents(
    sdk: ClientFactory, server: ServerHandle, taxonomy_world: TaxonomyWorld
) -> None:
    client = sdk(namespace=taxonomy_world.namespace)
    ids, retriever = tree(client)
    ranked = create_taxonomy(
        client,
        f"ranked-{uuid.uuid4().hex[:6]}",
        flat_config(taxonomy_world.matcher_id, taxonomy_world.topics_id, top_k=2),
    )
    tree_tax = create_taxonomy(client, f"tree-{uuid.uuid4().hex[:6]}", hierarchical(ids, retriever))
    only_kept = {"AND": [{"field": "metadata.keep", "operator": "eq", "value": True}]}
    applications = [
        {"taxonomy_id": ranked, "execution_mode": "materialize", "scroll_filters": only_kept},
        {"taxonomy_id": tree_tax, "hierarchical_enrichment_style": "combined"},
    ]
    col_id = text_collection(client, f"feed-{uuid.uuid4().hex[:6]}")
    mixpeek.CollectionsApi(client).update_collection(
        col_id, {"taxonomy_applications": applications}
    )
    stores = server.server.config.app.state.stores  # type: ignore[attr-defined]
    ns = stores.metadata.get_namespace(taxonomy_world.namespace)
    col = stores.metadata.get_collection(ns.namespace_id, col_id)
    docs = [
        DocumentRecord(
            document_id=f"d{i}",
            collection_id=col_id,
            namespace_id=ns.namespace_id,
            fields={"text": text},
            metadata={"keep": keep},
        )
        for i, (text, keep) in enumerate(
            [("the striker scored a goal for the team", True), ("a curly poodle dog", False)]
        )
    ]
    out = materialize_taxonomies(stores, col, docs)
    assert [d.fields for d in docs] == [
        {"text": t} for t in ("the striker scored a goal for the team", "a curly poodle dog")
    ]
    r, h = f"_taxonomy_{ranked}", f"_taxonomy_{tree_tax}"
    first, second = out[0].fields, out[1].fields
    assert first[f"{r}_label"] == "sports" and first["topic"] == "sports"
    assignments = first[f"{r}_assignments"]
    assert len(assignments) == 2 and assignments[0]["label"] == "sports"
    assert assignments[0]["score"] >= assignments[1]["score"]
    assert f"{r}_id" not in second  # left out by the application's scroll_filters
    assert second[f"{h}_label"] == "poodle" and second[f"{h}_path"] == ["animal", "poodle"]
    assert [t["label"] for t in second[f"{h}_tiers"]] == ["animal", "poodle"]
    assert (second["kingdom"], second["breed"]) == ("animal", "poodle")
