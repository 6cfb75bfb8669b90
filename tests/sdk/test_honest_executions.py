"""Executions that tell the truth, driven through the official SDK the way users write them.

* A cached run answers only while every collection any stage read (the retriever's own, a
  document_enrich join target) is unchanged: a document update or delete, the deletion of the
  collection, or its re-creation under the same name with other data each make the next run
  fresh; an unchanged world keeps answering from the cache.
* Templated filters (``{{INPUT.x}}`` and ``{"type": "dynamic"}``, string, integer and array
  inputs), in a stage's pre_filters or sent at execute time, select exactly the documents the
  input names.
* A second identical rerank is served by the stage's own cache and says so; the first stage's
  input_count is the pool it ranked.
* Reads (typeahead, facets) never create a payload index, whatever field a client names.
* Parameters this build does not implement are refused, naming the parameter; hard_timeout_ms
  degrades the run and lists what was skipped."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import mixpeek
import pytest
from mixpeek.models import AdhocExecuteRequest, CreateRetrieverRequest

from tests.support.sdk_runs import (
    Run,
    Space,
    dense,
    doc_ids,
    join_stage,
    search_stage,
    stage,
)
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.sdk]

BRANDS = ["acme", "zeta", "nova"]


def unique(text: str) -> str:
    """Text no earlier run embedded: the embedding caches start cold for it."""
    return f"{text} {uuid.uuid4().hex[:8]}"


def brand_rows(countries: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"text": f"brand {code}", "metadata": {"code": code, "country": country}}
        for code, country in countries.items()
    ]


def joined_countries(run: Run) -> dict[str, str | None]:
    """document id -> the joined brand's country (None: nothing joined)."""
    out = {}
    for d in run.raw["documents"]:
        info = d.get("brand_info") or {}
        out[d["document_id"]] = (info.get("metadata") or {}).get("country")
    return out


# ---------------------------------------------------------------------------------------------
# the result cache and what the run read


@pytest.fixture(scope="module")
def shop(server: ServerHandle) -> Space:
    """Products whose metadata.brand joins a brands collection's metadata.code."""
    space = Space(server)
    space.collection(
        "products",
        [
            {"text": f"trail running shoe model {i}", "metadata": {"brand": BRANDS[i % 2]}}
            for i in range(4)
        ],
    )
    return space


def _update_joined_document(s: Space, brands: str, ids: list[str], own: str) -> dict[str, str]:
    s.documents().patch_document(brands, ids[0], {"metadata": {"country": "jp"}})
    return {"acme": "jp", "zeta": "de"}


def _delete_joined_document(s: Space, brands: str, ids: list[str], own: str) -> dict[str, str]:
    s.documents().delete_document(brands, ids[1])
    return {"acme": "fr"}


def _delete_joined_collection(s: Space, brands: str, ids: list[str], own: str) -> None:
    mixpeek.CollectionsApi(s.client()).delete_collection(brands)


def _recreate_joined_collection(s: Space, brands: str, ids: list[str], own: str) -> dict[str, str]:
    mixpeek.CollectionsApi(s.client()).delete_collection(brands)
    s.collection(brands, brand_rows({"acme": "it", "zeta": "br"}))
    return {"acme": "it", "zeta": "br"}


def _write_own_collection(s: Space, brands: str, ids: list[str], own: str) -> dict[str, str]:
    s.add(own, [{"text": "trail running shoe model extra", "metadata": {"brand": "zeta"}}])
    return {"acme": "fr", "zeta": "de"}


def _nothing(s: Space, brands: str, ids: list[str], own: str) -> dict[str, str]:
    return {"acme": "fr", "zeta": "de"}


