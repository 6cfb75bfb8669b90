"""No field of an execution is a constant: every figure moves with the work.

One namespace holds corpora of different sizes (3 to 12 documents, one whose documents have
no `text`) and retrievers of different shapes: one search with facets; a hybrid search with a
templated pre-filter and facets, an attribute filter, a conditional join, a sort and an
uncached rerank; two searches, a join, a sort on the joined data and a cached rerank; a
filter as the first stage; budgets too small to finish (credits, time, credits in a later
stage); a hard timeout that passes; a failing stage that is skipped. They run with different
inputs (defaults, unknown keys, missing ones that relax a filter), request filters matching
more and fewer documents (and none), cache hits, and every pagination method with
continuations. Read through the official SDK (strict parsing) and as raw JSON, every leaf of
(i) the execute responses, (ii) the GET execution details and (iii) each stage's statistics
(by kind of stage) must take at least two distinct values across the runs, except the short
allowlists below (identities, echoes, type tags, and two figures that move only past 10,000
points), each with its reason.

The leaf walk is the one tests/sdk/test_no_constant_fields.py applies to namespaces and
collections. Maps keyed by data (stage names, collection ids, input names) become lists or are
compared whole, and so are a document's own fields (the corpus's text and metadata, joined
data): the engine's figures are what is under test."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.sdk.test_no_constant_fields import constant_paths, leaves
from tests.support.sdk_runs import Run, Space, dense, join_stage, search_stage, stage
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.sdk]

# The engine's own keys of a result document; the rest is the corpus's (compared whole).
ENGINE_KEYS = ("document_id", "collection_id", "score", "scores")
# Stages that keep no cache: their stage_cache_hit (and its alias cache_hit) are false by
# construction; test_stages_without_a_cache_never_claim_one holds them to it.
NO_CACHE = ("attribute_filter", "sort_attribute", "document_enrich")

STAGE_ALLOWLIST = {
    **{f"{kind}.stage_id": "type tag of the stage" for kind in (*NO_CACHE, "feature_search")},
    "rerank.stage_id": "type tag of the stage",
    "document_enrich.metadata.target_field": "echo of the join's parameter",
    "document_enrich.metadata.strategy": "echo of the join's parameter",
    "document_enrich.metadata.target_collection_id": "identity of the one joined collection",
    "rerank.metadata.inference_name": "echo of the requested model (the SDK's default)",
    "rerank.metadata.feature_uri": "echo of the parameter (a plug-in; unset)",
    "rerank.metadata.scorer": "the one scorer without STAGEWISE_RERANK_MODEL_DIR: minilm-maxsim",
    "feature_search.metadata.facets[].exact": "false only when a bounded scan of an unindexed "
    "key stops at 10,000 points",
}
EXECUTION_ALLOWLIST = {
    "limits": "filled only when a run ranks past RESULT_WINDOW (10,000 documents); no first "
    "stage here can (feature_search keeps at most 5,000)",
    "facets[].exact": STAGE_ALLOWLIST["feature_search.metadata.facets[].exact"],
    "interpretation.relaxations[].type": "type tag: the one kind of relaxation, filter_dropped",
    **{f"stage_statistics.stages[].{k}": v for k, v in STAGE_ALLOWLIST.items()},
}
DETAIL_ALLOWLIST = {
    **EXECUTION_ALLOWLIST,
    "pagination.method": "the detail route pages by offset, its one method",
    "pagination.scroll_id": "issued by execute's scroll method only, never by the detail",
}


def whole(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def normalise_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """One stage's statistics under its stage_id: a field constant within one kind of stage
    is a constant, whatever the other kinds do."""
    out = dict(stats)
    meta = dict(out.get("metadata") or {})
    flt = meta.get("filter")
    if isinstance(flt, dict) and isinstance(flt.get("paths"), dict):
        meta["filter"] = {**flt, "paths": whole(flt["paths"])}  # keyed by collection id
    out["metadata"] = meta
    return {stats["stage_id"]: out}


def normalise_document(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: doc[k] for k in ENGINE_KEYS if k in doc}
    scores = dict(out.get("scores") or {})
    if isinstance(scores.get("sources"), dict):  # keyed by the ranked list's name
        scores["sources"] = [{"list": k, **v} for k, v in scores["sources"].items()]
    out["scores"] = scores
    out["corpus_fields"] = whole({k: v for k, v in doc.items() if k not in ENGINE_KEYS})
    return out


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """An execution body with its data-keyed maps made lists (or compared whole)."""
    out = dict(body)
    stats = dict(out.get("stage_statistics") or {})
    stats["stages"] = [normalise_stats(v) for v in (stats.get("stages") or {}).values()]
    out["stage_statistics"] = stats
    out["documents"] = [normalise_document(d) for d in out.get("documents") or []]
    interpretation = dict(out.get("interpretation") or {})
    if "inferred_inputs" in interpretation:  # keyed by input name: the schema's defaults
        interpretation["inferred_inputs"] = whole(interpretation["inferred_inputs"])
    out["interpretation"] = interpretation
    return out


@dataclass
class Runs:
    """Every execution of the world: the execute answers and their GET details."""

    executes: list[Run] = field(default_factory=list)
    details: list[Run] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def stats(self) -> list[dict[str, Any]]:
        """Every stage statistics object, of the execute answers and of the details."""
        return [
            stats
            for run in self.executes + self.details
            for stats in ((run.raw.get("stage_statistics") or {}).get("stages") or {}).values()
        ]


def corpus(prefix: str, n: int, categories: list[str], brands: list[str]) -> list[dict[str, Any]]:
    """Documents whose text is long (past rerank's 100-character cut) for odd i; brands
    change every other document, so they do not move in step with the categories."""
    tail = " with a long appendix on gear, weather, water and the way home" * 2
    return [
        {
            "text": f"{prefix} {i}: notes on hiking, maps and trail food{tail if i % 2 else ''}",
            "metadata": {
                "category": categories[i % len(categories)],
                "year": 2000 + 3 * i,
                "brand": brands[(i // 2) % len(brands)],
                "season": ["summer", "winter"][i % 2],
            },
        }
        for i in range(n)
    ]


def pre_filter(field_name: str, operator: str, value: Any) -> dict[str, Any]:
    return {"AND": [{"field": field_name, "operator": operator, "value": value}]}


def build(server: ServerHandle) -> Runs:
    s = Space(server)
    s.collection("small", corpus("small", 5, ["a", "b"], ["acme", "zeta", "nova"]))
    s.collection("large", corpus("large", 12, ["x", "y", "z"], ["acme", "zeta", "nova"]))
    shards = [f"shard{i}" for i in range(3)]
    for name in shards:
        s.collection(name, [{"text": f"hiking notes in {name}"}])
    brand_rows = [("acme", "fr"), ("zeta", "de"), ("zeta", "at")]  # nova: none; zeta: two
    s.collection(
        "brands",
        [{"text": f"{c} gear", "metadata": {"code": c, "country": k}} for c, k in brand_rows],
    )
    # documents whose text field is `bio`: rerank finds no text to score
    s.collection(
        "profiles",
        [{"bio": f"a hiker who writes about maps, number {i}"} for i in range(3)],
        input_mappings={"text": "bio"},
    )
    runs = Runs()

    def run(
        label: str, rid: str, body: dict[str, Any], page: dict[str, int] | None = None, **query: Any
    ) -> Run:
        got = s.execute(rid, body, **query)
        runs.executes.append(got)
        runs.details.append(s.detail(rid, got.raw["execution_id"], **(page or {})))
        runs.labels.append(label)
        return got

    # one search with facets: a fresh run, the cache hit, offset pages (a request filter on
    # an unindexed field, another whose input is missing: dropped)
    basic = s.retriever(
        {
            "collection_identifiers": ["small"],
            "stages": [search_stage(final_top_k=3, facets=[{"key": "metadata.category"}])],
        }
    )
    run("fresh", basic, {"inputs": {"q": "trail food"}})
    run("cache hit", basic, {"inputs": {"q": "trail food"}})
    offset = {
        "inputs": {"q": "maps"},
        "filters": {
            "AND": [
                {"field": "metadata.year", "operator": "gte", "value": 2003},
                {"field": "metadata.category", "operator": "eq", "value": "{{INPUT.cat}}"},
            ]
        },
        "pagination": {"method": "offset", "page_size": 2},
    }
    run("offset page 1", basic, offset, page={"limit": 1, "offset": 1})
    offset["pagination"] = {"method": "offset", "page_size": 2, "page_number": 2}
    run("offset page 2", basic, offset)

    # hybrid search with a templated pre-filter and facets, an attribute filter, a join with
    # a condition, a sort and an uncached rerank of the leading three
    schema = {
        "q": {"type": "string"},
        "min_year": {"type": "integer", "default": 2000},
        "cats": {"type": "array", "items": {"type": "string"}},
        "brand": {"type": "string"},
        "kw": {"type": "string"},
    }
    pipeline = s.retriever(
        {
            "collection_identifiers": ["large"],
            "input_schema": schema,
            "budget_limits": {"max_credits": 50, "max_time_ms": 30000},
            "stages": [
                search_stage(
                    searches=[
                        dense(top_k=20, weight=0.7),
                        dense("{{INPUT.kw}}", top_k=20, weight=0.3, lexical=True, optional=True),
                    ],
                    fusion="weighted",
                    final_top_k=12,
                    facets=[{"key": "metadata.brand"}],
                    pre_filters=pre_filter("metadata.year", "gte", "{{INPUT.min_year}}"),
                ),
                stage(
                    "keep",
                    "attribute_filter",
                    field="metadata.category",
                    operator="in",
                    value="{{INPUT.cats}}",
                ),
                join_stage("brands", when=pre_filter("metadata.category", "ne", "y")),
                stage("newest", "sort_attribute", field="metadata.year", direction="desc"),
                stage(
                    "rerank",
                    "rerank",
                    query="{{INPUT.q}}",
                    document_field="text",
                    combine="replace",
                    max_candidates=3,
                    max_document_chars=100,
                    cache_behavior="disabled",
                ),
            ],
        }
    )
    every = {"q": "hiking maps", "kw": "maps", "cats": ["x", "y", "z"]}
    first = run(
        "keyset, more documents",
        pipeline,
        {"inputs": every, "pagination": {"method": "keyset", "limit": 4}},
        page={"limit": 2},
    )
    after = first.raw["pagination"]["after"]
    run(
        "keyset page 2",
        pipeline,
        {"inputs": every, "pagination": {"method": "keyset", "limit": 4, "after": after}},
    )
    run(
        "keyset, cache hit",
        pipeline,
        {"inputs": every, "pagination": {"method": "keyset", "limit": 4}},
    )
    by_brand = pre_filter("metadata.brand", "eq", "{{INPUT.brand}}")
    run(
        "scroll, fewer documents, request filters (one on an unindexed field), an unknown input",
        pipeline,
        {
            "inputs": {
                "q": "trail food",
                "min_year": 2012,
                "cats": ["x", "z"],
                "brand": "nova",
                "mood": "calm",
            },
            "filters": {
                "AND": [
                    *by_brand["AND"],
                    {"field": "metadata.season", "operator": "eq", "value": "winter"},
                ]
            },
            "pagination": {"method": "scroll", "limit": 1},
        },
    )
    run(
        "request filter relaxed, another unknown input",
        pipeline,
        {"inputs": {"q": "water", "cats": ["y"], "tone": "dry"}, "filters": by_brand},
    )
    run("the filter keeps nothing", pipeline, {"inputs": {"q": "water", "cats": ["w"]}})

    # two searches (the first skipped when its query input is missing), a pre-filter relaxed,
    # a join, a sort on the joined data, and a cached rerank, twice: the second is served by
    # the stage caches; then with both searches (fused by rrf)
    joined = s.retriever(
        {
            "collection_identifiers": ["small"],
            "input_schema": {
                "q": {"type": "string"},
                "alt": {"type": "string"},
                "exclude": {"type": "string"},
            },
            "stages": [
                search_stage(
                    searches=[dense("{{INPUT.alt}}", on_empty="skip"), dense()],
                    final_top_k=4,
                    pre_filters=pre_filter("metadata.brand", "ne", "{{INPUT.exclude}}"),
                ),
                join_stage("brands"),
                stage("by_country", "sort_attribute", field="brand_info.metadata.country"),
                stage("rerank", "rerank", query="{{INPUT.q}}", document_field="text", top_k=3),
            ],
        }
    )
    run("join and rerank", joined, {"inputs": {"q": "maps for hiking"}}, skip_cache=True)
    run("join and rerank again", joined, {"inputs": {"q": "maps for hiking"}}, skip_cache=True)
    run(
        "both searches",
        joined,
        {
            "inputs": {"q": "maps for hiking", "alt": "trail food"},
            # consistency_mode echoes what the read asked for (strong unless it says otherwise)
            "consistency": {"mode": "eventual", "max_staleness_ms": 1000},
        },
    )

    # a filter as the first stage: it scans the index
    scan = s.retriever(
        {
            "collection_identifiers": ["small"],
            "stages": [stage("only_a", "attribute_filter", field="metadata.category", value="a")],
        }
    )
    run("filter scan", scan, {"inputs": {}})

    # failures: the credits run out in the search, the clock in the search, the credits in
    # the rerank (the search costs 1 a search + 1 a query text + 0.001 a hit: 2.012 here)
    for label, limits, stages in [
        ("failed: credits", {"max_credits": 0.5}, [search_stage(final_top_k=5)]),
        (
            "failed: time",
            {"max_time_ms": 1},
            [search_stage(final_top_k=5, cache_behavior="disabled")],
        ),
        (
            "failed: credits in the rerank",
            {"max_credits": 2.02},
            [
                search_stage(final_top_k=4, cache_behavior="disabled"),
                stage("rerank", "rerank", query="{{INPUT.q}}"),
            ],
        ),
    ]:
        rid = s.retriever(
            {"collection_identifiers": ["large"], "budget_limits": limits, "stages": stages}
        )
        run(label, rid, {"inputs": {"q": "maps"}})

    # a hard timeout that passes before any collection is searched: degraded
    hurried = s.retriever(
        {
            "collection_identifiers": shards,
            "stages": [search_stage(final_top_k=5, hard_timeout_ms=1, cache_behavior="disabled")],
        }
    )
    run("degraded", hurried, {"inputs": {"q": "hiking"}})

    # a stage that fails at run time and is skipped; a pre-filter relaxed in another stage
    lenient = s.retriever(
        {
            "collection_identifiers": ["small"],
            "input_schema": {"q": {"type": "string"}, "year": {"type": "integer"}},
            "stages": [
                search_stage(
                    "find",
                    final_top_k=2,
                    pre_filters=pre_filter("metadata.year", "lt", "{{INPUT.year}}"),
                ),
                {**stage("rerank", "rerank", query="{{INPUT.absent}}"), "on_error": "skip"},
            ],
        }
    )
    run("skipped stage", lenient, {"inputs": {"q": "trail"}})

    # rerank over documents without a text field
    bios = s.retriever(
        {
            "collection_identifiers": ["profiles"],
            "stages": [search_stage(final_top_k=3), stage("rerank", "rerank")],
        }
    )
    run("nothing to rerank", bios, {"inputs": {"q": "maps", "query": "maps"}})
    return runs


@pytest.fixture(scope="module")
def runs(server: ServerHandle) -> Runs:
    return build(server)


def seen_paths(bodies: list[dict[str, Any]]) -> set[str]:
    values: dict[str, set[str]] = defaultdict(set)
    for body in bodies:
        leaves(body, "", values)
    return set(values)


# ---- the test the acceptance criteria ask for


def test_every_field_of_an_execute_response_moves_with_the_work(runs: Runs) -> None:
    bodies = [normalise(r.raw) for r in runs.executes]
    assert constant_paths(bodies, EXECUTION_ALLOWLIST) == {}
    # an allowlist entry for a field that is gone is stale
    assert set(EXECUTION_ALLOWLIST) <= seen_paths(bodies)


def test_every_field_of_an_execution_detail_moves_with_the_work(runs: Runs) -> None:
    bodies = [normalise(r.raw) for r in runs.details]
    assert constant_paths(bodies, DETAIL_ALLOWLIST) == {}
    assert set(DETAIL_ALLOWLIST) <= seen_paths(bodies)


def test_every_stage_statistic_moves_with_the_work(runs: Runs) -> None:
    bodies = [normalise_stats(s) for s in runs.stats()]
    assert constant_paths(bodies, STAGE_ALLOWLIST) == {}
    assert set(STAGE_ALLOWLIST) <= seen_paths(bodies)


# ---- what the moving figures mean


def test_the_runs_are_the_ones_described(runs: Runs) -> None:
    by_label = dict(zip(runs.labels, runs.executes, strict=True))
    statuses = {label: r.raw["status"] for label, r in by_label.items()}
    assert {k for k, v in statuses.items() if v == "failed"} == {
        "failed: credits",
        "failed: time",
        "failed: credits in the rerank",
    }
    hits = {label for label, r in by_label.items() if r.raw["cache_hit"]}
    assert hits == {"cache hit", "keyset, cache hit"}
    assert {label for label, r in by_label.items() if r.raw["degraded"]} == {
        "degraded",
        "skipped stage",
    }
    again = by_label["join and rerank again"].raw["stage_statistics"]["stages"]
    assert again["rerank"]["stage_cache_hit"] is again["search"]["stage_cache_hit"] is True
    for execute, detail in zip(runs.executes, runs.details, strict=True):
        assert detail.raw["execution_id"] == execute.raw["execution_id"]
        assert detail.raw["stage_statistics"] == execute.raw["stage_statistics"]


def test_efficiency_is_output_over_input_and_credits_add_up(runs: Runs) -> None:
    for stats in runs.stats():
        if "error" in stats:
            continue
        n_in, n_out = stats["input_count"], stats["output_count"]
        assert stats["efficiency"] == pytest.approx(n_out / n_in if n_in else 0.0), stats
        assert stats.get("cache_hit") is stats.get("stage_cache_hit")
    for run in runs.executes:
        body = run.raw
        if body["cache_hit"]:
            assert body["budget"]["credits_used"] == 0 and body["cached_at"] is not None
            continue
        stages = body["stage_statistics"]["stages"].values()
        total = sum(s.get("credits", 0.0) for s in stages)
        assert body["stage_statistics"]["credits_used"] == pytest.approx(total)


def test_a_first_stage_considers_every_document_of_its_collections(runs: Runs) -> None:
    # The degraded run passed hard_timeout_ms before searching: it considered nothing.
    pools = {"fresh": 5, "keyset, more documents": 12, "filter scan": 5, "degraded": 0}
    by_label = dict(zip(runs.labels, runs.executes, strict=True))
    for label, pool in pools.items():
        first = next(iter(by_label[label].raw["stage_statistics"]["stages"].values()))
        assert first["input_count"] == pool, label


def test_stages_without_a_cache_say_nothing_of_one(runs: Runs) -> None:
    seen = 0
    for stats in runs.stats():
        if stats["stage_id"] in NO_CACHE:
            seen += 1
            assert "stage_cache_hit" not in stats and "cache_hit" not in stats
        elif "error" not in stats:  # a failed stage served nothing, from a cache or not
            assert stats["stage_cache_hit"] is stats["cache_hit"]
    assert seen


def test_the_leaf_walk_reads_stage_statistics_by_kind() -> None:
    """A figure that moves in one kind of stage but is constant in another is reported."""
    a = {"stage_id": "a", "input_count": 1, "metadata": {}}
    b = {"stage_id": "b", "input_count": 7, "metadata": {}}
    bodies = [normalise_stats(x) for x in (a, {**a, "input_count": 2}, b, dict(b))]
    assert constant_paths(bodies, {}) == {
        "b.input_count": "7",
        "b.metadata": "{}",
        "b": whole({"input_count": 7, "metadata": {}, "stage_id": "b"}),
        "a.metadata": "{}",
        "a.stage_id": '"a"',
        "b.stage_id": '"b"',
    }
