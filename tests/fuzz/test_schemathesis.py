"""Schemathesis against our own OpenAPI document, in process (ASGI, no network), the app's
lifespan running: every operation fuzzed (examples, coverage and fuzzing phases, valid and
invalid inputs), then the stateful links (create retriever -> execute -> get execution ->
list executions). Required: no 5xx, and every response true to the schema (status code
documented, content type documented, body valid against its documented schema), a 405
carrying Allow. Seeded and bounded: the same cases on every run, a few minutes on 2 cores.

A failure names the operation and the request (as a curl line): either the route answers
something it should not (fix the route, a 500 is always a missing validation) or the
document says something untrue (fix api/schemas/)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis.errors import Flaky
from schemathesis.config import SchemathesisConfig
from schemathesis.engine.errors import is_inconsistent_replay
from schemathesis.python import asgi

from stagewise.api.app import create_app
from stagewise.config import Settings

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

SEED = 20240611
ADMIN = "sk_fuzz_admin_key_for_schemathesis"
NAMESPACE = "fuzz-ns"
COLLECTION = "fuzz-docs"
DENSE_URI = "mixpeek://text_extractor@v1/all_minilm_l6_v2"
MAX_EXAMPLES = 60  # per operation and phase; the fuzzing phase stops early on small inputs
STATEFUL_SCENARIOS = 60
STATEFUL_STEPS = 6
MAX_SUITES = 10
MIN_CASES = 2000

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",  # a 405 for an undocumented method, with Allow
)

TEXTS = [
    "The cat sat quietly on the warm windowsill",
    "Quantum computers use qubits to run algorithms",
    "Stock markets fell sharply after the announcement",
    "Photosynthesis converts sunlight into chemical energy",
]


class Tally:
    """Cases sent and statuses answered, per operation; stateful steps; time spent."""

    def __init__(self) -> None:
        self.statuses: dict[str, dict[int, int]] = {}
        self.stateful: dict[str, dict[int, int]] = {}
        self.seconds = 0.0

    @staticmethod
    def _add(into: dict[str, dict[int, int]], label: str, status: int) -> None:
        counts = into.setdefault(label, {})
        counts[status] = counts.get(status, 0) + 1

    def add(self, label: str, status: int, *, stateful: bool = False) -> None:
        self._add(self.statuses, label, status)
        if stateful:
            self._add(self.stateful, label, status)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values())

    @property
    def steps(self) -> int:
        return sum(sum(c.values()) for c in self.stateful.values())


TALLY = Tally()


def _ok(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


SEARCH = {"feature_uri": DENSE_URI, "query": {"input_mode": "text", "value": "{{INPUT.q}}"}}
VALID_RETRIEVER: dict[str, Any] = {
    "collection_identifiers": [COLLECTION],
    "input_schema": {"q": {"type": "text"}},
    "stages": [
        {
            "stage_name": "search",
            "config": {
                "stage_id": "feature_search",
                "parameters": {"searches": [SEARCH], "final_top_k": 10},
            },
        }
    ],
}


def _retriever(client: asgi.ASGIClient, headers: dict[str, str], name: str) -> str:
    body = {**VALID_RETRIEVER, "retriever_name": name}
    return str(_ok(client.post("/v1/retrievers", json=body, headers=headers))["retriever_id"])


def _seed(client: asgi.ASGIClient) -> dict[str, list[str]]:
    """A namespace with a collection, documents, a retriever and executions for path ids to
    reach (the dictionaries the fuzzer draws ids from), and disposable ones for DELETEs."""
    auth = {"Authorization": f"Bearer {ADMIN}"}
    ids: dict[str, list[str]] = {}

    def namespace(name: str) -> str:
        body = {"namespace_name": name}
        return str(_ok(client.post("/v1/namespaces", json=body, headers=auth))["namespace_id"])

    ns = namespace(NAMESPACE)
    ids["namespaces"], ids["spare_namespaces"] = [ns], [namespace("fuzz-spare")]
    scoped = {**auth, "X-Namespace": ns}

    def collection(name: str) -> str:
        body = {
            "collection_name": name,
            "source": {"type": "direct_upsert"},
            "feature_extractor": {"feature_extractor_name": "text_extractor"},
        }
        return str(_ok(client.post("/v1/collections", json=body, headers=scoped))["collection_id"])

    ids["collections"] = [collection(COLLECTION)]
    spare = collection("fuzz-spare")
    ids["spare_collections"] = [spare]

    def document(col: str, i: int, text: str) -> str:
        body = {"text": text, "metadata": {"n": i}}
        created = _ok(client.post(f"/v1/collections/{col}/documents", json=body, headers=scoped))
        return str(created["document_id"])

    ids["documents"] = [document(COLLECTION, i, t) for i, t in enumerate(TEXTS)]
    ids["spare_documents"] = [document(COLLECTION, 9, "A spare note")]
    rid = _retriever(client, scoped, "fuzz-retriever")
    ids["retrievers"], ids["spare_retrievers"] = [rid], [_retriever(client, scoped, "fuzz-spare")]
    execute = f"/v1/retrievers/{rid}/execute"
    named = _ok(client.post(execute, json={"inputs": {"q": "cats"}}, headers=scoped))
    adhoc_body = {
        "collection_identifiers": [COLLECTION],
        "stages": client.get(f"/v1/retrievers/{rid}", headers=scoped).json()["stages"],
        "inputs": {"q": "cats"},
        "input_schema": {"q": {"type": "text"}},
    }
    adhoc = _ok(client.post("/v1/retrievers/execute", json=adhoc_body, headers=scoped))
    ids["executions"] = [named["execution_id"], adhoc["execution_id"]]
    key = _ok(client.post("/v1/keys", json={"name": "fuzz", "namespace": ns}, headers=auth))
    ids["keys"] = [key["key_id"]]
    ids["extractors"] = ["text_extractor_v1"]
    _seed_buckets(client, scoped, ids)

    def taxonomy(name: str) -> str:
        mapping = {"input_key": "q", "source_type": "payload", "path": "text"}
        config = {
            "taxonomy_type": "flat",
            "retriever_id": rid,
            "input_mappings": [mapping],
            "source_collection": {"collection_id": COLLECTION},
        }
        body = {"taxonomy_name": name, "config": config}
        return str(_ok(client.post("/v1/taxonomies", json=body, headers=scoped))["taxonomy_id"])

    ids["taxonomies"], ids["spare_taxonomies"] = [taxonomy("fuzz-tax")], [taxonomy("fuzz-spare")]
    judged = {
        "query_id": "q1",
        "query_input": {"q": "cats"},
        "relevant_documents": ids["documents"][:1],
    }
    dataset = {"dataset_name": "fuzz-dataset", "queries": [judged]}
    made = _ok(client.post("/v1/retrievers/evaluations/datasets", json=dataset, headers=scoped))
    ids["datasets"] = [made["dataset_id"], "fuzz-dataset"]
    return ids


def _seed_buckets(
    client: asgi.ASGIClient, scoped: dict[str, str], ids: dict[str, list[str]]
) -> None:
    schema = {"properties": {"title": {"type": "string"}, "body": {"type": "text"}}}

    def bucket(name: str) -> str:
        body = {"bucket_name": name, "bucket_schema": schema}
        return str(_ok(client.post("/v1/buckets", json=body, headers=scoped))["bucket_id"])

    def obj(bid: str, i: int) -> str:
        blob = {"property": "body", "type": "text", "data": TEXTS[i % len(TEXTS)]}
        body = {"title": f"t{i}", "blobs": [blob]}
        return str(
            _ok(client.post(f"/v1/buckets/{bid}/objects", json=body, headers=scoped))["object_id"]
        )

    bid = bucket("fuzz-bucket")
    ids["buckets"], ids["spare_buckets"] = [bid], [bucket("fuzz-spare-bucket")]
    ids["objects"] = [obj(bid, i) for i in range(3)]
    ids["spare_objects"] = [obj(bid, 9)]


# Path parameter -> the dictionary its real values come from (drawn with PROBABILITY, the
# rest generated); DELETEs draw from the spare ones so the others stay for the whole run.
PATH_IDS = {
    "namespace_identifier": "namespaces",
    "namespace_id": "namespaces",
    "collection_identifier": "collections",
    "document_id": "documents",
    "retriever_id": "retrievers",
    "execution_id": "executions",
    "key_id": "keys",
    "feature_extractor_id": "extractors",
    "bucket_identifier": "buckets",
    "object_identifier": "objects",
    "taxonomy_identifier": "taxonomies",
    "dataset_identifier": "datasets",
}
DELETES = {
    "DELETE /v1/namespaces/{namespace_identifier}": {"namespace_identifier": "spare_namespaces"},
    "DELETE /v1/collections/{collection_identifier}": {
        "collection_identifier": "spare_collections"
    },
    "DELETE /v1/collections/{collection_identifier}/documents/{document_id}": {
        "collection_identifier": "collections",
        "document_id": "spare_documents",
    },
    "DELETE /v1/retrievers/{retriever_id}": {"retriever_id": "spare_retrievers"},
    "DELETE /v1/buckets/{bucket_identifier}": {"bucket_identifier": "spare_buckets"},
    "DELETE /v1/buckets/{bucket_identifier}/objects/{object_identifier}": {
        "bucket_identifier": "buckets",
        "object_identifier": "spare_objects",
    },
    "DELETE /v1/taxonomies/{taxonomy_identifier}": {"taxonomy_identifier": "spare_taxonomies"},
}
PROBABILITY = 0.7


def _bindings(params: dict[str, str]) -> dict[str, Any]:
    return {
        f"path.{param}": {"dictionary": kind, "probability": PROBABILITY}
        for param, kind in params.items()
    }


def _config(ids: dict[str, list[str]]) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "auth": {
                "openapi": {
                    "bearerAuth": {"bearer": ADMIN},
                    # The namespace's id, not its name: a fuzzed PATCH may rename it.
                    "namespaceHeader": {"api_key": ids["namespaces"][0]},
                }
            },
            "dictionaries": {kind: {"values": values} for kind, values in ids.items()},
            "parameters": _bindings(PATH_IDS),
            "operations": [
                {"include-name": name, "parameters": _bindings(params)}
                for name, params in DELETES.items()
            ],
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none", "mode": "all"},
            # Stateful scenarios send valid requests: each step must succeed for the next to
            # have ids to follow (the other phases send invalid ones too).
            "phases": {
                "stateful": {"max-steps": STATEFUL_STEPS, "generation": {"mode": "positive"}}
            },
        }
    )


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz-data")
    app = create_app(
        Settings(data_dir=data_dir, embedder="hash", admin_key=ADMIN, index_build_poll_s=60.0)
    )
    with asgi.get_client(app) as client:  # starts the lifespan: the stores open
        ids = _seed(client)
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=_config(ids))
    asgi.shutdown_lifespans()  # the stores close


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation(case: schemathesis.Case) -> None:
    started = time.perf_counter()
    try:
        response = case.call_and_validate()
        TALLY.add(case.operation.label, response.status_code)
    finally:
        TALLY.seconds += time.perf_counter() - started


CREATE_RETRIEVER = "POST /v1/retrievers"
# The chain the stateful phase must walk with real ids, each step answering 200.
CHAIN = (
    CREATE_RETRIEVER,
    "POST /v1/retrievers/{retriever_id}/execute",
    "GET /v1/retrievers/{retriever_id}/executions/{execution_id}",
    "POST /v1/retrievers/{retriever_id}/executions/list",
)


def _run_machine(schema: Any, scenarios_wanted: int) -> None:
    """Seeded suites of the schema's state machine until `scenarios_wanted` scenarios ran."""
    created = iter(range(1_000_000))
    failures: list[BaseException] = []
    scenarios = 0

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            # A generated stage list is almost never a valid pipeline, so every other
            # create sends a valid one: the chain behind it then has a retriever to run.
            if case.operation.label == CREATE_RETRIEVER and (n := next(created)) % 2 == 0:
                case.body = {**VALID_RETRIEVER, "retriever_name": f"fuzz-chain-{n}"}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            TALLY.add(case.operation.label, response.status_code, stateful=True)

        def validate_response(self, response: Any, case: schemathesis.Case, **kw: Any) -> None:
            try:
                super().validate_response(response, case, **kw)
            except Exception as exc:
                failures.append(exc)
                raise

        def teardown(self) -> None:
            nonlocal scenarios
            scenarios += 1
            super().teardown()

    settings = hypothesis.settings(
        max_examples=scenarios_wanted,
        # Hypothesis' replays meet a server that has moved on: no shrinking (as schemathesis'
        # own runner), and a replay that draws differently ends the suite, not the test.
        phases=[hypothesis.Phase.generate],
        stateful_step_count=STATEFUL_STEPS,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    started = time.perf_counter()
    try:
        for suite in range(MAX_SUITES):
            if scenarios >= scenarios_wanted:
                break
            try:
                hypothesis.seed(SEED + suite)(Workflow).run(settings=settings)
            except Exception as exc:
                if failures or not (isinstance(exc, Flaky) or is_inconsistent_replay(exc)):
                    raise
    finally:
        TALLY.seconds += time.perf_counter() - started
    if failures:
        raise failures[0]


def test_stateful_retriever_chain(api_schema: Any) -> None:
    """create retriever -> execute -> get execution -> list executions, with the ids each
    response gives, every step answering 200 at least once."""
    # exclude(), not include(): includes are OR-ed with the config's own operation filters.
    # Collections are created too: a retriever reads one, and schemathesis starts scenarios
    # only at operations whose inputs something in the machine produces.
    wanted = {*CHAIN, "POST /v1/collections"}
    chain = api_schema.exclude(func=lambda ctx: ctx.operation.label not in wanted)
    _run_machine(chain, STATEFUL_SCENARIOS)
    walked = {label for label in CHAIN if TALLY.stateful.get(label, {}).get(200)}
    assert walked == set(CHAIN), {label: TALLY.stateful.get(label) for label in CHAIN}


def test_stateful_links(api_schema: Any) -> None:
    """Every link the document declares, over every operation (a write is followed by a
    read of what it wrote)."""
    _run_machine(api_schema, STATEFUL_SCENARIOS)


def test_figures(api_schema: Any) -> None:
    """At least MIN_CASES cases over every operation (when the whole module ran)."""
    operations = {op.ok().label for op in api_schema.get_all_operations()}
    if not operations <= set(TALLY.statuses) or not TALLY.stateful:
        pytest.skip("only part of the fuzz ran")
    print(
        f"\nfuzz: {TALLY.total} cases over {len(TALLY.statuses)} of {len(operations)} "
        f"operations ({TALLY.steps} of them stateful steps) in {TALLY.seconds:.1f} s"
    )
    for label, counts in sorted(TALLY.statuses.items()):
        print(f"  {label}: {dict(sorted(counts.items()))}")
    assert TALLY.total >= MIN_CASES
