"""taxonomy_enrich and the matching engine (pipeline/taxonomy_match.py), checked by value.

Node collections are in-memory; the taxonomy's retriever is one test stage that scores each
node document by the share of the query's words it holds, so every expected match can be
worked out by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from stagewise.domain.pipeline_records import RetrieverRecord
from stagewise.domain.records import CollectionRecord, VectorIndexSpec
from stagewise.domain.taxonomy_records import TaxonomyRecord
from stagewise.errors import StageFailed, ValidationFailed
from stagewise.pipeline.registry import get_stage, register
from stagewise.pipeline.stage import (
    Budget,
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)
from stagewise.pipeline.stages.taxonomy_enrich import TaxonomyEnrich
from stagewise.pipeline.taxonomy_match import TaxonomyMatcher, apply_enrichment

pytestmark = pytest.mark.unit

NS = "ns_test"


class OverlapParams(StageParams):
    query: str


class WordOverlap(Stage):
    """Each node document of the stage's collections, scored |query words in text| /
    |query words|; documents sharing no word are left out."""

    stage_id: ClassVar[str] = "test_word_overlap"
    category: ClassVar[Category] = "filter"
    description: ClassVar[str] = "Scores node documents by shared words (tests only)"
    Params = OverlapParams

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        words = set(self.params.query.lower().split())  # type: ignore[attr-defined]
        out = []
        for col in ctx.collections:
            for doc_id, doc in ctx.stores.nodes.get(col.collection_id, {}).items():
                score = len(words & set(doc["text"].lower().split())) / len(words)
                if score > 0:
                    out.append(Candidate(doc_id, col.collection_id, score, dict(doc)))
        return StageResult(sorted(out, key=lambda c: -c.score))


if get_stage(WordOverlap.stage_id) is None:
    register(WordOverlap)


def collection(cid: str) -> CollectionRecord:
    spec = VectorIndexSpec(
        name="v", short_name="v", feature_uri="v", dimensions=2, input_field="text"
    )
    return CollectionRecord(
        collection_id=cid, namespace_id=NS, collection_name=cid, vector_indexes=[spec]
    )


def retriever(rid: str, collection_ids: list[str]) -> RetrieverRecord:
    stage = {
        "stage_name": "match",
        "config": {"stage_id": "test_word_overlap", "parameters": {"query": "{{INPUT.q}}"}},
    }
    return RetrieverRecord(
        retriever_id=rid,
        namespace_id=NS,
        retriever_name=rid,
        collection_ids=collection_ids,
        stages=[stage],
    )


MAPPINGS = [{"input_key": "q", "source_type": "payload", "path": "text", "override": None}]


@dataclass
class World:
    collections: dict[str, CollectionRecord] = field(default_factory=dict)
    retrievers: dict[str, RetrieverRecord] = field(default_factory=dict)
    taxonomies: dict[str, TaxonomyRecord] = field(default_factory=dict)
    nodes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def stores(self) -> Any:
        metadata = SimpleNamespace(
            get_collection=lambda ns, i: self.collections.get(i),
            get_retriever=lambda ns, i: self.retrievers.get(i),
        )
        taxonomies = SimpleNamespace(get_taxonomy=lambda ns, i: self.taxonomies.get(i))
        return SimpleNamespace(metadata=metadata, taxonomies=taxonomies, nodes=self.nodes)


def flat_world(enrichment: list[dict[str, Any]] | None = None, top_k: int = 1) -> World:
    w = World()
    w.collections["col_topics"] = collection("col_topics")
    w.retrievers["ret_m"] = retriever("ret_m", ["col_topics"])
    w.nodes["col_topics"] = {
        "n_sport": {"text": "football goal match team", "label": "sports", "tags": ["ball"]},
        "n_food": {"text": "pasta sauce recipe", "metadata": {"label": "cooking"}},
        "n_money": {"text": "bank money loan team", "tags": ["cash"]},  # labelled by its text
    }
    config = {
        "taxonomy_type": "flat",
        "retriever_id": "ret_m",
        "input_mappings": MAPPINGS,
        "source_collection": {"collection_id": "col_topics", "enrichment_fields": enrichment},
        "top_k": top_k,
    }
    w.taxonomies["tax_t"] = TaxonomyRecord(
        taxonomy_id="tax_t", namespace_id=NS, taxonomy_name="topics", config=config
    )
    return w


def ctx(w: World) -> StageContext:
    return StageContext(
        stores=w.stores(),
        namespace_id=NS,
        collections=[],
        inputs={},
        budget=Budget(None, None),
        stage_name="tax",
        stage_index=1,
    )


def cands(*texts: str) -> list[Candidate]:
    return [
        Candidate(f"d{i}", "col_docs", 1.0 - i / 10, {"text": t, "metadata": {"n": i}})
        for i, t in enumerate(texts)
    ]


def run(w: World, docs: list[Candidate], **params: Any) -> StageResult:
    stage = TaxonomyEnrich(TaxonomyEnrich.Params.model_validate({"taxonomy_id": "tax_t", **params}))
    return stage.run(ctx(w), docs)


P = "_taxonomy_tax_t"


def test_top_k_one_keeps_n_to_n_with_fields_and_labels() -> None:
    w = flat_world([{"field_path": "label", "target_field": "topic", "merge_mode": "replace"}])
    result = run(w, cands("a football goal", "pasta recipe", "money"), top_k=1)
    docs = [c.doc for c in result.candidates]
    assert [d[f"{P}_id"] for d in docs] == ["n_sport", "n_food", "n_money"]
    # label: the `label` field, else metadata.label, else the collection's text field
    assert [d[f"{P}_label"] for d in docs] == ["sports", "cooking", "bank money loan team"]
    assert [d[f"{P}_score"] for d in docs] == [2 / 3, 1.0, 1.0]
    assert [d.get("topic") for d in docs] == ["sports", None, None]  # others have no `label`
    assert [c.score for c in result.candidates] == [1.0, 0.9, 0.8]  # their own scores kept
    assert result.metadata["matched"] == 3 and result.metadata["retriever_runs"] == 3


def test_top_k_above_one_fans_out_best_first_and_unmatched_pass_through() -> None:
    w = flat_world()
    docs = cands("goal team", "nothing shared here")
    before = dict(docs[1].doc)
    result = run(w, docs, top_k=2, fields=[{"field_path": "tags", "merge_mode": "append"}])
    out = result.candidates
    assert [c.document_id for c in out] == ["d0", "d0", "d1"]
    assert [c.doc.get(f"{P}_id") for c in out] == ["n_sport", "n_money", None]
    assert out[0].doc["tags"] == ["ball"] and out[1].doc["tags"] == ["cash"]
    assert out[0].doc is not out[1].doc and out[2].doc == before
    assert result.metadata["assignments"] == 2 and result.metadata["unmatched"] == 1


def test_when_and_min_score_leave_documents_unchanged() -> None:
    w = flat_world()
    when = {"AND": [{"field": "metadata.n", "operator": "eq", "value": 1}]}
    result = run(w, cands("goal", "pasta sauce"), top_k=1, when=when)
    assert f"{P}_id" not in result.candidates[0].doc
    assert result.candidates[1].doc[f"{P}_id"] == "n_food"
    assert result.metadata["skipped_by_when"] == 1
    # "football bank" shares one of two words with each: 0.5 < min_score
    result = run(w, cands("football bank"), top_k=3, min_score=0.6)
    assert f"{P}_id" not in result.candidates[0].doc and result.metadata["unmatched"] == 1


def test_no_enrichment_fields_copy_what_the_document_lacks() -> None:
    w = flat_world()
    result = run(w, cands("pasta"), top_k=1)
    doc = result.candidates[0].doc
    assert doc["text"] == "pasta" and doc["metadata"] == {"n": 0}  # never overwritten
    assert f"{P}_label" in doc and "label" not in doc  # n_food has no root label


def test_a_document_without_the_mapped_path_matches_nothing() -> None:
    w = flat_world()
    doc = Candidate("d9", "col_docs", 0.5, {"title": "no text"})
    result = run(w, [doc], top_k=1)
    assert result.candidates[0].doc == {"title": "no text"}
    assert result.metadata["unmapped"] == 1 and result.metadata["retriever_runs"] == 0


def test_creation_checks_alias_and_deletions_at_run_time() -> None:
    assert get_stage("taxonomy_join") is TaxonomyEnrich
    placeholder = TaxonomyEnrich.Params.model_validate({})
    with pytest.raises(ValidationFailed, match="placeholder"):
        TaxonomyEnrich.validate_for(placeholder, [])
    w = flat_world()
    missing = TaxonomyEnrich.Params.model_validate({"taxonomy_id": "tax_gone"})
    with pytest.raises(ValidationFailed, match="does not exist"):
        TaxonomyEnrich.validate_references(missing, w.stores(), NS)
    templated = TaxonomyEnrich.Params.model_validate({"taxonomy_id": "{{INPUT.tax}}"})
    TaxonomyEnrich.validate_references(templated, w.stores(), NS)  # checked per run
    for bad in ({"top_k": 0}, {"top_k": 51}, {"min_score": 1.5}, {"fields": [{"x": 1}]}):
        with pytest.raises(ValueError):
            TaxonomyEnrich.Params.model_validate({"taxonomy_id": "tax_t", **bad})
    with pytest.raises(StageFailed, match="no longer exists"):
        TaxonomyEnrich(missing).run(ctx(w), cands("goal"))
    del w.retrievers["ret_m"]
    with pytest.raises(ValidationFailed, match="retriever 'ret_m' no longer exists"):
        run(w, cands("goal"))


def hierarchy(child_fields: list[dict[str, Any]] | None) -> World:
    w = World()
    for cid in ("col_kingdom", "col_breeds", "col_trees"):
        w.collections[cid] = collection(cid)
    w.retrievers["ret_h"] = retriever("ret_h", list(w.collections))
    w.nodes["col_kingdom"] = {
        "k_animal": {"text": "animal dog creature", "label": "animal"},
        "k_plant": {"text": "plant leaf tree", "label": "plant"},
    }
    w.nodes["col_breeds"] = {"b_poodle": {"text": "poodle dog curly", "label": "poodle"}}
    w.nodes["col_trees"] = {"t_oak": {"text": "oak tree acorn", "label": "oak"}}
    kingdom_fields = [{"field_path": "label", "target_field": "kingdom"}]
    nodes = [
        {"collection_id": "col_kingdom", "enrichment_fields": kingdom_fields},
        {"collection_id": "col_breeds", "parent_collection_id": "col_kingdom"},
        {"collection_id": "col_trees", "parent_collection_id": "col_kingdom"},
    ]
    nodes[1]["enrichment_fields"] = child_fields
    config = {
        "taxonomy_type": "hierarchical",
        "retriever_id": "ret_h",
        "input_mappings": MAPPINGS,
        "hierarchical_nodes": nodes,
    }
    w.taxonomies["tax_t"] = TaxonomyRecord(
        taxonomy_id="tax_t", namespace_id=NS, taxonomy_name="tree", config=config
    )
    return w


def test_hierarchy_deepest_match_wins_with_path_and_inherited_fields() -> None:
    w = hierarchy([{"field_path": "label", "target_field": "breed"}])
    budget = Budget(None, None)
    matcher = TaxonomyMatcher(w.stores(), w.taxonomies["tax_t"], budget, w.collections.get)
    (found,) = matcher.match({"text": "curly dog"}, top_k=5)
    assert (found.node_id, found.label, found.level) == ("b_poodle", "poodle", 1)
    assert found.path == ["animal", "poodle"]
    assert [t["node_id"] for t in found.tiers] == ["k_animal", "b_poodle"]
    doc: dict[str, Any] = {}
    assert apply_enrichment(doc, [found]) == ["kingdom", "breed"]
    assert doc == {"kingdom": "animal", "breed": "poodle"}
    # A child without fields of its own inherits its parent's: the deepest value wins.
    w = hierarchy(None)
    result = run(w, cands("curly dog"), top_k=1)
    assert result.candidates[0].doc["kingdom"] == "poodle"
    # No child matches: the root match stands, at level 0.
    (found,) = matcher.match({"text": "leaf"}, top_k=1)
    assert (found.node_id, found.level, found.path) == ("k_plant", 0, ["plant"])
    assert matcher.match({"text": "granite"}, top_k=1) == []
