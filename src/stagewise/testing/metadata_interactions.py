"""The retriever-interaction part of the MetadataStore conformance suite (a mixin of
`stagewise.testing.metadata_store.MetadataStoreConformance`, so every backend runs it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stagewise.domain.interaction_records import InteractionQuery, InteractionRecord
from stagewise.domain.pipeline_records import RetrieverRecord
from stagewise.domain.records import NamespaceRecord
from stagewise.ids import new_id
from stagewise.storage.protocols import MetadataStore

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def make_interaction(
    namespace_id: str, *types: str, at: datetime = T0, **kw: Any
) -> InteractionRecord:
    return InteractionRecord(
        interaction_id=new_id("int_"),
        namespace_id=namespace_id,
        feature_id=kw.pop("feature_id", new_id("doc_")),
        interaction_types=list(types or ("click",)),
        position=kw.pop("position", 0),
        created_at=at,
        **kw,
    )


def ids(records: list[InteractionRecord]) -> list[str]:
    return [r.interaction_id for r in records]


class InteractionConformance:
    integrity_error: tuple[type[BaseException], ...]

    def test_interaction_round_trips_and_is_scoped_to_its_namespace(
        self, store: MetadataStore
    ) -> None:
        full = make_interaction(
            "ns_a",
            "view",
            "click",
            position=3,
            execution_id="exec_1",
            retriever_id="ret_1",
            user_id="u-1",
            session_id="s-1",
            metadata={"device": "mobile", "nested": {"n": [1, 2.5, None]}},
            query_snapshot={"q": "shoes"},
            document_score=0.875,
            result_set_size=10,
            feature_uri="mixpeek://text_extractor@v1/embedding",
            occurred_at=T0 - timedelta(days=3, microseconds=7),
        )
        bare = make_interaction("ns_a", "zero_results", at=T0 + timedelta(seconds=1))
        store.create_interactions([full, bare])
        assert store.get_interaction("ns_a", full.interaction_id) == full
        assert store.get_interaction("ns_a", bare.interaction_id) == bare
        got = store.get_interaction("ns_a", full.interaction_id)
        assert got is not None and got.created_at.utcoffset() == timedelta(0)
        assert store.get_interaction("ns_b", full.interaction_id) is None
        assert store.get_interaction("ns_a", "int_missing") is None

    def test_interaction_batch_is_all_or_nothing(self, store: MetadataStore) -> None:
        first = make_interaction("ns_a")
        store.create_interactions([first])
        fresh = make_interaction("ns_a")
        clash = first.model_copy(update={"feature_id": "other"})
        with pytest.raises(self.integrity_error):
            store.create_interactions([fresh, clash])
        assert store.get_interaction("ns_a", fresh.interaction_id) is None
        assert store.get_interaction("ns_a", first.interaction_id) == first
        assert store.list_interactions("ns_a", InteractionQuery(), limit=10)[1] == 1

    def test_list_interactions_filters_and_pages(self, store: MetadataStore) -> None:
        recs = [
            make_interaction(
                "ns_a",
                *types,
                at=T0 + timedelta(seconds=i),
                position=pos,
                execution_id=ex,
                retriever_id="ret_1" if ex else None,
                session_id=f"s{i % 2}",
                user_id=f"u{i % 3}",
                feature_id=f"doc_{i % 4}",
            )
            for i, (types, pos, ex) in enumerate(
                [
                    (("view", "click"), 0, "exec_1"),
                    (("view",), 1, "exec_1"),
                    (("click",), 2, "exec_2"),
                    (("positive_feedback",), 5, None),
                    (("view", "purchase"), 4, "exec_2"),
                    (("view",), 3, "exec_1"),
                ]
            )
        ]
        store.create_interactions(recs)
        store.create_interactions([make_interaction("ns_b", "view", execution_id="exec_1")])

        def listed(**kw: Any) -> list[str]:
            found, total = store.list_interactions("ns_a", InteractionQuery(**kw), limit=100)
            assert total == len(found)
            return ids(found)

        newest_first = ids(recs[::-1])
        assert listed() == newest_first
        assert listed(execution_id="exec_1") == ids([recs[5], recs[1], recs[0]])
        assert listed(retriever_id="ret_1") == [
            i for i in newest_first if i != recs[3].interaction_id
        ]
        assert listed(session_id="s1") == ids([recs[5], recs[3], recs[1]])
        assert listed(user_id="u0") == ids([recs[3], recs[0]])
        assert listed(feature_id="doc_0") == ids([recs[4], recs[0]])
        assert listed(interaction_type="click") == ids([recs[2], recs[0]])
        assert listed(interaction_type="view", execution_id="exec_2") == ids([recs[4]])
        assert listed(interaction_type="share") == []
        assert listed(since=T0 + timedelta(seconds=4)) == ids([recs[5], recs[4]])
        by_position = ids(sorted(recs, key=lambda r: r.position))
        assert listed(sort_field="position", descending=False) == by_position
        assert listed(sort_field="timestamp", descending=False) == ids(recs)

        pages = [
            store.list_interactions("ns_a", InteractionQuery(), limit=4, offset=off)
            for off in (0, 4, 8)
        ]
        assert [ids(p) for p, _ in pages] == [newest_first[:4], newest_first[4:], []]
        assert {total for _, total in pages} == {6}

    def test_count_interactions_by_type_per_execution(self, store: MetadataStore) -> None:
        store.create_interactions(
            [
                make_interaction("ns_a", "view", "click", execution_id="exec_1"),
                make_interaction("ns_a", "view", execution_id="exec_1"),
                make_interaction("ns_a", "view", "view", execution_id="exec_1"),
                make_interaction("ns_a", "purchase", execution_id="exec_2"),
                make_interaction("ns_a", "click"),  # no execution
                make_interaction("ns_b", "click", execution_id="exec_1"),
            ]
        )
        assert store.count_interactions("ns_a", "exec_1") == {"view": 3, "click": 1}
        assert store.count_interactions("ns_a", "exec_2") == {"purchase": 1}
        assert store.count_interactions("ns_b", "exec_1") == {"click": 1}
        assert store.count_interactions("ns_a", "exec_none") == {}

    def test_delete_interaction(self, store: MetadataStore) -> None:
        doomed = make_interaction("ns_a", "view", "click", execution_id="exec_1")
        kept = make_interaction("ns_a", "click", execution_id="exec_1")
        store.create_interactions([doomed, kept])
        assert store.delete_interaction("ns_b", doomed.interaction_id) is False
        assert store.get_interaction("ns_a", doomed.interaction_id) == doomed
        assert store.delete_interaction("ns_a", doomed.interaction_id) is True
        assert store.delete_interaction("ns_a", doomed.interaction_id) is False
        assert store.get_interaction("ns_a", doomed.interaction_id) is None
        assert store.count_interactions("ns_a", "exec_1") == {"click": 1}
        found, total = store.list_interactions("ns_a", InteractionQuery(), limit=10)
        assert (ids(found), total) == ([kept.interaction_id], 1)

    def test_deleting_a_retriever_or_namespace_deletes_its_interactions(
        self, store: MetadataStore
    ) -> None:
        spaces = []
        for _ in range(2):
            ns = NamespaceRecord(
                namespace_id=new_id("ns_"),
                namespace_name=new_id("n_"),
                created_at=T0,
                updated_at=T0,
            )
            store.create_namespace(ns)
            ret = RetrieverRecord(
                retriever_id=new_id("ret_"), namespace_id=ns.namespace_id, retriever_name="r"
            )
            store.create_retriever(ret)
            spaces.append((ns.namespace_id, ret.retriever_id))
        (ns_a, ret_a), (ns_b, ret_b) = spaces
        on_ret = make_interaction(ns_a, "click", execution_id="exec_a", retriever_id=ret_a)
        loose = make_interaction(ns_a, "zero_results")
        other = make_interaction(ns_b, "click", execution_id="exec_b", retriever_id=ret_b)
        store.create_interactions([on_ret, loose, other])

        store.delete_retriever(ret_a)
        assert store.get_interaction(ns_a, on_ret.interaction_id) is None
        assert store.count_interactions(ns_a, "exec_a") == {}
        assert store.get_interaction(ns_a, loose.interaction_id) == loose

        store.delete_namespace(ns_a)
        assert store.get_interaction(ns_a, loose.interaction_id) is None
        assert store.list_interactions(ns_a, InteractionQuery(), limit=10) == ([], 0)
        assert store.get_interaction(ns_b, other.interaction_id) == other
        assert store.count_interactions(ns_b, "exec_b") == {"click": 1}
