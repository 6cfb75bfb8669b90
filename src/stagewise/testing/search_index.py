"""The conformance suite every `SearchIndex` transport must pass.

Subclass `SearchIndexConformance` in a test module whose class name starts with ``Test`` and
override the `index` fixture so that it yields a fresh, empty index for every test::

    class TestMyIndex(SearchIndexConformance):
        @pytest.fixture
        def index(self, tmp_path: Path) -> Iterator[SearchIndex]:
            ix = MyIndex(tmp_path)
            yield ix
            ix.close()

Everything is checked by value, through the `SearchIndex` protocol only. What every
transport agrees on, beyond the protocol's types:

- An unknown collection raises KeyError from every per-collection method; dropping one is a
  no-op, and empty upserts, deletes and search batches return without looking.
- A payload comes back as written plus `_seq`; a transport's own bookkeeping stays hidden.
- Filters answer exactly as `stagewise.domain.filters.matches`, whatever the indexes.
- BM25 scores are `testing.search_index_data.reference_bm25` (live statistics).
- The collections here hold a few dozen points, which every transport searches
  exhaustively, so dense results equal brute force.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from stagewise.domain.filters import OPERATORS, FilterNode, Or, iter_leaves, matches, parse_filter
from stagewise.errors import FilterScanTooLarge
from stagewise.storage.index.facets import FACET_SCAN_LIMIT
from stagewise.storage.index.qdrant_filter import index_requirements, normalize_index_kind
from stagewise.storage.index.scan import reuse_residuals
from stagewise.storage.payload import SEQ_FIELD
from stagewise.storage.protocols import SearchIndex, SearchRequest
from stagewise.testing.search_index_data import (
    FILTER_CATALOGUE,
    IMAGE_VECTOR,
    TEXT_VECTOR,
    cosine,
    dot,
    filter_documents,
    make_collection,
    point,
    reference_bm25,
    unit,
)

SCORE_TOLERANCE = 1e-4  # f32 engines against f64 references

TEXTS = {
    "t_cat": "The cat sat quietly on the warm windowsill",
    "t_qubit": "Quantum computers use qubits to run quantum algorithms",
    "t_kitten": "A kitten napped in the afternoon sun by the window",
    "t_market": "Stock markets fell sharply after the announcement",
    "t_photo": "Photosynthesis converts sunlight into chemical energy",
    "t_runner": "The runner runs; running dogs ran after the runners",
    "t_stop": "the and of it is",  # stop words only: never matches
    "t_caps": "QUANTUM SUNLIGHT",
}


def _parse(raw: dict[str, Any]) -> FilterNode:
    node = parse_filter(raw)
    assert node is not None
    return node


def _ids(hits: list[Any]) -> list[str]:
    return [h.document_id for h in hits]


def _close(got: list[float], want: list[float], tol: float = 1e-6) -> bool:
    return len(got) == len(want) and all(
        math.isclose(a, b, abs_tol=tol) for a, b in zip(got, want, strict=True)
    )


class SearchIndexConformance:
    """Shared behaviour of every SearchIndex. Subclasses provide the `index` fixture."""

    # False for a transport whose payload indexes change no search plan (qdrant-client's
    # local mode: every search is exhaustive, so filtered fields are always "unindexed").
    indexes_change_plans: bool = True

    @pytest.fixture
    def index(self) -> SearchIndex:
        raise NotImplementedError("subclasses must provide an `index` fixture")

    # ---- helpers

    def _text_collection(self, index: SearchIndex) -> str:
        col = make_collection()
        index.ensure_collection(col)
        rng = random.Random(5)
        points = [
            point(d, i + 1, {"metadata": {"i": i, "even": i % 2 == 0}}, self._vectors(rng), text=t)
            for i, (d, t) in enumerate(TEXTS.items())
        ]
        index.upsert(col.collection_id, points)
        return col.collection_id

    def _vectors(self, rng: random.Random) -> dict[str, list[float]]:
        return {TEXT_VECTOR: unit(rng), IMAGE_VECTOR: [rng.uniform(-1, 1) for _ in range(4)]}

    def _filter_collection(
        self, index: SearchIndex
    ) -> tuple[str, list[dict[str, Any]], dict[str, dict[str, list[float]]]]:
        """A collection of `filter_documents()`: its id, the payloads and the vectors."""
        col = make_collection()
        index.ensure_collection(col)
        docs = filter_documents()
        rng = random.Random(9)
        vectors = {d["document_id"]: self._vectors(rng) for d in docs}
        index.upsert(
            col.collection_id,
            [
                point(d["document_id"], i + 1, d, vectors[d["document_id"]])
                for i, d in enumerate(docs)
            ],
        )
        return col.collection_id, docs, vectors

    # ---- collections

    def test_collection_lifecycle(self, index: SearchIndex) -> None:
        col = make_collection()
        index.ensure_collection(col)
        index.ensure_collection(col)  # idempotent
        cid = col.collection_id
        assert index.count(cid) == 0
        assert index.max_seq(cid) == 0
        index.upsert(cid, [point("a", 1, {}, text="alpha")])
        index.ensure_collection(col)  # keeps what it holds
        assert index.count(cid) == 1
        index.drop_collection(cid)
        with pytest.raises(KeyError):
            index.count(cid)
        index.drop_collection(cid)  # dropping what is gone is a no-op
        index.ensure_collection(col)  # re-created empty
        assert index.count(cid) == 0
        assert index.payloads(cid, ["a"]) == {}

    def test_unknown_collection_raises_key_error(self, index: SearchIndex) -> None:
        cid = "col_never_created"
        flt = _parse({"metadata.x": "y"})
        calls: list[Callable[[], object]] = [
            lambda: index.count(cid),
            lambda: index.count(cid, flt),
            lambda: index.max_seq(cid),
            lambda: list(index.filter_ids(cid, None)),
            lambda: list(index.filter_ids(cid, flt)),
            lambda: index.payloads(cid, ["a"]),
            lambda: index.vectors(cid, ["a"], TEXT_VECTOR),
            lambda: index.search(cid, [SearchRequest(limit=3, text="alpha")]),
            lambda: index.scroll(cid, None, 10),
            lambda: index.facet(cid, "metadata.x", 10, None),
            lambda: index.indexed_fields(cid),
            lambda: index.ensure_payload_index(cid, "metadata.x", "keyword"),
            lambda: index.upsert(cid, [point("a", 1, {})]),
            lambda: index.delete(cid, ["a"]),
        ]
        for call in calls:
            with pytest.raises(KeyError):
                call()
        # nothing to do: no lookup
        index.upsert(cid, [])
        index.delete(cid, [])
        assert index.search(cid, []) == []
        index.drop_collection(cid)

    def test_empty_collection(self, index: SearchIndex) -> None:
        col = make_collection()
        index.ensure_collection(col)
        cid = col.collection_id
        flt = _parse({"metadata.x": "y"})
        answers = index.search(
            cid,
            [
                SearchRequest(limit=5, vector_name=TEXT_VECTOR, vector=unit(random.Random(1))),
                SearchRequest(limit=5, text="alpha", filter=flt),
            ],
        )
        assert [a.hits for a in answers] == [[], []]
        assert index.count(cid, flt) == 0
        assert list(index.filter_ids(cid, None)) == []
        assert index.scroll(cid, None, 10) == []
        facets = index.facet(cid, "metadata.x", 10, None)
        assert facets.values == [] and facets.exact

    def test_text_only_collection(self, index: SearchIndex) -> None:
        col = make_collection(vectors=False)
        index.ensure_collection(col)
        cid = col.collection_id
        index.upsert(cid, [point(d, i + 1, {}, text=t) for i, (d, t) in enumerate(TEXTS.items())])
        (answer,) = index.search(cid, [SearchRequest(limit=3, text="kitten")])
        assert _ids(answer.hits) == ["t_kitten"]

    # ---- writes

    def test_upsert_overwrite_delete(self, index: SearchIndex) -> None:
        col = make_collection()
        index.ensure_collection(col)
        cid = col.collection_id
        rng = random.Random(2)
        first = [
            point(f"d{i}", i + 1, {"metadata": {"n": i}}, self._vectors(rng)) for i in range(3)
        ]
        index.upsert(cid, first)
        assert index.count(cid) == 3
        payloads = index.payloads(cid, ["d0", "d1", "d2", "missing"])
        assert set(payloads) == {"d0", "d1", "d2"}
        for p in first:
            assert payloads[p.document_id] == {**p.payload, SEQ_FIELD: p.seq}
        new_vec = self._vectors(rng)
        index.upsert(cid, [point("d1", 9, {"metadata": {"n": 100}, "extra": [1, 2]}, new_vec)])
        assert index.count(cid) == 3
        assert index.payloads(cid, ["d1"])["d1"]["metadata"] == {"n": 100}
        assert index.payloads(cid, ["d1"])["d1"]["extra"] == [1, 2]
        got = index.vectors(cid, ["d1"], TEXT_VECTOR)["d1"]
        assert _close(got, new_vec[TEXT_VECTOR])
        assert index.max_seq(cid) == 9
        index.delete(cid, ["d1", "never-there"])
        assert index.count(cid) == 2
        assert index.payloads(cid, ["d1"]) == {}
        assert index.max_seq(cid) == 3
        assert sorted(index.filter_ids(cid, None)) == ["d0", "d2"]

    def test_max_seq(self, index: SearchIndex) -> None:
        col = make_collection()
        index.ensure_collection(col)
        cid = col.collection_id
        seqs = [17, 3, 250, 42, 99]
        index.upsert(cid, [point(f"s{s}", s, {}) for s in seqs])
        assert index.max_seq(cid) == 250
        index.delete(cid, ["s250"])
        assert index.max_seq(cid) == 99

    def test_unicode_document_ids(self, index: SearchIndex) -> None:
        col = make_collection()
        index.ensure_collection(col)
        cid = col.collection_id
        ids = ["doc-ü", "東京/タワー", "emoji 😀 id", "a.b:c_d-e", "ID-with-CASE", "id-with-case"]
        rng = random.Random(4)
        index.upsert(cid, [point(d, i + 1, {}, self._vectors(rng)) for i, d in enumerate(ids)])
        assert sorted(index.filter_ids(cid, None)) == sorted(ids)
        assert set(index.payloads(cid, ids)) == set(ids)
        assert set(index.vectors(cid, ids, TEXT_VECTOR)) == set(ids)
        only = _parse({"field": "document_id", "operator": "eq", "value": "東京/タワー"})
        assert list(index.filter_ids(cid, only)) == ["東京/タワー"]
        index.delete(cid, ["emoji 😀 id"])
        assert index.count(cid) == len(ids) - 1

    # ---- filters

    @pytest.mark.parametrize("indexed", [False, True], ids=["unindexed", "indexed"])
    def test_filter_catalogue_matches_reference(self, index: SearchIndex, indexed: bool) -> None:
        cid, docs, _ = self._filter_collection(index)
        nodes = [_parse(raw) for raw in FILTER_CATALOGUE]
        seen_ops = {leaf_op for node in nodes for leaf_op in _operators(node)}
        assert seen_ops == set(OPERATORS), "the catalogue must cover every operator"
        if indexed:
            for node in nodes:
                for field, kind in index.wanted_indexes(node).items():
                    index.ensure_payload_index(cid, field, kind)
        stored = index.payloads(cid, [d["document_id"] for d in docs])
        for raw, node in zip(FILTER_CATALOGUE, nodes, strict=True):
            for ci in (False, True):
                expected = {d for d, p in stored.items() if matches(node, p, case_insensitive=ci)}
                got = {h.document_id for h in index.scroll(cid, node, 1000, case_insensitive=ci)}
                assert got == expected, (raw, ci, sorted(got ^ expected))
            expected = {d for d, p in stored.items() if matches(node, p)}
            assert set(index.filter_ids(cid, node)) == expected, raw
            assert index.count(cid, node) == len(expected), raw

    def test_count_with_and_without_filters(self, index: SearchIndex) -> None:
        cid, docs, _ = self._filter_collection(index)
        assert index.count(cid) == len(docs)
        assert index.count(cid, None) == len(docs)
        news = _parse({"metadata.category": "news"})
        expected = sum(1 for d in docs if matches(news, d))
        assert 0 < expected < len(docs)
        assert index.count(cid, news) == expected
        assert index.count(cid, Or(())) == 0  # an empty OR is false
        assert index.count(cid, _parse({"metadata.category": "no such value"})) == 0

    # ---- filters the engine cannot evaluate: bounded, counted, reused within a request

    def test_count_with_residual(self, index: SearchIndex) -> None:
        cid, docs, _ = self._filter_collection(index)
        index.scan_cap = 0
        for raw in (
            {"field": "metadata.category", "operator": "ends_with", "value": "s"},
            {
                "AND": [
                    {"metadata.nested.level": 1},
                    {"field": "metadata.category", "operator": "regex", "value": "^[a-n]"},
                ]
            },
            {
                "OR": [
                    {"metadata.count": 3},
                    {"field": "metadata.tags", "operator": "text", "value": "AL"},
                ]
            },
        ):
            node = _parse(raw)
            expected = sum(1 for d in docs if matches(node, d))
            assert index.count(cid, node) == expected, raw
            index.scan_cap = len(docs)  # a cap the collection stays within changes nothing
            assert index.count(cid, node) == expected, raw
            index.scan_cap = 0

    def test_residual_scan_cap(self, index: SearchIndex) -> None:
        cid, docs, _ = self._filter_collection(index)
        # regex has no engine prefilter: the candidates are exactly the native part's points
        ends = {"field": "metadata.category", "operator": "regex", "value": "s$"}
        wide = _parse({"AND": [{"field": "metadata.score", "operator": "gte", "value": -10}, ends]})
        level = {"metadata.nested.level": 2}
        narrow = _parse({"AND": [level, ends]})
        n_level = sum(1 for d in docs if matches(_parse(level), d))
        assert 2 < n_level < len(docs) - 2
        index.scan_cap = n_level  # the native part narrows to exactly the cap: it runs
        expected = {d["document_id"] for d in docs if matches(narrow, d)}
        assert set(index.filter_ids(cid, narrow)) == expected
        assert index.count(cid, narrow) == len(expected)
        hits = index.scroll(cid, narrow, 100)
        assert {h.document_id for h in hits} == expected
        vector = unit(random.Random(3))
        search = SearchRequest(limit=50, vector_name=TEXT_VECTOR, vector=vector, filter=narrow)
        assert set(_ids(index.search(cid, [search])[0].hits)) == expected
        index.scan_cap = n_level - 1  # one candidate more than the cap: refused, everywhere
        refused: list[Callable[[], object]] = [
            lambda: list(index.filter_ids(cid, narrow)),
            lambda: index.count(cid, narrow),
            lambda: index.scroll(cid, wide, 10),
            lambda: index.facet(cid, "metadata.category", 5, wide),
            lambda: index.search(cid, [SearchRequest(limit=5, text="cat", filter=wide)]),
        ]
        for call in refused:
            with pytest.raises(FilterScanTooLarge) as info:
                call()
            assert info.value.code == "filter_scan_too_large"
            assert info.value.status == 422
            assert info.value.details["field"] == "metadata.category"
            assert info.value.details["operator"] == "regex"
            assert info.value.details["scan_cap"] == n_level - 1
        index.scan_cap = 0  # no cap: every payload may be scanned
        assert index.count(cid, wide) == sum(1 for d in docs if matches(wide, d))

    def test_residuals_resolved_once_per_request(self, index: SearchIndex) -> None:
        cid, docs, _ = self._filter_collection(index)
        index.scan_cap = 0
        flt = _parse({"field": "metadata.category", "operator": "regex", "value": "s$"})
        same = _parse({"field": "metadata.category", "operator": "regex", "value": "s$"})
        native = _parse({"metadata.nested.level": 1})
        rng = random.Random(4)

        def req(node: FilterNode) -> SearchRequest:
            return SearchRequest(limit=5, vector_name=TEXT_VECTOR, vector=unit(rng), filter=node)

        before = index.residual_scans
        index.search(cid, [req(flt)])
        index.search(cid, [req(same)])
        index.search(cid, [req(native)])
        assert index.residual_scans == before + 2  # separate requests scan again
        with reuse_residuals():
            first = index.search(cid, [req(flt)])[0]
            second = index.search(cid, [req(same)])[0]  # an equal tree, another object
            index.count(cid, flt)
            index.search(cid, [req(native)])
        assert index.residual_scans == before + 3
        expected = {d["document_id"] for d in docs if matches(flt, d)}
        assert {h.document_id for h in first.hits + second.hits} <= expected
        assert first.filter_path == second.filter_path

    # ---- dense search

    def test_dense_search_matches_brute_force(self, index: SearchIndex) -> None:
        cid, _, vectors = self._filter_collection(index)
        rng = random.Random(21)
        for name, score in ((TEXT_VECTOR, cosine), (IMAGE_VECTOR, dot)):
            query = unit(rng) if name == TEXT_VECTOR else [rng.uniform(-1, 1) for _ in range(4)]
            (answer,) = index.search(cid, [SearchRequest(limit=7, vector_name=name, vector=query)])
            expected = {d: score(v[name], query) for d, v in vectors.items()}
            assert _ids(answer.hits) == sorted(expected, key=lambda d: -expected[d])[:7], name
            for hit in answer.hits:
                assert math.isclose(hit.score, expected[hit.document_id], abs_tol=SCORE_TOLERANCE)
            assert answer.filter_path is None and answer.unindexed_fields == ()

    def test_dense_search_filter_threshold_payload_vectors(self, index: SearchIndex) -> None:
        cid, docs, vectors = self._filter_collection(index)
        ids = [d["document_id"] for d in docs]
        vecs = {d: v[TEXT_VECTOR] for d, v in vectors.items()}
        payloads = index.payloads(cid, ids)
        query = unit(random.Random(33))
        flt = _parse({"field": "metadata.nested.level", "operator": "gte", "value": 2})
        ranked = sorted(
            (d for d in ids if matches(flt, payloads[d])), key=lambda d: -cosine(vecs[d], query)
        )
        scores = [cosine(vecs[d], query) for d in ranked]
        threshold = (scores[3] + scores[4]) / 2  # between two scores: no tie at the edge
        requests = [
            SearchRequest(limit=5, vector_name=TEXT_VECTOR, vector=query, filter=flt),
            SearchRequest(
                limit=50,
                vector_name=TEXT_VECTOR,
                vector=query,
                filter=flt,
                score_threshold=threshold,
            ),
            SearchRequest(
                limit=3,
                vector_name=TEXT_VECTOR,
                vector=query,
                with_payload=False,
                with_vectors=True,
            ),
        ]
        filtered, above, bare = index.search(cid, requests)
        assert _ids(filtered.hits) == ranked[:5]
        assert filtered.hits[0].payload == payloads[ranked[0]]
        assert _ids(above.hits) == ranked[:4]
        assert filtered.filter_path in ("indexed", "acorn", "exact")
        for hit in bare.hits:
            assert set(hit.payload) <= {"document_id"}
            assert hit.vectors is not None
            got = hit.vectors[TEXT_VECTOR]
            assert _close(got, vecs[hit.document_id])

    # ---- BM25

    def test_bm25_scores_follow_the_formula(self, index: SearchIndex) -> None:
        cid = self._text_collection(index)
        for query in ("quantum sunlight", "the running cat", "window kitten sun", "energy"):
            (answer,) = index.search(cid, [SearchRequest(limit=20, text=query)])
            want = reference_bm25(TEXTS, query)
            got = {h.document_id: h.score for h in answer.hits}
            assert set(got) == set(want), query
            for d, s in want.items():
                assert math.isclose(got[d], s, abs_tol=SCORE_TOLERANCE), (query, d)
            assert [h.score for h in answer.hits] == sorted(got.values(), reverse=True)
            assert answer.filter_path is None

    def test_bm25_stemming_stop_words_and_case(self, index: SearchIndex) -> None:
        cid = self._text_collection(index)
        requests = [
            SearchRequest(limit=10, text="RUN"),  # stems to "run": run, runs, running
            SearchRequest(limit=10, text="the and of"),  # stop words only
            SearchRequest(limit=10, text="qubit"),  # stems: qubits
            SearchRequest(limit=10, text="Quantum"),
        ]
        run, stop, qubit, quantum = index.search(cid, requests)
        assert set(_ids(run.hits)) == {"t_qubit", "t_runner"}  # "run" and "runs"/"running"
        assert stop.hits == []
        assert _ids(qubit.hits) == ["t_qubit"]
        assert set(_ids(quantum.hits)) == {"t_qubit", "t_caps"}

    def test_bm25_filtered_and_live_statistics(self, index: SearchIndex) -> None:
        cid = self._text_collection(index)
        even = _parse({"field": "metadata.even", "operator": "eq", "value": True})
        plain, filtered = index.search(
            cid,
            [
                SearchRequest(limit=10, text="quantum sun"),
                SearchRequest(limit=10, text="quantum sun", filter=even),
            ],
        )
        scores = {h.document_id: h.score for h in plain.hits}
        # a filter selects among the hits; it does not change the statistics
        assert filtered.hits and {h.document_id for h in filtered.hits} < set(scores)
        for hit in filtered.hits:
            assert math.isclose(hit.score, scores[hit.document_id], abs_tol=SCORE_TOLERANCE)
        assert filtered.filter_path == "exact"
        texts = dict(TEXTS)
        index.delete(cid, ["t_photo", "t_market"])
        index.upsert(cid, [point("t_cat", 50, {}, text="quantum cat quantum")])
        del texts["t_photo"], texts["t_market"]
        texts["t_cat"] = "quantum cat quantum"
        (answer,) = index.search(cid, [SearchRequest(limit=10, text="quantum sun")])
        want = reference_bm25(texts, "quantum sun")
        assert {h.document_id for h in answer.hits} == set(want)
        for hit in answer.hits:
            assert math.isclose(hit.score, want[hit.document_id], abs_tol=SCORE_TOLERANCE)

    def test_search_batch_keeps_request_order(self, index: SearchIndex) -> None:
        cid = self._text_collection(index)
        query = unit(random.Random(8))
        flt = _parse({"field": "metadata.i", "operator": "lt", "value": 4})
        requests = [
            SearchRequest(limit=2, text="kitten"),
            SearchRequest(limit=3, vector_name=TEXT_VECTOR, vector=query, filter=flt),
            SearchRequest(limit=2, text="the of"),
            SearchRequest(limit=1, vector_name=TEXT_VECTOR, vector=query),
        ]
        kitten, dense, empty, top = index.search(cid, requests)
        assert _ids(kitten.hits) == ["t_kitten"]
        assert len(dense.hits) == 3 and all(h.payload["metadata"]["i"] < 4 for h in dense.hits)
        assert empty.hits == []
        assert len(top.hits) == 1

    # ---- reads

    def test_scroll(self, index: SearchIndex) -> None:
        cid, docs, _ = self._filter_collection(index)
        everything = index.scroll(cid, None, 1000)
        assert sorted(_ids(everything)) == sorted(d["document_id"] for d in docs)
        assert all(h.score == 0.0 for h in everything)
        some = index.scroll(cid, None, 5)
        assert len(some) == 5 and set(_ids(some)) <= set(_ids(everything))
        flt = _parse({"field": "metadata.tags", "operator": "contains", "value": "a"})
        matching = {d["document_id"] for d in docs if matches(flt, d)}
        assert len(matching) > 2
        two = index.scroll(cid, flt, 2)
        assert len(two) == 2 and set(_ids(two)) <= matching
        assert two[0].payload["metadata"] == next(
            d["metadata"] for d in docs if d["document_id"] == two[0].document_id
        )

    def test_vectors_of_some_names(self, index: SearchIndex) -> None:
        col = make_collection()
        index.ensure_collection(col)
        cid = col.collection_id
        rng = random.Random(6)
        both = self._vectors(rng)
        index.upsert(
            cid,
            [point("both", 1, {}, both), point("text_only", 2, {}, {TEXT_VECTOR: unit(rng)})],
        )
        images = index.vectors(cid, ["both", "text_only", "missing"], IMAGE_VECTOR)
        assert set(images) == {"both"}
        assert _close(images["both"], both[IMAGE_VECTOR])
        assert set(index.vectors(cid, ["both", "text_only"], TEXT_VECTOR)) == {"both", "text_only"}

    # ---- facets and payload indexes

    def test_facets(self, index: SearchIndex) -> None:
        col = make_collection()
        index.ensure_collection(col)
        cid = col.collection_id
        rows: list[tuple[Any, int]] = [
            ("red", 1), ("red", 1), ("red", 1), ("red", 0), ("red", 0), ("blue", 1),
            ("blue", 0), ("blue", 0), ("green", 1), ("green", 0), (["red", "red", "blue"], 1),
        ]  # fmt: skip
        index.upsert(
            cid,
            [
                point(f"f{i}", i + 1, {"metadata": {"colour": c, "n": n}})
                for i, (c, n) in enumerate(rows)
            ]
            + [point("f_none", 99, {"metadata": {}})],
        )
        scanned = index.facet(cid, "metadata.colour", 2, None)
        assert scanned.values == [("red", 6), ("blue", 4)]
        assert scanned.exact and scanned.scanned == len(rows) + 1 <= FACET_SCAN_LIMIT
        odd = _parse({"metadata.n": 1})
        want_odd = [("red", 4), ("blue", 2), ("green", 1)]
        assert index.facet(cid, "metadata.colour", 10, odd).values == want_odd
        assert index.ensure_payload_index(cid, "metadata.colour", "keyword")
        engine = index.facet(cid, "metadata.colour", 10, None)
        assert engine.values == [("red", 6), ("blue", 4), ("green", 2)]
        assert engine.exact and engine.scanned is None
        assert index.facet(cid, "metadata.colour", 10, odd).values == want_odd

    def test_payload_indexes(self, index: SearchIndex) -> None:
        cid = self._text_collection(index)
        assert index.ensure_payload_index(cid, "metadata.i", "float")
        assert not index.ensure_payload_index(cid, "metadata.i", "float")
        assert index.ensure_payload_index(cid, "title", "text")
        kinds = {k: normalize_index_kind(v) for k, v in index.indexed_fields(cid).items()}
        assert kinds["metadata.i"] == "float" and kinds["title"] == "text"
        flt = _parse(
            {
                "AND": [
                    {"field": "metadata.i", "operator": "gte", "value": 2},
                    {"field": "title", "operator": "words", "value": "runs"},
                    {"metadata.cat": "x"},
                ]
            }
        )
        assert index.wanted_indexes(flt) == index_requirements(flt)
        assert index.wanted_indexes(flt) == {
            "metadata.i": "float",
            "title": "text",
            "metadata.cat": "keyword",
        }
        assert index.wanted_indexes(None) == {}

    def test_filter_paths_name_unindexed_fields(self, index: SearchIndex) -> None:
        cid = self._text_collection(index)
        query = unit(random.Random(12))
        flt = _parse({"field": "metadata.i", "operator": "gte", "value": 2})
        request = SearchRequest(limit=3, vector_name=TEXT_VECTOR, vector=query, filter=flt)
        (before,) = index.search(cid, [request])
        assert before.filter_path == "exact"
        assert before.unindexed_fields == ("metadata.i",)
        index.ensure_payload_index(cid, "metadata.i", "float")
        (after,) = index.search(cid, [request])
        assert _ids(after.hits) == _ids(before.hits)
        assert after.filter_path in ("indexed", "acorn", "exact")
        if self.indexes_change_plans:
            assert after.unindexed_fields == ()
        else:
            assert after.filter_path == "exact"


def _operators(node: FilterNode) -> set[str]:
    return {leaf.operator for leaf in iter_leaves(node)}