Mutation = Callable[[Space, str, list[str], str], "dict[str, str] | None"]
MUTATIONS: dict[str, Mutation] = {
    "update_joined_document": _update_joined_document,
    "delete_joined_document": _delete_joined_document,
    "delete_joined_collection": _delete_joined_collection,
    "recreate_joined_collection": _recreate_joined_collection,
    "write_own_collection": _write_own_collection,
    "unchanged_control": _nothing,
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_cached_run_is_reused_only_while_every_collection_it_read_is_unchanged(
    shop: Space, mutation: str
) -> None:
    # Each case joins a brands collection of its own; the write-own case also searches a
    # products collection of its own (the shared one must not change under the others).
    brands = f"brands-{uuid.uuid4().hex[:6]}"
    shop.collection(brands)
    ids = shop.add(brands, brand_rows({"acme": "fr", "zeta": "de"}))
    own = "products"
    if mutation == "write_own_collection":
        own = f"own-{uuid.uuid4().hex[:6]}"
        shop.collection(
            own,
            [
                {"text": f"trail running shoe model {i}", "metadata": {"brand": BRANDS[i % 2]}}
                for i in range(2)
            ],
        )
    rid = shop.retriever(
        {
            "collection_identifiers": [own],
            "stages": [search_stage(final_top_k=20), join_stage(brands)],
        }
    )
    query = {"inputs": {"q": "running shoe"}}
    first = shop.execute(rid, query)
    assert first.model.status == "completed" and first.raw["cache_hit"] is False
    expected = {"acme": "fr", "zeta": "de"}
    brand_of = {d["document_id"]: d["metadata"]["brand"] for d in first.raw["documents"]}
    assert joined_countries(first) == {i: expected[b] for i, b in brand_of.items()}

    again = shop.execute(rid, query)  # the world is as it was: the cache answers
    assert again.raw["cache_hit"] is True and again.model.cache_hit is True
    assert joined_countries(again) == joined_countries(first)

    now = MUTATIONS[mutation](shop, brands, ids, own)
    after = shop.execute(rid, query)
    if mutation == "unchanged_control":
        assert after.raw["cache_hit"] is True
        assert after.raw["documents"] == first.raw["documents"]
        return
    assert after.raw["cache_hit"] is False, f"{mutation}: served the stale run from the cache"
    if now is None:  # the joined collection is gone: the run fails, it is not the old answer
        assert after.model.status == "failed" and after.raw["documents"] == []
        assert brands in (after.raw["error"] or ""), after.raw["error"]
        return
    assert after.model.status == "completed"
    brand_of = {d["document_id"]: d["metadata"]["brand"] for d in after.raw["documents"]}
    assert joined_countries(after) == {i: now.get(b) for i, b in brand_of.items()}
    if mutation == "write_own_collection":
        assert len(after.raw["documents"]) == len(first.raw["documents"]) + 1
    # and the fresh run is what the cache answers next
    assert shop.execute(rid, query).raw["cache_hit"] is True


# ---------------------------------------------------------------------------------------------
# templated filters

CATALOG = [
    {"text": f"catalog item {i} about running gear", "metadata": {"brand": b, "year": y}}
    for i, (b, y) in enumerate(
        [(BRANDS[i % 3], 2018 + (i * 5) % 6) for i in range(12)],
    )
]


@pytest.fixture(scope="module")
def catalog(server: ServerHandle) -> tuple[Space, dict[str, dict[str, Any]]]:
    """The catalog, and each document's metadata by the id the server gave it."""
    space = Space(server)
    space.collection("catalog")
    ids = space.add("catalog", CATALOG)
    return space, {i: d["metadata"] for i, d in zip(ids, CATALOG, strict=True)}


def matching(meta: dict[str, dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> set[str]:
    return {i for i, m in meta.items() if keep(m)}


SCHEMA = {
    "q": {"type": "string"},
    "brand": {"type": "string"},
    "min_year": {"type": "integer"},
    "brands": {"type": "array", "items": {"type": "string"}},
}

PRE_FILTERS = {
    "template_string": (
        {"field": "metadata.brand", "operator": "eq", "value": "{{INPUT.brand}}"},
        "brand",
        ["acme", "nova"],
        lambda m, v: m["brand"] == v,
    ),
    "dynamic_string": (
        {
            "field": "metadata.brand",
            "operator": "eq",
            "value": {"type": "dynamic", "field": "inputs.brand"},
        },
        "brand",
        ["zeta", "acme"],
        lambda m, v: m["brand"] == v,
    ),
    "template_integer": (
        {"field": "metadata.year", "operator": "gte", "value": "{{INPUT.min_year}}"},
        "min_year",
        [2022, 2019],
        lambda m, v: m["year"] >= v,
    ),
    "dynamic_integer": (
        {
            "field": "metadata.year",
            "operator": "lt",
            "value": {"type": "dynamic", "field": "inputs.min_year"},
        },
        "min_year",
        [2020, 2023],
        lambda m, v: m["year"] < v,
    ),
}


@pytest.mark.parametrize("form", list(PRE_FILTERS))
def test_a_templated_pre_filter_selects_what_the_input_names(
    catalog: tuple[Space, dict[str, dict[str, Any]]], form: str
) -> None:
    space, meta = catalog
    leaf, name, values, keep = PRE_FILTERS[form]
    rid = space.retriever(
        {
            "collection_identifiers": ["catalog"],
            "input_schema": SCHEMA,
            "stages": [search_stage(final_top_k=50, pre_filters={"AND": [leaf]})],
        }
    )
    seen = []
    for value in values:
        run = space.execute(rid, {"inputs": {"q": "running gear", name: value}})
        assert run.model.status == "completed", run.raw["error"]
        expected = matching(meta, lambda m, v=value: keep(m, v))
        assert expected and expected != set(meta)  # the value really selects
        assert doc_ids(run) == expected, (form, value)
        assert all(keep(d["metadata"], value) for d in run.raw["documents"])
        seen.append(doc_ids(run))
    assert seen[0] != seen[1]


EXECUTE_FILTERS = {
    "templated_eq": (
        {"AND": [{"field": "metadata.brand", "operator": "eq", "value": "{{INPUT.brand}}"}]},
        {"brand": "zeta"},
        lambda m: m["brand"] == "zeta",
    ),
    "literal_eq": (
        {"AND": [{"field": "metadata.brand", "operator": "eq", "value": "nova"}]},
        {},
        lambda m: m["brand"] == "nova",
    ),
    "templated_integer_gte": (
        {"AND": [{"field": "metadata.year", "operator": "gte", "value": "{{INPUT.min_year}}"}]},
        {"min_year": 2021},
        lambda m: m["year"] >= 2021,
    ),
    "in_with_an_array_input": (
        {"AND": [{"field": "metadata.brand", "operator": "in", "value": "{{INPUT.brands}}"}]},
        {"brands": ["acme", "nova"]},
        lambda m: m["brand"] in ("acme", "nova"),
    ),
    "templated_and_literal_together": (
        {
            "AND": [
                {"field": "metadata.brand", "operator": "eq", "value": "{{INPUT.brand}}"},
                {"field": "metadata.year", "operator": "lt", "value": 2021},
            ]
        },
        {"brand": "acme"},
        lambda m: m["brand"] == "acme" and m["year"] < 2021,
    ),
}


@pytest.fixture(scope="module")
def catalog_retriever(catalog: tuple[Space, dict[str, dict[str, Any]]]) -> str:
    space, _ = catalog
    return space.retriever(
        {
            "collection_identifiers": ["catalog"],
            "input_schema": SCHEMA,
            "stages": [search_stage(final_top_k=50)],
        }
    )


@pytest.mark.parametrize("case", list(EXECUTE_FILTERS))
def test_execute_time_filters_select_what_they_name(
    catalog: tuple[Space, dict[str, dict[str, Any]]], catalog_retriever: str, case: str
) -> None:
    space, meta = catalog
    filters, inputs, keep = EXECUTE_FILTERS[case]
    expected = matching(meta, keep)
    assert expected and expected != set(meta)
    run = space.execute(
        catalog_retriever, {"inputs": {"q": "running gear", **inputs}, "filters": filters}
    )
    assert run.model.status == "completed", run.raw["error"]
    assert doc_ids(run) == expected
    assert all(keep(d["metadata"]) for d in run.raw["documents"])


def test_execute_time_and_stage_filters_combine(
    catalog: tuple[Space, dict[str, dict[str, Any]]],
) -> None:
    """A stage's dynamic pre-filter AND the request's templated filter, in one run."""
    space, meta = catalog
    rid = space.retriever(
        {
            "collection_identifiers": ["catalog"],
            "input_schema": SCHEMA,
            "stages": [
                search_stage(
                    final_top_k=50,
                    pre_filters={
                        "AND": [
                            {
                                "field": "metadata.year",
                                "operator": "gte",
                                "value": {"type": "dynamic", "field": "inputs.min_year"},
                            }
                        ]
                    },
                )
            ],
        }
    )
    filters = {"AND": [{"field": "metadata.brand", "operator": "in", "value": "{{INPUT.brands}}"}]}
    run = space.execute(
        rid,
        {"inputs": {"q": "gear", "min_year": 2020, "brands": ["zeta"]}, "filters": filters},
    )
    expected = matching(meta, lambda m: m["year"] >= 2020 and m["brand"] == "zeta")
    assert expected and doc_ids(run) == expected


# ---------------------------------------------------------------------------------------------
# stage caches and the first stage's figures


@pytest.mark.inprocess  # reads the server's stores directly
def test_a_second_identical_rerank_is_served_by_the_stage_cache(server: ServerHandle) -> None:
    space = Space(server)
    texts = [unique(f"a field guide to mountain birds, volume {i}") for i in range(5)]
    space.collection("guides", [{"text": t} for t in texts])
    query = unique("birds of the mountains")
    rid = space.retriever(
        {
            "collection_identifiers": ["guides"],
            "stages": [
                search_stage(final_top_k=3),
                stage("rerank", "rerank", query="{{INPUT.q}}", document_field="text"),
            ],
        }
    )
    body = {"inputs": {"q": query}}
    first = space.execute(rid, body, skip_cache=True)
    second = space.execute(rid, body, skip_cache=True)  # a fresh run, not the retriever cache
    for run in (first, second):
        assert run.model.status == "completed" and run.raw["cache_hit"] is False
    s1, s2 = (r.raw["stage_statistics"]["stages"] for r in (first, second))
    # first: the model embeds the query and each of the three short documents (one window
    # each); second: all of them come from the caches
    assert s1["rerank"]["stage_cache_hit"] is False and s2["rerank"]["stage_cache_hit"] is True
    assert s1["rerank"]["metadata"]["cache"] == {"behavior": "auto", "hits": 0, "misses": 3}
    assert s2["rerank"]["metadata"]["cache"] == {"behavior": "auto", "hits": 3, "misses": 0}
    assert s1["search"]["stage_cache_hit"] is False and s2["search"]["stage_cache_hit"] is True
    assert s2["search"]["metadata"]["cache"] == {"behavior": "auto", "hits": 1, "misses": 0}
    assert s2["rerank"]["metadata"]["scorer"] == "minilm-maxsim"
    # the SDK reads the same
    sdk_stats = second.model.stage_statistics.stages  # type: ignore[union-attr]
    assert sdk_stats["rerank"].stage_cache_hit is True
    assert [d["document_id"] for d in second.raw["documents"]] == [
        d["document_id"] for d in first.raw["documents"]
    ]

    # The first stage ranked every document of its collection; later stages their input.
    count = space.collection_body("guides")["document_count"]
    assert count == len(texts)
    search, rerank = s1["search"], s1["rerank"]
    assert search["input_count"] == count and search["output_count"] == 3
    assert search["efficiency"] == pytest.approx(3 / count)
    assert rerank["input_count"] == 3 and rerank["efficiency"] == pytest.approx(1.0)

    # cache_behavior 'disabled': the model runs every time, and no stage claims the cache
    off = space.retriever(
        {
            "collection_identifiers": ["guides"],
            "stages": [
                search_stage(final_top_k=3, cache_behavior="disabled"),
                stage("rerank", "rerank", document_field="text", cache_behavior="disabled"),
            ],
        }
    )
    runs = [space.execute(off, {"inputs": {"q": query, "query": query}}, skip_cache=True)]
    runs.append(space.execute(off, {"inputs": {"q": query, "query": query}}, skip_cache=True))
    for run in runs:
        stats = run.raw["stage_statistics"]["stages"]
        assert stats["rerank"]["stage_cache_hit"] is stats["search"]["stage_cache_hit"] is False
        assert stats["rerank"]["metadata"]["cache"] == {
            "behavior": "disabled",
            "hits": 0,
            "misses": 3,
        }


# ---------------------------------------------------------------------------------------------
# reads never write


def read_only_key(server: ServerHandle, space: Space) -> str:
    with server.client(server.admin_key) as http:
        resp = http.post("/v1/keys", json={"namespace": space.name, "read_only": True})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["key"])


def indexed(space: Space, collection: str) -> dict[str, str]:
    body = space.collection_body(collection)
    return {p["field_name"]: p["type"] for p in body["payload_indexes"]}


def facet_counts(facets: list[dict[str, Any]] | None) -> set[tuple[Any, int]]:
    (facet,) = facets or []
    return {(v["value"], v["count"]) for v in facet["values"]}


def test_reads_with_a_read_only_key_create_no_index(server: ServerHandle) -> None:
    admin = Space(server)
    rows = [
        {
            "text": f"shelf item {i}",
            "metadata": {"brand": BRANDS[i % 3], "secret_field": f"s{i % 2}"},
        }
        for i in range(6)
    ]
    admin.collection("shelf")
    ids = dict(zip(admin.add("shelf", rows), rows, strict=True))
    secrets = Counter(r["metadata"]["secret_field"] for r in rows)
    reader = admin.as_key(read_only_key(server, admin))
    with pytest.raises(mixpeek.ApiException) as denied:  # the key really is read-only
        reader.retriever({"collection_identifiers": ["shelf"], "stages": [search_stage()]})
    assert denied.value.status == 403
    before = indexed(admin, "shelf")
    assert "metadata.secret_field" not in before

    def adhoc_facets(key: str) -> set[tuple[Any, int]]:
        got = mixpeek.AdhocRetrieversApi(reader.client()).execute_adhoc_retriever(
            AdhocExecuteRequest.from_dict(
                {
                    "collection_identifiers": ["shelf"],
                    "input_schema": {"q": {"type": "string"}},
                    "inputs": {"q": "shelf"},
                    "stages": [search_stage(final_top_k=10, facets=[{"key": key}])],
                }
            )
        )
        assert got["status"] == "completed"  # the SDK types this answer as a plain object
        return facet_counts(got["facets"])

    def typeahead(field: str, q: str) -> set[tuple[Any, int]]:
        got = reader.retrievers().typeahead_retrievers(q=q, fields=field)
        return {(v.value, v.count) for v in got.values}

    # a field no retriever names: typeahead, then facets through an adhoc execute
    assert typeahead("metadata.secret_field", "s") == set(secrets.items())
    assert indexed(admin, "shelf") == before
    assert adhoc_facets("metadata.secret_field") == set(secrets.items())
    assert indexed(admin, "shelf") == before

    # Creating a retriever (a write) indexes the fields it facets and filters on: brand.
    rid = admin.retriever(
        {
            "collection_identifiers": ["shelf"],
            "stages": [search_stage(final_top_k=10, facets=[{"key": "metadata.brand"}])],
        }
    )
    before = indexed(admin, "shelf")
    assert "metadata.brand" in before and "metadata.secret_field" not in before

    # the existing retriever, filtered at execute time on that field
    run = reader.execute(
        rid,
        {
            "inputs": {"q": "shelf"},
            "filters": {"AND": [{"field": "metadata.secret_field", "value": "s1"}]},
        },
    )
    assert doc_ids(run) == {i for i, r in ids.items() if r["metadata"]["secret_field"] == "s1"}
    assert facet_counts(run.raw["facets"]) == {
        (b, n)
        for b, n in Counter(
            r["metadata"]["brand"] for r in rows if r["metadata"]["secret_field"] == "s1"
        ).items()
    }
    assert indexed(admin, "shelf") == before

    # a field added after the retriever was created: typeahead, adhoc facets, and the
    # retriever filtered on it at execute time
    color = {doc_id: f"c{n % 3}" for n, doc_id in enumerate(sorted(ids))}
    for doc_id, value in color.items():
        admin.documents().patch_document("shelf", doc_id, {"metadata": {"color": value}})
    before = indexed(admin, "shelf")
    assert "metadata.color" not in before
    colors = set(Counter(color.values()).items())
    assert typeahead("metadata.color", "c") == colors
    assert adhoc_facets("metadata.color") == colors
    run = reader.execute(
        rid,
        {
            "inputs": {"q": "shelf"},
            "filters": {"AND": [{"field": "metadata.color", "operator": "eq", "value": "c2"}]},
        },
    )
    assert doc_ids(run) == {i for i, c in color.items() if c == "c2"}
    assert indexed(admin, "shelf") == before


# ---------------------------------------------------------------------------------------------
# refused parameters and hard timeouts

REFUSED = {
    "feature_search.learning_config": ("learning_config", {"learning_config": {"k": 1}}, None),
    "feature_search.query_preprocessing": (
        "query_preprocessing",
        {"query_preprocessing": {"split": True}},
        None,
    ),
    "feature_search.searches[].query_preprocessing": (
        "query_preprocessing",
        {},
        {"query_preprocessing": {"split": True}},
    ),
    "feature_search.degrade_retry": ("degrade_retry", {"degrade_retry": True}, None),
    "feature_search.unknown_key": ("frobnicate_level", {"frobnicate_level": 3}, None),
    "feature_search.cache_behavior_aggressive": (
        "aggressive",
        {"cache_behavior": "aggressive"},
        None,
    ),
    "rerank.decision_model": ("decision_model", {"decision_model": "gpt"}, None),
    "rerank.relevance_criteria": ("relevance_criteria", {"relevance_criteria": "fresh"}, None),
    "rerank.learning_config": ("learning_config", {"learning_config": {"k": 1}}, None),
    "rerank.cache_behavior_aggressive": ("aggressive", {"cache_behavior": "aggressive"}, None),
}


@pytest.fixture(scope="module")
def plain(server: ServerHandle) -> Space:
    space = Space(server)
    space.collection("plain", [{"text": "one plain document"}])
    return space


@pytest.mark.parametrize("case", list(REFUSED))
def test_an_unimplemented_parameter_is_refused_by_name(plain: Space, case: str) -> None:
    named, params, search_extra = REFUSED[case]
    if case.startswith("rerank"):
        stages = [search_stage(), stage("rerank", "rerank", **params)]
    else:
        stages = [search_stage(searches=[dense(**(search_extra or {}))], **params)]
    body = {"retriever_name": f"r-{uuid.uuid4().hex[:8]}", "collection_identifiers": ["plain"]}
    with pytest.raises(mixpeek.ApiException) as refused:
        plain.retrievers().create_retriever(
            CreateRetrieverRequest.from_dict({**body, "stages": stages})
        )
    assert refused.value.status == 422
    assert named in str(refused.value.body)


def test_hard_timeout_ms_degrades_the_run_and_lists_what_it_skipped(
    server: ServerHandle,
) -> None:
    space = Space(server)
    shards = [f"shard{i}" for i in range(4)]
    for name in shards:
        space.collection(name, [{"text": f"a note kept in {name}"}, {"text": f"{name} again"}])
    query = unique("notes kept in shards")
    # Query embedding (cache disabled: the model runs every time) takes longer than 1 ms, so
    # the deadline has passed before the first collection is searched.
    rid = space.retriever(
        {
            "collection_identifiers": shards,
            "stages": [search_stage(final_top_k=10, hard_timeout_ms=1, cache_behavior="disabled")],
        }
    )
    run = space.execute(rid, {"inputs": {"q": query}})
    assert run.model.status == "completed" and run.raw["documents"] == []
    degraded = run.raw["degraded"]
    assert {(d["resource"], d["id"], d["stage"]) for d in degraded} == {
        ("collection", space.ids[name], "search") for name in shards
    }
    assert all("hard_timeout_ms" in d["reason"] and d["next_step"] for d in degraded)
    assert run.model.degraded is not None and len(run.model.degraded) == len(shards)
    # nothing was searched, so nothing was considered
    assert run.raw["stage_statistics"]["stages"]["search"]["input_count"] == 0
    # a degraded answer is never what the cache serves next
    assert space.execute(rid, {"inputs": {"q": query}}).raw["cache_hit"] is False

    # Without the timeout the same search answers from every collection.
    whole = space.retriever(
        {"collection_identifiers": shards, "stages": [search_stage(final_top_k=10)]}
    )
    full = space.execute(whole, {"inputs": {"q": query}})
    assert full.raw["degraded"] == [] and len(full.raw["documents"]) == 2 * len(shards)
    assert full.raw["stage_statistics"]["stages"]["search"]["input_count"] == 2 * len(shards)

    # rerank past its timeout keeps the incoming order and says so
    rr = space.retriever(
        {
            "collection_identifiers": shards,
            "stages": [
                search_stage(final_top_k=8),
                stage(
                    "rerank",
                    "rerank",
                    query="{{INPUT.q}}",
                    document_field="text",
                    hard_timeout_ms=1,
                    cache_behavior="disabled",
                    batch_size=1,
                ),
            ],
        }
    )
    late = space.execute(rr, {"inputs": {"q": query}})
    assert late.model.status == "completed"
    assert [d["document_id"] for d in late.raw["documents"]] == [
        d["document_id"] for d in full.raw["documents"]
    ][:8]
    assert [(d["resource"], d["id"], d["stage"]) for d in late.raw["degraded"]] == [
        ("stage", "rerank", "rerank")
    ]
    assert any("hard_timeout_ms" in w for w in late.raw["warnings"])


def test_a_skipped_failing_stage_is_listed_as_degraded(plain: Space) -> None:
    rid = plain.retriever(
        {
            "collection_identifiers": ["plain"],
            "stages": [
                search_stage(final_top_k=5),
                {**stage("rerank", "rerank", query="{{INPUT.missing}}"), "on_error": "skip"},
            ],
        }
    )
    run = plain.execute(rid, {"inputs": {"q": "plain"}})
    assert run.model.status == "completed" and len(run.raw["documents"]) == 1
    (entry,) = run.raw["degraded"]
    assert (entry["resource"], entry["id"], entry["stage"]) == ("stage", "rerank", "rerank")
    assert "query" in entry["reason"]


def test_a_templated_facet_key_is_rendered_per_execution(server: ServerHandle) -> None:
    """The key names its field per request: the retriever is created without indexing it.
    A key that is no field path fails the run (rendered) or the creation (literal) with a
    message, never a dropped connection."""
    space = Space(server)
    rows = [
        {"text": f"tile {i}", "metadata": {"brand": BRANDS[i % 3], "size": f"s{i % 2}"}}
        for i in range(6)
    ]
    space.collection("tiles", rows)
    rid = space.retriever(
        {
            "collection_identifiers": ["tiles"],
            "input_schema": {"q": {"type": "string"}, "by": {"type": "string"}},
            "stages": [search_stage(final_top_k=10, facets=[{"key": "metadata.{{INPUT.by}}"}])],
        }
    )
    assert indexed(space, "tiles") == {}
    for field in ("brand", "size"):
        run = space.execute(rid, {"inputs": {"q": "tile", "by": field}})
        assert facet_counts(run.raw["facets"]) == set(
            Counter(r["metadata"][field] for r in rows).items()
        )
    bad = space.execute(rid, {"inputs": {"q": "tile", "by": "no such field!"}})
    assert bad.model.status == "failed" and "facet key" in (bad.model.error or "")
    with pytest.raises(mixpeek.ApiException) as refused:
        space.retriever(
            {"collection_identifiers": ["tiles"], "stages": [search_stage(facets=[{"key": "a b"}])]}
        )
    assert refused.value.status == 422
