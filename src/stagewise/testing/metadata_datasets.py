"""The evaluation-dataset part of the MetadataStore conformance suite (a mixin of
`stagewise.testing.metadata_store.MetadataStoreConformance`, so every backend runs it)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from stagewise.domain.evaluation_records import DatasetRecord, GroundTruthQuery
from stagewise.domain.records import NamespaceRecord
from stagewise.errors import Conflict
from stagewise.ids import new_id
from stagewise.storage.protocols import MetadataStore
from stagewise.testing.metadata_interactions import T0


def make_dataset(namespace_id: str, name: str, *, at: Any = T0, **kw: Any) -> DatasetRecord:
    queries = kw.pop(
        "queries",
        [
            GroundTruthQuery(
                query_id="q1",
                query_input={"q": "red shoes", "nested": {"n": [1, 2.5, None]}},
                relevant_documents=["doc_b", "doc_a"],
                relevance_scores={"doc_a": 1, "doc_b": 3, "doc_c": 0},
            ),
            GroundTruthQuery(query_id="q2", query_input={}, relevant_documents=["doc_z"]),
        ],
    )
    return DatasetRecord(
        dataset_id=new_id("ds_"),
        namespace_id=namespace_id,
        dataset_name=name,
        queries=queries,
        created_at=at,
        updated_at=at,
        **kw,
    )


class DatasetConformance:
    def test_dataset_round_trips_by_id_and_name_in_its_namespace(
        self, store: MetadataStore
    ) -> None:
        full = make_dataset("ns_a", "golden", description="d", metadata={"v": [1, "x"]})
        store.create_evaluation_dataset(full)
        assert store.get_evaluation_dataset("ns_a", full.dataset_id) == full
        assert store.get_evaluation_dataset("ns_a", "golden") == full
        got = store.get_evaluation_dataset("ns_a", "golden")
        assert got is not None and got.created_at.utcoffset() == timedelta(0)
        assert got.queries[0].relevant_documents == ["doc_b", "doc_a"]  # order kept
        assert store.get_evaluation_dataset("ns_b", full.dataset_id) is None
        assert store.get_evaluation_dataset("ns_b", "golden") is None
        assert store.get_evaluation_dataset("ns_a", "missing") is None

    def test_an_id_wins_over_a_dataset_named_like_it(self, store: MetadataStore) -> None:
        first = make_dataset("ns_a", "first")
        named_like = make_dataset("ns_a", first.dataset_id, at=T0 + timedelta(seconds=1))
        store.create_evaluation_dataset(first)
        store.create_evaluation_dataset(named_like)
        assert store.get_evaluation_dataset("ns_a", first.dataset_id) == first

    def test_dataset_names_are_unique_per_namespace(self, store: MetadataStore) -> None:
        kept = make_dataset("ns_a", "golden")
        store.create_evaluation_dataset(kept)
        store.create_evaluation_dataset(make_dataset("ns_b", "golden"))  # another namespace
        clash = make_dataset("ns_a", "golden", description="second")
        with pytest.raises(Conflict) as caught:
            store.create_evaluation_dataset(clash)
        assert caught.value.code == "dataset_name_taken"
        assert store.get_evaluation_dataset("ns_a", "golden") == kept
        assert store.get_evaluation_dataset("ns_a", clash.dataset_id) is None
        assert store.list_evaluation_datasets("ns_a", limit=10)[1] == 1

    def test_list_datasets_pages_oldest_first(self, store: MetadataStore) -> None:
        made = [make_dataset("ns_a", f"set-{i}", at=T0 + timedelta(seconds=i)) for i in (2, 0, 1)]
        for d in made:
            store.create_evaluation_dataset(d)
        store.create_evaluation_dataset(make_dataset("ns_b", "elsewhere"))
        names = ["set-0", "set-1", "set-2"]
        pages = [store.list_evaluation_datasets("ns_a", limit=2, offset=o) for o in (0, 2, 4)]
        assert [[d.dataset_name for d in page] for page, _ in pages] == [names[:2], names[2:], []]
        assert {total for _, total in pages} == {3}
        assert store.list_evaluation_datasets("ns_c", limit=10) == ([], 0)

    def test_deleting_a_namespace_deletes_its_datasets(self, store: MetadataStore) -> None:
        spaces = []
        for _ in range(2):
            ns = NamespaceRecord(
                namespace_id=new_id("ns_"),
                namespace_name=new_id("n_"),
                created_at=T0,
                updated_at=T0,
            )
            store.create_namespace(ns)
            spaces.append(ns.namespace_id)
        doomed, kept = (make_dataset(ns, "golden") for ns in spaces)
        store.create_evaluation_dataset(doomed)
        store.create_evaluation_dataset(kept)
        store.delete_namespace(spaces[0])
        assert store.get_evaluation_dataset(spaces[0], doomed.dataset_id) is None
        assert store.list_evaluation_datasets(spaces[0], limit=10) == ([], 0)
        assert store.get_evaluation_dataset(spaces[1], "golden") == kept
        store.create_evaluation_dataset(make_dataset(spaces[0], "golden"))  # name free again
