"""mmr, rerank, document_enrich and the LLM stages, checked by value."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from stagewise.domain.filters import FilterNode, matches
from stagewise.domain.records import (
    CollectionRecord,
    DocumentRecord,
    NamespaceRecord,
    VectorIndexSpec,
)
from stagewise.embeddings.base import HashEmbedder
from stagewise.errors import BudgetExceeded, StageFailed, ValidationFailed
from stagewise.pipeline.registry import get_stage, stage_definitions
from stagewise.pipeline.stage import Budget, Candidate, Stage, StageContext
from stagewise.pipeline.stages import rerank as rerank_module
from stagewise.pipeline.stages.mmr import field_similarity, mmr_select, normalised_relevance
from stagewise.pipeline.stages.rerank import chunk_text

pytestmark = pytest.mark.unit

NS = "ns_test"
URI_A = "mixpeek://text_extractor@v1/embedding_a"
URI_B = "mixpeek://text_extractor@v1/embedding_b"


# ---------------------------------------------------------------------------------------------
# fakes


def spec(uri: str, name: str, dims: int = 2) -> VectorIndexSpec:
    return VectorIndexSpec(
        name=name, short_name=uri.rsplit("/", 1)[1], feature_uri=uri, dimensions=dims
    )


def collection(cid: str, name: str, specs: Sequence[VectorIndexSpec] = ()) -> CollectionRecord:
    return CollectionRecord(
        collection_id=cid, namespace_id=NS, collection_name=name, vector_indexes=list(specs)
    )


@dataclass
class FakeMetadata:
    collections: dict[str, CollectionRecord] = field(default_factory=dict)
    documents: dict[str, dict[str, DocumentRecord]] = field(default_factory=dict)

    def get_collection(self, namespace_id: str, identifier: str) -> CollectionRecord | None:
        for col in self.collections.values():
            if identifier in (col.collection_id, col.collection_name):
                return col
        return None

    def get_documents(
        self, collection_id: str, document_ids: Sequence[str]
    ) -> dict[str, DocumentRecord]:
        docs = self.documents.get(collection_id, {})
        return {d: docs[d] for d in document_ids if d in docs}


@dataclass
class FakeIndex:
    metadata: FakeMetadata
    # (collection_id, vector storage name) -> document_id -> vector
    vecs: dict[tuple[str, str], dict[str, list[float]]] = field(default_factory=dict)
    calls: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def vectors(
        self, collection_id: str, document_ids: Sequence[str], vector_name: str
    ) -> dict[str, list[float]]:
        self.calls.append((collection_id, vector_name, tuple(document_ids)))
        stored = self.vecs.get((collection_id, vector_name), {})
        return {d: stored[d] for d in document_ids if d in stored}

    def filter_ids(self, collection_id: str, node: FilterNode | None) -> Iterator[str]:
        assert node is not None
        for doc_id, rec in self.metadata.documents.get(collection_id, {}).items():
            if matches(node, {**rec.fields, "metadata": rec.metadata}):
                yield doc_id

    def count(self, collection_id: str, node: FilterNode | None = None) -> int:
        return len(self.metadata.documents.get(collection_id, {}))


def make_stores() -> Any:
    metadata = FakeMetadata()
    return SimpleNamespace(
        settings=None, metadata=metadata, index=FakeIndex(metadata), embedder=HashEmbedder()
    )


def make_ctx(
    stores: Any,
    collections: list[CollectionRecord],
    *,
    inputs: dict[str, Any] | None = None,
    max_credits: float | None = None,
) -> StageContext:
    return StageContext(
        stores=stores,
        namespace_id=NS,
        collections=collections,
        inputs=inputs or {},
        budget=Budget(max_credits=max_credits, max_time_ms=None),
        stage_name="stage",
        stage_index=1,
    )


def build(stage_id: str, **params: Any) -> Stage:
    cls = get_stage(stage_id)
    assert cls is not None, stage_id
    return cls(cls.Params.model_validate(params))


def ids(cands: Sequence[Candidate]) -> list[str]:
    return [c.document_id for c in cands]


# ---------------------------------------------------------------------------------------------
# mmr

# The hand-computed example (2-d vectors, cosine). Scores 0.9/0.8/0.5/0.1 normalise to
# relevance A=1, B=0.875, C=0.5, D=0. Similarities: AB .8, AC 0, AD .6, BC .6, BD .96, CD .8.
VECTORS = {"A": [1.0, 0.0], "B": [0.8, 0.6], "C": [0.0, 1.0], "D": [0.6, 0.8]}
SCORES = {"A": 0.9, "B": 0.8, "C": 0.5, "D": 0.1}


def mmr_setup(order: str = "ABCD") -> tuple[Any, CollectionRecord, list[Candidate]]:
    stores = make_stores()
    col = collection("col_1", "one", [spec(URI_A, "vec_a")])
    stores.metadata.collections[col.collection_id] = col
    stores.index.vecs[("col_1", "vec_a")] = dict(VECTORS)
    cands = [Candidate(d, "col_1", SCORES[d]) for d in order]
    return stores, col, cands


def test_mmr_hand_computed_example() -> None:
    stores, col, cands = mmr_setup()
    stage = build("mmr", **{"lambda": 0.5, "top_k": 4, "diversity_feature_uri": URI_A})
    result = stage.run(make_ctx(stores, [col]), cands)
    # step 1: A (0.5); 2: C (0.25 - 0) beats B (0.4375 - 0.4); 3: B (0.0375);
    # 4: D (0 - 0.5 * max(.6, .8, .96) = -0.48).
    assert ids(result.candidates) == ["A", "C", "B", "D"]
    got = [c.scores["mmr"] for c in result.candidates]
    assert got == pytest.approx([0.5, 0.25, 0.0375, -0.48])
    # the relevance score itself is untouched
    assert [c.score for c in result.candidates] == [0.9, 0.5, 0.8, 0.1]
    assert result.metadata["mode"] == "feature"
    assert result.metadata["feature_uris"] == [URI_A]
    # one vectors() call for the collection, with the storage name of the feature
    assert stores.index.calls == [("col_1", "vec_a", ("A", "B", "C", "D"))]


def test_mmr_lambda_one_is_relevance_order() -> None:
    stores, col, cands = mmr_setup(order="DCAB")
    stage = build("mmr", **{"lambda": 1.0, "diversity_feature_uri": URI_A})
    result = stage.run(make_ctx(stores, [col]), cands)
    assert ids(result.candidates) == ["A", "B", "C", "D"]
    assert [c.scores["mmr"] for c in result.candidates] == pytest.approx([1.0, 0.875, 0.5, 0.0])


def test_mmr_lambda_zero_picks_least_similar_after_first() -> None:
    stores, col, cands = mmr_setup()
    stage = build("mmr", lambda_=0.0, diversity_feature_uri=URI_A)  # the field name works too
    result = stage.run(make_ctx(stores, [col]), cands)
    # first pick: all MMR values tie at 0, the most relevant wins; then C (similarity 0 to A)
    assert ids(result.candidates)[:2] == ["A", "C"]
    # B and D both have max similarity 0.8 to {A, C}: the tie goes to the more relevant B
    assert ids(result.candidates) == ["A", "C", "B", "D"]
    assert result.candidates[1].scores["mmr"] == pytest.approx(0.0)


def test_mmr_top_k_and_custom_score_fields() -> None:
    stores, col, cands = mmr_setup()
    for c in cands:
        c.doc["metadata"] = {"rel": {"A": 1, "B": 2, "C": 3, "D": 4}[c.document_id]}
    stage = build(
        "mmr",
        **{
            "lambda": 1.0,
            "top_k": 2,
            "diversity_feature_uri": URI_A,
            "score_field": "metadata.rel",
            "mmr_score_field": "metadata.mmr_value",
        },
    )
    result = stage.run(make_ctx(stores, [col]), cands)
    assert ids(result.candidates) == ["D", "C"]
    assert result.candidates[0].doc["metadata"]["mmr_value"] == pytest.approx(1.0)
    assert "mmr" not in result.candidates[0].scores


def test_mmr_auto_mode_uses_previous_dense_feature() -> None:
    stores = make_stores()
    col = collection("col_1", "one", [spec(URI_A, "vec_a"), spec(URI_B, "vec_b")])
    stores.metadata.collections[col.collection_id] = col
    stores.index.vecs[("col_1", "vec_b")] = dict(VECTORS)
    cands = [
        Candidate(d, "col_1", SCORES[d], scores={"sources": {f"dense:{URI_B}": {"rank": 1}}})
        for d in "ABCD"
    ]
    result = build("mmr", **{"lambda": 0.5}).run(make_ctx(stores, [col]), cands)
    assert result.metadata["mode"] == "auto"
    assert result.metadata["feature_uris"] == [URI_B]
    assert ids(result.candidates) == ["A", "C", "B", "D"]


def test_mmr_auto_mode_falls_back_to_first_vector_index() -> None:
    stores, col, cands = mmr_setup()
    result = build("mmr", **{"lambda": 0.5}).run(make_ctx(stores, [col]), cands)
    assert result.metadata["feature_uris"] == [URI_A]
    assert ids(result.candidates) == ["A", "C", "B", "D"]


def test_mmr_multi_feature_weights() -> None:
    stores = make_stores()
    col = collection("col_1", "one", [spec(URI_A, "vec_a"), spec(URI_B, "vec_b")])
    stores.metadata.collections[col.collection_id] = col
    stores.index.vecs[("col_1", "vec_a")] = dict(VECTORS)
    # In space B every document is identical, so only space A separates them.
    stores.index.vecs[("col_1", "vec_b")] = {d: [1.0, 1.0] for d in "ABCD"}
    cands = [Candidate(d, "col_1", SCORES[d]) for d in "ABCD"]
    stage = build(
        "mmr",
        **{
            "lambda": 0.5,
            "diversity_features": [
                {"feature_uri": URI_A, "weight": 0.5},
                {"feature_uri": URI_B, "weight": 0.5},
            ],
        },
    )
    result = stage.run(make_ctx(stores, [col]), cands)
    # similarity = 0.5 * simA + 0.5; step 2: B 0.4375 - 0.5*0.9 = -0.0125, C 0.25 - 0.25 = 0,
    # D 0 - 0.5*0.8 = -0.4 -> C; step 3: B -0.0125 beats D -0.45 -> B, D.
    assert ids(result.candidates) == ["A", "C", "B", "D"]
    assert [c.scores["mmr"] for c in result.candidates] == pytest.approx([0.5, 0.0, -0.0125, -0.49])
    assert result.metadata["mode"] == "features"


def test_mmr_diversity_fields() -> None:
    stores = make_stores()
    col = collection("col_1", "one")
    cands = [
        Candidate("a", "col_1", 0.9, doc={"metadata": {"category": "x"}}),
        Candidate("b", "col_1", 0.8, doc={"metadata": {"category": "x"}}),
        Candidate("c", "col_1", 0.7, doc={"metadata": {"category": "y"}}),
    ]
    stage = build("mmr", **{"lambda": 0.5, "diversity_fields": ["metadata.category"]})
    result = stage.run(make_ctx(stores, [col]), cands)
    # relevance a=1, b=.5, c=0: after a, b = .25 - .5 (same category), c = 0 - 0 -> c first
    assert ids(result.candidates) == ["a", "c", "b"]
    assert result.metadata["mode"] == "fields"
    assert stores.index.calls == []  # attribute mode reads no vectors


def test_field_similarity_is_jaccard() -> None:
    sim = field_similarity([["a", "b"], ["b", "c"], None, "a", 5, 5.0, "5"])
    assert sim[0, 1] == pytest.approx(1 / 3)
    assert sim[0, 3] == pytest.approx(1 / 2)
    assert sim[2].tolist() == [0.0] * 7
    assert sim[4, 5] == 1.0  # 5 == 5.0
    assert sim[4, 6] == 0.0  # 5 != "5"
    assert np.allclose(sim, sim.T)


def test_mmr_helpers() -> None:
    assert normalised_relevance([2, None, 4, "x"]).tolist() == [0.0, 0.0, 1.0, 0.0]
    assert normalised_relevance([3, 3]).tolist() == [1.0, 1.0]
    rel = np.array([1.0, 0.9, 0.1])
    sim = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    order, _ = mmr_select(rel, sim, 0.5, 3)
    assert order == [0, 2, 1]


def test_mmr_vectors_from_different_feature_spaces_are_not_compared() -> None:
    stores = make_stores()
    one = collection("col_1", "one", [spec(URI_A, "vec_a")])
    two = collection("col_2", "two", [spec(URI_B, "vec_b")])
    stores.metadata.collections.update({"col_1": one, "col_2": two})
    stores.index.vecs[("col_1", "vec_a")] = {"a1": [1.0, 0.0], "a2": [1.0, 0.0]}
    stores.index.vecs[("col_2", "vec_b")] = {"b1": [1.0, 0.0]}
    cands = [Candidate("a1", "col_1", 1.0), Candidate("a2", "col_1", 0.9)]
    cands.append(Candidate("b1", "col_2", 0.8))
    result = build("mmr", **{"lambda": 0.5}).run(make_ctx(stores, [one, two]), cands)
    # a2 duplicates a1; b1's identical vector lives in another space, so it is not similar
    assert ids(result.candidates) == ["a1", "b1", "a2"]
    assert set(result.metadata["feature_uris"]) == {URI_A, URI_B}


def test_mmr_validate_for_rejects_unknown_feature_uri() -> None:
    cls = get_stage("mmr")
    assert cls is not None
    col = collection("col_1", "one", [spec(URI_A, "vec_a")])
    params = cls.Params.model_validate({"diversity_feature_uri": "mixpeek://nope@v1/x"})
    with pytest.raises(ValidationFailed) as exc:
        cls.validate_for(params, [col])
    assert URI_A in exc.value.message
    assert exc.value.details["valid_feature_uris"] == [URI_A]
    cls.validate_for(cls.Params.model_validate({"diversity_feature_uri": URI_A}), [col])
    bad = cls.Params.model_validate({"diversity_features": [{"feature_uri": "x://y"}]})
    with pytest.raises(ValidationFailed):
        cls.validate_for(bad, [col])


def test_mmr_params() -> None:
    cls = get_stage("mmr")
    assert cls is not None
    defaults = cls.Params.model_validate({"diversity_feature_uri": "null"}).model_dump()
    assert defaults["lambda_"] == 0.7 and defaults["diversity_feature_uri"] is None
    with pytest.raises(ValidationError):
        cls.Params.model_validate({"lambda": 1.5})
    with pytest.raises(ValidationError):
        cls.Params.model_validate(
            {"diversity_fields": ["a"], "diversity_field_weights": {"b": 1.0}}
        )
    schema = next(d for d in stage_definitions() if d["stage_id"] == "mmr")
    assert "lambda" in schema["parameter_schema"]["properties"]


# ---------------------------------------------------------------------------------------------
# rerank


def rerank_cands(texts: dict[str, str], field_name: str = "content") -> list[Candidate]:
    return [
        Candidate(d, "col_1", score=1.0 - i / 10, doc={field_name: t})
        for i, (d, t) in enumerate(texts.items())
    ]


def test_rerank_puts_the_matching_document_first() -> None:
    stores = make_stores()
    cands = rerank_cands(
        {
            "cake": "Mix flour and sugar, then bake the cake for forty minutes.",
            "solar": "Solar panel efficiency rose again this year, panels convert more light.",
        }
    )
    stage = build("rerank", combine="replace", query="solar panel efficiency")
    ctx = make_ctx(stores, [])
    result = stage.run(ctx, cands)
    assert ids(result.candidates) == ["solar", "cake"]
    solar, cake = result.candidates
    assert solar.score > cake.score
    assert solar.scores["rerank"] == solar.score
    assert solar.scores["pre_rerank"] == pytest.approx(0.9)
    assert cake.scores["pre_rerank"] == pytest.approx(1.0)
    assert result.metadata["scorer"] == "hash-maxsim"
    assert result.metadata["inference_name"] == "BAAI__bge_reranker_v2_m3"
    assert any("BAAI__bge_reranker_v2_m3" in w and "hash-maxsim" in w for w in ctx.warnings)
    assert ctx.budget.credits_used == pytest.approx(0.02)


def test_rerank_respects_max_candidates_and_top_k() -> None:
    stores = make_stores()
    texts = {
        "d1": "nothing relevant here",
        "d2": "quantum computing qubits",
        "d3": "quantum computing qubits and quantum computing",
        "d4": "still unrelated text",
    }
    ctx = make_ctx(stores, [])
    result = build("rerank", combine="replace", query="quantum computing", max_candidates=2).run(
        ctx, rerank_cands(texts)
    )
    # only d1, d2 are scored; d3 (a better match) stays below them, unscored, in order
    assert ids(result.candidates) == ["d2", "d1", "d3", "d4"]
    assert "rerank" not in result.candidates[2].scores
    assert result.candidates[2].score == pytest.approx(0.8)
    assert result.metadata["scored"] == 2
    assert result.metadata["unscored_past_max_candidates"] == 2
    assert ctx.budget.credits_used == pytest.approx(0.02)

    top = build(
        "rerank", combine="replace", query="quantum computing", max_candidates=None, top_k=2
    ).run(make_ctx(stores, []), rerank_cands(texts))
    assert ids(top.candidates) == ["d3", "d2"]


def test_rerank_text_fallback_and_custom_score_field() -> None:
    stores = make_stores()
    cands = rerank_cands({"a": "red apples", "b": "green pears"}, field_name="text")
    cands.append(Candidate("c", "col_1", 0.1, doc={"other": "x"}))
    result = build(
        "rerank",
        combine="replace",
        query="pears",
        document_field="metadata.body",
        score_field="metadata.rr",
    ).run(make_ctx(stores, []), cands)
    assert ids(result.candidates) == ["b", "a", "c"]  # c has no text: unscored, after
    assert result.candidates[0].doc["metadata"]["rr"] == result.candidates[0].score
    assert result.metadata["unscored_without_text"] == 1


def test_rerank_long_document_is_not_truncated_to_one_window() -> None:
    filler = " ".join(f"word{i}" for i in range(600)) + "."
    texts = {
        "short": "an unrelated note about gardening",
        "long": filler + " The volcano eruption covered the island in ash.",
    }
    stage = build(
        "rerank", combine="replace", query="volcano eruption ash", max_document_chars=50000
    )
    result = stage.run(make_ctx(make_stores(), []), rerank_cands(texts))
    assert ids(result.candidates) == ["long", "short"]
    chunks = chunk_text(texts["long"])
    assert all(len(c.split()) <= 160 for c in chunks)
    assert " ".join(chunks).split() == texts["long"].split()


def test_rerank_needs_a_query() -> None:
    stage = build("rerank", combine="replace", query=None)
    with pytest.raises(ValidationFailed, match="rerank needs a query"):
        stage.run(make_ctx(make_stores(), []), rerank_cands({"a": "x"}))
    with pytest.raises(ValidationFailed, match="rerank needs a query"):
        build("rerank", combine="replace", query="  ").run(make_ctx(make_stores(), []), [])
    # the default '{{INPUT.query}}' is rendered by the stage when the runner did not
    with pytest.raises(ValidationFailed, match="rerank needs a query"):
        build("rerank", combine="replace").run(
            make_ctx(make_stores(), [], inputs={}), rerank_cands({"a": "x"})
        )
    cands = rerank_cands({"a": "red", "b": "blue"})
    result = build("rerank", combine="replace").run(
        make_ctx(make_stores(), [], inputs={"query": "blue"}), cands
    )
    assert ids(result.candidates) == ["b", "a"]


def test_rerank_budget_is_charged_per_pair() -> None:
    cands = rerank_cands({f"d{i}": f"text {i}" for i in range(5)})
    with pytest.raises(BudgetExceeded):
        build("rerank", combine="replace", query="text").run(
            make_ctx(make_stores(), [], max_credits=0.04), cands
        )


def test_rerank_uses_a_local_cross_encoder_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = tmp_path / "my-reranker"
    model_dir.mkdir()

    class FakeCrossEncoder:
        def predict(self, pairs: list[list[str]], **kwargs: Any) -> Any:
            return np.array([float(len(t)) for _, t in pairs])

    monkeypatch.setenv("STAGEWISE_RERANK_MODEL_DIR", str(model_dir))
    monkeypatch.setitem(rerank_module._CROSS_ENCODERS, str(model_dir), FakeCrossEncoder())
    cands = rerank_cands({"a": "short", "b": "a much longer text"})
    result = build("rerank", combine="replace", query="q").run(make_ctx(make_stores(), []), cands)
    assert result.metadata["scorer"] == "cross-encoder:my-reranker"
    assert ids(result.candidates) == ["b", "a"]
    assert result.candidates[0].score == float(len("a much longer text"))

    monkeypatch.setenv("STAGEWISE_RERANK_MODEL_DIR", str(tmp_path / "missing"))
    with pytest.raises(StageFailed, match="not a directory"):
        build("rerank", combine="replace", query="q").run(make_ctx(make_stores(), []), cands)


@pytest.mark.slow
def test_rerank_with_real_minilm_prefers_the_semantic_match() -> None:
    from stagewise.embeddings.minilm import MiniLMEmbedder

    stores = make_stores()
    stores.embedder = MiniLMEmbedder()
    cands = rerank_cands(
        {
            "stocks": "Shares fell sharply on Tuesday as investors sold bank stocks.",
            "football": "The football team trained hard before the new season began.",
            "photosynthesis": "Green leaves turn sunlight, water and carbon dioxide into sugar.",
        }
    )
    result = build("rerank", combine="replace", query="how do plants make their food").run(
        make_ctx(stores, []), cands
    )
    assert result.metadata["scorer"] == "minilm-maxsim"
    assert ids(result.candidates)[0] == "photosynthesis"


# ---------------------------------------------------------------------------------------------
# document_enrich


def doc(cid: str, did: str, seq: int, **fields: Any) -> DocumentRecord:
    metadata = fields.pop("metadata", {})
    return DocumentRecord(
        document_id=did,
        collection_id=cid,
        namespace_id=NS,
        fields=fields,
        metadata=metadata,
        seq=seq,
    )


def enrich_setup() -> tuple[Any, list[CollectionRecord]]:
    stores = make_stores()
    products = collection("col_products", "products")
    stores.metadata.collections[products.collection_id] = products
    stores.metadata.documents["col_products"] = {
        "p1": doc(
            "col_products", "p1", 1, name="Lamp", price=20, sku="S-1", metadata={"brand": "Acme"}
        ),
        "p2": doc(
            "col_products", "p2", 2, name="Desk", price=90, sku="S-2", metadata={"brand": "Oak"}
        ),
        "p3": doc(
            "col_products", "p3", 3, name="Lamp v2", price=25, sku="S-1", metadata={"brand": "Acme"}
        ),
    }
    main = collection("col_main", "main")
    return stores, [main]


def enrich_cands() -> list[Candidate]:
    return [
        Candidate("c1", "col_main", 0.9, doc={
            "source_object_id": "p1", "name": "old name",
            "metadata": {"category": "x", "brand": None}, "sku": "S-1",
        }),
        Candidate("c2", "col_main", 0.8, doc={
            "source_object_id": "nope", "metadata": {"category": "y"}, "sku": "S-9",
        }),
    ]  # fmt: skip


def run_enrich(**params: Any) -> tuple[list[Candidate], dict[str, Any]]:
    stores, cols = enrich_setup()
    params.setdefault("target_collection_id", "col_products")
    result = build("document_enrich", **params).run(make_ctx(stores, cols), enrich_cands())
    return result.candidates, result.metadata


def test_document_enrich_enrich_adds_missing_fields_only() -> None:
    (c1, c2), meta = run_enrich()
    assert c1.doc["name"] == "old name"  # the candidate's value wins
    assert c1.doc["price"] == 20
    assert c1.doc["metadata"] == {"category": "x", "brand": "Acme"}  # null counts as missing
    assert c1.document_id == "c1" and c1.score == 0.9  # identity is kept
    assert c2.doc == enrich_cands()[1].doc  # no match: unchanged
    assert meta["joined"] == 1 and meta["missing"] == 1


def test_document_enrich_replace_overwrites() -> None:
    (c1, _), _ = run_enrich(strategy="replace")
    assert c1.doc["name"] == "Lamp"
    assert c1.doc["metadata"] == {"category": "x", "brand": "Acme"}


def test_document_enrich_fields_to_merge_into_output_field() -> None:
    (c1, _), _ = run_enrich(fields_to_merge=["price", "metadata.brand"], output_field="product")
    assert c1.doc["product"] == {"price": 20, "metadata": {"brand": "Acme"}}
    assert c1.doc["name"] == "old name"

    (c1, _), _ = run_enrich(output_field="enrichments.product")
    product = c1.doc["enrichments"]["product"]
    assert product["document_id"] == "p1" and product["name"] == "Lamp"


def test_document_enrich_append() -> None:
    (c1, _), _ = run_enrich(strategy="append", fields_to_merge=["name"])
    assert c1.doc["name"] == ["old name", "Lamp"]

    # join on a non-id field: sku S-1 matches p1 and p3, both appended in write order
    (c1, c2), meta = run_enrich(
        strategy="append", source_field="sku", target_field="sku",
        fields_to_merge=["name", "price"], output_field="matches",
    )  # fmt: skip
    assert c1.doc["matches"] == [{"name": "Lamp", "price": 20}, {"name": "Lamp v2", "price": 25}]
    assert "matches" not in c2.doc
    assert meta["multiple_matches"] == 1


def test_document_enrich_non_id_join_enrich_uses_earliest_match() -> None:
    (c1, _), _ = run_enrich(source_field="sku", target_field="sku", output_field="p")
    assert c1.doc["p"]["name"] == "Lamp"


def test_document_enrich_when_and_allow_missing() -> None:
    when = {"AND": [{"field": "metadata.category", "operator": "eq", "value": "y"}]}
    (c1, _), meta = run_enrich(when=when)
    assert "price" not in c1.doc  # not matching `when`: untouched
    assert meta["skipped_by_when"] == 1 and meta["missing"] == 1

    with pytest.raises(StageFailed, match="allow_missing is false"):
        run_enrich(allow_missing=False)
    (c1, _), meta = run_enrich(allow_missing=False, when={"metadata.category": "x"})
    assert c1.doc["price"] == 20


def test_document_enrich_deleted_target_fails_the_run() -> None:
    stores, cols = enrich_setup()
    stage = build("document_enrich", target_collection_id="col_gone")
    with pytest.raises(StageFailed) as exc:
        stage.run(make_ctx(stores, cols), enrich_cands())
    assert exc.value.message == "document_enrich: collection 'col_gone' no longer exists"


def test_document_enrich_resolves_target_by_name() -> None:
    (c1, _), meta = run_enrich(target_collection_id="products")
    assert meta["target_collection_id"] == "col_products"
    assert c1.doc["price"] == 20


def test_document_enrich_validation() -> None:
    cls = get_stage("document_enrich")
    assert cls is not None
    with pytest.raises(ValidationError):
        cls.Params.model_validate({})
    with pytest.raises(ValidationError):
        cls.Params.model_validate({"target_collection_id": "c", "strategy": "merge"})
    params = cls.Params.model_validate({"retriever_id": "ret_1"})
    with pytest.raises(ValidationFailed, match="document_enrich via retriever_id is not supported"):
        cls.validate_for(params, [])
    placeholder = cls.Params.model_validate({"target_collection_id": "{{COLLECTION_ID}}"})
    with pytest.raises(ValidationFailed, match="placeholder"):
        cls.validate_for(placeholder, [])
    cls.validate_for(cls.Params.model_validate({"target_collection_id": "col_x"}), [])


# ---------------------------------------------------------------------------------------------
# LLM stages

LLM_STAGES: dict[str, dict[str, Any]] = {
    "llm_filter": {},
    "llm_enrich": {"prompt": "Summarize {{DOC.content}}", "schema": {"type": "object"}},
    "summarize": {"group_by": "metadata.category"},
    "query_expand": {"feature_search_config": {"searches": []}},
}


@pytest.mark.parametrize("stage_id", sorted(LLM_STAGES))
def test_llm_stages_need_a_provider(stage_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STAGEWISE_LLM_PROVIDER", raising=False)
    cls = get_stage(stage_id)
    assert cls is not None
    params = cls.Params.model_validate(LLM_STAGES[stage_id])
    with pytest.raises(ValidationFailed) as exc:
        cls.validate_for(params, [])
    assert exc.value.status == 422
    assert exc.value.code == "llm_provider_missing"
    assert exc.value.message == (
        f"stage {stage_id} needs an LLM provider; configure STAGEWISE_LLM_PROVIDER and "
        "STAGEWISE_LLM_API_KEY"
    )
    with pytest.raises(ValidationFailed):
        cls(params).run(make_ctx(make_stores(), []), [Candidate("a", "c", 1.0)])


@pytest.mark.parametrize("stage_id", sorted(LLM_STAGES))
def test_llm_stages_never_fake_output(stage_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGEWISE_LLM_PROVIDER", "openai")
    cls = get_stage(stage_id)
    assert cls is not None
    params = cls.Params.model_validate(LLM_STAGES[stage_id])
    cls.validate_for(params, [])
    with pytest.raises(StageFailed, match="LLM provider calls are not implemented in this build"):
        cls(params).run(make_ctx(make_stores(), []), [Candidate("a", "c", 1.0)])


def test_llm_stage_categories() -> None:
    categories = {sid: getattr(get_stage(sid), "category", None) for sid in LLM_STAGES}
    assert categories == {
        "llm_filter": "filter",
        "llm_enrich": "apply",
        "summarize": "reduce",
        "query_expand": "filter",
    }


# ---------------------------------------------------------------------------------------------
# the Mixpeek SDK's serialised parameters are accepted as they are sent


@pytest.mark.slow  # importing the mixpeek SDK takes ~10 s
def test_sdk_parameter_payloads_validate() -> None:
    from mixpeek.models.stage_defs_logical_operator import StageDefsLogicalOperator
    from mixpeek.models.stage_params_document_enrich import StageParamsDocumentEnrich
    from mixpeek.models.stage_params_llm_enrich import StageParamsLlmEnrich
    from mixpeek.models.stage_params_llm_filter import StageParamsLlmFilter
    from mixpeek.models.stage_params_mmr import StageParamsMmr
    from mixpeek.models.stage_params_query_expand import StageParamsQueryExpand
    from mixpeek.models.stage_params_rerank import StageParamsRerank
    from mixpeek.models.stage_params_summarize import StageParamsSummarize

    # The constructors, not from_dict(): several from_dict() in the SDK reference `null`.
    when = StageDefsLogicalOperator.from_dict({"AND": [{"field": "a", "value": 1}]})
    payloads: dict[str, Any] = {
        "mmr": StageParamsMmr(var_lambda=0.4, diversity_feature_uri=URI_A),
        "rerank": StageParamsRerank(top_k=5),
        "document_enrich": StageParamsDocumentEnrich(target_collection_id="col_x", when=when),
        "llm_filter": StageParamsLlmFilter(),
        "llm_enrich": StageParamsLlmEnrich(var_schema={"type": "object"}),
        "summarize": StageParamsSummarize(),
        "query_expand": StageParamsQueryExpand(feature_search_config={}),
    }
    for stage_id, model in payloads.items():
        cls = get_stage(stage_id)
        assert cls is not None
        cls.Params.model_validate(model.to_dict())
    mmr = get_stage("mmr")
    assert mmr is not None
    parsed = mmr.Params.model_validate(payloads["mmr"].to_dict())
    assert parsed.model_dump()["lambda_"] == 0.4


# ---------------------------------------------------------------------------------------------
# against the real stores (SQLite metadata, qdrant-edge index)


def test_mmr_and_document_enrich_on_real_stores(tmp_path: Path) -> None:
    from stagewise.storage.index.edge import EdgeSearchIndex
    from stagewise.storage.payload import document_payload
    from stagewise.storage.protocols import IndexPoint
    from stagewise.storage.sql.store import SqlMetadataStore

    metadata = SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    index = EdgeSearchIndex(tmp_path / "index")
    try:
        metadata.create_namespace(NamespaceRecord(namespace_id=NS, namespace_name="test"))
        main = collection("col_main", "main", [spec(URI_A, "vec_a")])
        products = collection("col_products", "products", [spec(URI_A, "vec_a")])
        for col in (main, products):
            metadata.create_collection(col)
            index.ensure_collection(col)

        def put(col: CollectionRecord, docs: list[DocumentRecord]) -> None:
            written = metadata.upsert_documents(docs)
            index.upsert(
                col.collection_id,
                [IndexPoint(d.document_id, d.seq, d.vectors, document_payload(col, d))
                 for d in written],
            )  # fmt: skip

        put(main, [
            DocumentRecord(document_id=d, collection_id="col_main", namespace_id=NS,
                           fields={"sku": f"S-{d}"}, vectors={"vec_a": v})
            for d, v in VECTORS.items()
        ])  # fmt: skip
        put(products, [
            DocumentRecord(document_id="p1", collection_id="col_products", namespace_id=NS,
                           fields={"sku": "S-A", "name": "Lamp"}, vectors={"vec_a": [1.0, 0.0]}),
            DocumentRecord(document_id="p2", collection_id="col_products", namespace_id=NS,
                           fields={"sku": "S-C", "name": "Desk"}, vectors={"vec_a": [0.0, 1.0]}),
        ])  # fmt: skip
        stores = SimpleNamespace(
            settings=None, metadata=metadata, index=index, embedder=HashEmbedder()
        )
        cands = [Candidate(d, "col_main", SCORES[d], doc={"sku": f"S-{d}"}) for d in "ABCD"]
        ctx = make_ctx(stores, [main])
        mmr = build("mmr", **{"lambda": 0.5}).run(ctx, cands)
        assert ids(mmr.candidates) == ["A", "C", "B", "D"]
        enriched = build(
            "document_enrich", target_collection_id="products", source_field="sku",
            target_field="sku", fields_to_merge=["name"],
        ).run(ctx, mmr.candidates)  # fmt: skip
        names = {c.document_id: c.doc.get("name") for c in enriched.candidates}
        assert names == {"A": "Lamp", "B": None, "C": "Desk", "D": None}
        assert enriched.metadata["joined"] == 2
    finally:
        index.close()
        metadata.close()


# ---------------------------------------------------------------------------------------------
# through the runner: templates rendered, the alias accepted, statistics recorded


def test_mmr_then_rerank_through_the_runner() -> None:
    from stagewise.pipeline.runner import run_stages
    from stagewise.storage.protocols import ScoredHit

    stores, col, _ = mmr_setup()
    texts = {"A": "alpha", "B": "beta", "C": "gamma ray burst", "D": "delta"}

    def scroll(collection_id: str, flt: Any, limit: int, **kwargs: Any) -> list[ScoredHit]:
        return [ScoredHit(d, 0.0, {"document_id": d, "content": t}) for d, t in texts.items()]

    stores.index.scroll = scroll
    stages = [
        {"stage_name": "all", "config": {"stage_id": "attribute_filter", "parameters": {
            "field": "content", "operator": "exists", "value": True}}},
        {"stage_name": "diverse", "config": {"stage_id": "mmr", "parameters": {
            "lambda": 0.5, "top_k": 3, "diversity_feature_uri": URI_A}}},
        {"stage_name": "rr", "config": {"stage_id": "rerank",
                                      "parameters": {"combine": "replace"}}},
    ]  # fmt: skip
    budget = Budget(max_credits=None, max_time_ms=None)
    outcome = run_stages(
        stores=stores,
        namespace_id=NS,
        collections=[col],
        stages=stages,
        inputs={"query": "gamma ray"},
        request_filter=None,
        budget=budget,
    )
    assert outcome.error is None, outcome.error
    # equal relevance: MMR keeps A, then C (orthogonal to A), then B (0.8 from A, 0.6 from C,
    # against D's 0.8 from C; the tie goes to the earlier B); rerank puts the gamma doc first
    assert ids(outcome.candidates) == ["C", "A", "B"]
    assert outcome.stage_statistics["rr"]["metadata"]["scorer"] == "hash-maxsim"
    assert outcome.candidates[0].scores["mmr"] == pytest.approx(0.5)
    # rerank: 3 pairs x 0.01; mmr: 4 input documents x 0.001 (docs/credits.md)
    assert budget.credits_used == pytest.approx(3 * 0.01 + 4 * 0.001)


def test_rerank_fallback_fuses_with_the_incoming_order() -> None:
    """With the bi-encoder fallback the rerank order is fused (RRF) with the incoming one."""
    stores = make_stores()
    texts = {
        "cake": "Mix flour and sugar, then bake the cake for forty minutes.",
        "solar": "Solar panel efficiency rose again this year, panels convert more light.",
        "wind": "Wind turbines and solar panel farms share the grid.",
    }
    stage = build("rerank", query="solar panel efficiency")
    result = stage.run(make_ctx(stores, []), rerank_cands(texts))
    assert result.metadata["combine"] == "rrf"
    by_rerank = sorted(result.candidates, key=lambda c: -c.scores["rerank"])
    rerank_rank = {c.document_id: r for r, c in enumerate(by_rerank, start=1)}
    incoming = {"cake": 1, "solar": 2, "wind": 3}
    for c in result.candidates:
        expected = 1 / (60 + incoming[c.document_id]) + 1 / (60 + rerank_rank[c.document_id])
        assert c.score == pytest.approx(expected)
        assert c.scores["rerank_fused"] == pytest.approx(expected)
    assert [c.score for c in result.candidates] == sorted(
        (c.score for c in result.candidates), reverse=True
    )
