"""The conformance suite every `TaxonomyStore` backend must pass.

Subclass `TaxonomyStoreConformance` in a test module (class name starting with ``Test``) and
override the `taxonomies` fixture to yield a fresh, empty store for every test. Everything
is checked by value, through the protocol only.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stagewise.domain.taxonomy_records import TaxonomyRecord
from stagewise.errors import Conflict
from stagewise.ids import new_id
from stagewise.storage.taxonomy_store import TaxonomyStore

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
CONFIG = {
    "taxonomy_type": "flat",
    "retriever_id": "ret_abc",
    "input_mappings": [{"input_key": "query", "source_type": "payload", "path": "text"}],
    "source_collection": {"collection_id": "col_abc", "enrichment_fields": None},
    "top_k": 1,
}


def make_taxonomy(
    namespace_id: str, name: str | None = None, *, at: datetime = T0, **kw: Any
) -> TaxonomyRecord:
    return TaxonomyRecord(
        taxonomy_id=new_id("tax_"),
        namespace_id=namespace_id,
        taxonomy_name=name or new_id("name_"),
        config=kw.pop("config", CONFIG),
        created_at=at,
        updated_at=at,
        **kw,
    )


class TaxonomyStoreConformance:
    @pytest.fixture
    def taxonomies(self) -> TaxonomyStore:
        raise NotImplementedError("override the `taxonomies` fixture")

    def test_create_then_get_by_id_and_name_round_trips(self, taxonomies: TaxonomyStore) -> None:
        tax = make_taxonomy("ns_a", "topics", description="d", metadata={"k": [1, {"x": None}]})
        taxonomies.create_taxonomy(tax)
        assert taxonomies.get_taxonomy("ns_a", tax.taxonomy_id) == tax
        assert taxonomies.get_taxonomy("ns_a", "topics") == tax
        assert taxonomies.get_taxonomy("ns_a", "nope") is None

    def test_namespaces_are_isolated(self, taxonomies: TaxonomyStore) -> None:
        tax = make_taxonomy("ns_a", "topics")
        taxonomies.create_taxonomy(tax)
        assert taxonomies.get_taxonomy("ns_b", tax.taxonomy_id) is None
        assert taxonomies.get_taxonomy("ns_b", "topics") is None
        assert taxonomies.list_taxonomies("ns_b") == ([], 0)
        # The same name in another namespace is not a clash.
        taxonomies.create_taxonomy(make_taxonomy("ns_b", "topics"))

    def test_name_is_unique_per_namespace(self, taxonomies: TaxonomyStore) -> None:
        taxonomies.create_taxonomy(make_taxonomy("ns_a", "topics"))
        with pytest.raises(Conflict):
            taxonomies.create_taxonomy(make_taxonomy("ns_a", "topics"))
        assert taxonomies.list_taxonomies("ns_a")[1] == 1

    def test_an_id_wins_over_a_name_that_looks_like_it(self, taxonomies: TaxonomyStore) -> None:
        first = make_taxonomy("ns_a", "first")
        taxonomies.create_taxonomy(first)
        impostor = make_taxonomy("ns_a", first.taxonomy_id, at=T0 + timedelta(seconds=1))
        taxonomies.create_taxonomy(impostor)
        assert taxonomies.get_taxonomy("ns_a", first.taxonomy_id) == first

    def test_list_pages_oldest_first_with_total_and_search(self, taxonomies: TaxonomyStore) -> None:
        made = [make_taxonomy("ns_a", f"Tax_{i}%", at=T0 + timedelta(seconds=i)) for i in range(5)]
        for tax in reversed(made):
            taxonomies.create_taxonomy(tax)
        page, total = taxonomies.list_taxonomies("ns_a", offset=1, limit=2)
        assert total == 5 and page == made[1:3]
        assert taxonomies.list_taxonomies("ns_a", offset=10) == ([], 5)
        found, total = taxonomies.list_taxonomies("ns_a", search="tax_3")
        assert (found, total) == ([made[3]], 1)
        # LIKE wildcards in the search are literal characters.
        assert taxonomies.list_taxonomies("ns_a", search="_%")[1] == 0
        assert taxonomies.list_taxonomies("ns_a", search="3%")[1] == 1

    def test_update_replaces_and_keeps_names_unique(self, taxonomies: TaxonomyStore) -> None:
        tax = make_taxonomy("ns_a", "one")
        other = make_taxonomy("ns_a", "two")
        taxonomies.create_taxonomy(tax)
        taxonomies.create_taxonomy(other)
        renamed = tax.model_copy(
            update={"taxonomy_name": "uno", "metadata": {"a": 1}, "updated_at": T0 + timedelta(1)}
        )
        assert taxonomies.update_taxonomy(renamed) is True
        assert taxonomies.get_taxonomy("ns_a", "uno") == renamed
        assert taxonomies.get_taxonomy("ns_a", "one") is None
        with pytest.raises(Conflict):
            taxonomies.update_taxonomy(renamed.model_copy(update={"taxonomy_name": "two"}))
        assert taxonomies.get_taxonomy("ns_a", tax.taxonomy_id) == renamed
        ghost = make_taxonomy("ns_a", "ghost")
        assert taxonomies.update_taxonomy(ghost) is False
        assert taxonomies.get_taxonomy("ns_a", "ghost") is None

    def test_delete_and_delete_namespace(self, taxonomies: TaxonomyStore) -> None:
        a1, a2, b1 = (make_taxonomy(ns) for ns in ("ns_a", "ns_a", "ns_b"))
        for tax in (a1, a2, b1):
            taxonomies.create_taxonomy(tax)
        assert taxonomies.delete_taxonomy(a1.taxonomy_id) is True
        assert taxonomies.delete_taxonomy(a1.taxonomy_id) is False
        assert taxonomies.get_taxonomy("ns_a", a1.taxonomy_id) is None
        assert taxonomies.delete_namespace_taxonomies("ns_a") == 1
        assert taxonomies.list_taxonomies("ns_a") == ([], 0)
        assert taxonomies.list_taxonomies("ns_b") == ([b1], 1)
        # The name is free again once its taxonomy is gone.
        taxonomies.create_taxonomy(make_taxonomy("ns_b", b1.taxonomy_name + "x"))
        assert taxonomies.delete_taxonomy(b1.taxonomy_id) is True
        taxonomies.create_taxonomy(make_taxonomy("ns_b", b1.taxonomy_name))

    def test_concurrent_creates_of_one_name_admit_exactly_one(
        self, taxonomies: TaxonomyStore
    ) -> None:
        outcomes: list[str] = []
        lock = threading.Lock()

        def create() -> None:
            try:
                taxonomies.create_taxonomy(make_taxonomy("ns_a", "race"))
                result = "ok"
            except Conflict:
                result = "conflict"
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=create) for _ in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
