"""Hostile input and bounded work: every bad request is a 4xx in the error shape, nothing is
half-written, every bound holds, and a bug's 500 leaves the connection usable."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.support import slow_stage
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]

URI = "mixpeek://text_extractor@v1/all_minilm_l6_v2"
TEXT_EXTRACTOR = {
    "feature_extractor_name": "text_extractor",
    "version": "v1",
    "input_mappings": {"text": "text"},
}


def error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False and body["status"] == status
    assert set(body["error"]) == {"message", "type", "code", "details"}
    return dict(body["error"])


def raw(client: httpx.Client, method: str, path: str, text: str) -> httpx.Response:
    return client.request(method, path, content=text, headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def world(server: ServerHandle) -> Iterator[tuple[httpx.Client, httpx.Client, str, str]]:
    """A namespace with a text collection holding one document, and a retriever over it."""
    ns = f"ns-{uuid.uuid4().hex[:10]}"
    admin = server.client(ADMIN_KEY)
    admin.post(
        "/v1/namespaces",
        json={"namespace_name": ns, "vector_configs": [{"name": "v", "dimension": 3}]},
    ).raise_for_status()
    client = server.client(ADMIN_KEY, ns)
    body = {"collection_name": "notes", "source": {"type": "direct_upsert"}}
    client.post(
        "/v1/collections", json={**body, "feature_extractor": TEXT_EXTRACTOR}
    ).raise_for_status()
    client.post("/v1/collections/notes/documents", json={"text": "a first note"}).raise_for_status()
    rid = client.post(
        "/v1/retrievers",
        json={
            "retriever_name": "notes",
            "collection_identifiers": ["notes"],
            "input_schema": {"q": {"type": "text"}},
            "stages": [
                {
                    "stage_name": "search",
                    "config": {
                        "stage_id": "feature_search",
                        "parameters": {"searches": [{"feature_uri": URI, "query": "{{INPUT.q}}"}]},
                    },
                }
            ],
        },
    ).json()["retriever_id"]
    yield admin, client, ns, rid
    client.close()
    admin.close()


def stored(client: httpx.Client) -> tuple[int, str]:
    """The collection's live documents and whether the index holds exactly them."""
    col = client.get("/v1/collections/notes").raise_for_status().json()
    return col["document_count"], col["indexing_status"]


NESTED = '{"a":' * 300 + "1" + "}" * 300
BAD_VALUES = {
    "NaN": ("NaN", "metadata.x"),
    "Infinity": ("[1, -Infinity]", "metadata.x[1]"),
    "overflowing float": ("1e400", "metadata.x"),
    "64-bit overflow": ("123456789012345678901234567890", "metadata.x"),
    # Past int64 but within uint64, in a list of numbers (the shape of a vector).
    "64-bit overflow in numbers": ("[0.5, 9223372036854775808]", "metadata.x[1]"),
    "lone surrogate": ('"\\ud800"', "metadata.x"),
    "300 levels": (NESTED, "metadata.x.a.a"),
}


@pytest.mark.parametrize("name", list(BAD_VALUES))
def test_values_the_index_cannot_hold_are_refused_before_any_write(
    world: tuple[httpx.Client, httpx.Client, str, str], name: str
) -> None:
    admin, client, ns, rid = world
    value, where = BAD_VALUES[name]
    before = stored(client)
    doc_id = client.get("/v1/collections/notes/documents").json()["results"][0]["document_id"]
    attempts = [
        raw(
            client,
            "POST",
            "/v1/collections/notes/documents",
            f'{{"text":"a","metadata":{{"x":{value}}}}}',
        ),
        raw(
            client,
            "PATCH",
            f"/v1/collections/notes/documents/{doc_id}",
            f'{{"metadata":{{"x":{value}}}}}',
        ),
        raw(
            admin,
            "POST",
            f"/v1/namespaces/{ns}/documents/upsert",
            '{"collection_id":"notes","documents":[{"document_id":"d1","vectors":{},'
            f'"payload":{{"text":"t"}},"metadata":{{"x":{value}}}}}]}}',
        ),
        raw(
            client,
            "POST",
            f"/v1/retrievers/{rid}/execute",
            f'{{"inputs":{{"q":"a","metadata":{{"x":{value}}}}}}}',
        ),
        raw(
            admin,
            "POST",
            "/v1/namespaces",
            f'{{"namespace_name":"n-{name[:3]}x","metadata":{{"x":{value}}}}}',
        ),
    ]
    for resp in attempts:
        err = error(resp, 422)
        assert err["code"] in ("invalid_json_value",), err
        # named by its path in each body ("x" under metadata, documents[0]..., inputs...)
        field, tail = err["details"]["field"], where.split("metadata.", 1)[1]
        assert field.endswith(tail) if name != "300 levels" else f"{tail}.a.a" in field, err
    # nothing was written: the store and the index hold exactly what they held
    assert stored(client) == before and before[1] == "quiesced"
    assert client.get(f"/v1/collections/notes/documents/{doc_id}").json()["metadata"] == {}


def test_a_nested_string_over_the_text_limit_is_refused(
    world: tuple[httpx.Client, httpx.Client, str, str],
) -> None:
    _, client, _, _ = world
    resp = client.post(
        "/v1/collections/notes/documents",
        json={"text": "a", "metadata": {"deep": {"notes": ["x", "y" * 1_100_000]}}},
    )
    err = error(resp, 422)
    assert err["code"] == "field_too_large" and err["details"]["field"] == "metadata.deep.notes[1]"


def test_a_chunked_body_over_the_limit_is_413(fresh_server: Callable[..., ServerHandle]) -> None:
    handle = fresh_server(embedder="hash", max_request_bytes=10_000)
    admin = handle.client(ADMIN_KEY)

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"namespace_name": "chunky", "description": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    resp = admin.post(
        "/v1/namespaces", content=chunks(), headers={"content-type": "application/json"}
    )
    assert error(resp, 413)["code"] == "payload_too_large"
    assert admin.get("/v1/namespaces/chunky").status_code == 404
    small = admin.post("/v1/namespaces", json={"namespace_name": "fine"})
    assert small.status_code == 200, small.text


def _two_requests_on_one_connection(base_url: str, path: str) -> list[bytes]:
    host, port = base_url.removeprefix("http://").split(":")
    answers = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\n"
                "X-Namespace: whatever\r\n\r\n".encode()
            )
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            while len(rest) < length:
                rest += sock.recv(65536)
            answers.append(head.split(b"\r\n")[0] + b" " + rest)
    return answers


def test_a_bug_answers_500_in_the_error_shape_and_keeps_the_connection(
    server: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stagewise.api import deps

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(deps, "namespace_for", broken)
    first, second = _two_requests_on_one_connection(server.base_url, "/v1/collections")
    for answer in (first, second):  # the second request went over the same socket
        assert answer.startswith(b"HTTP/1.1 500"), answer[:200]
        assert b'"code":"internal_error"' in answer and b'"success":false' in answer


def test_inputs_found_by_fuzzing_are_4xx_never_500(
    world: tuple[httpx.Client, httpx.Client, str, str],
) -> None:
    admin, client, ns, rid = world
    deep = '{"AND":[' * 450 + '{"field":"metadata.a","value":1}' + "]}" * 450
    execute = f"/v1/retrievers/{rid}/execute"
    cases: list[tuple[httpx.Client, str, str, str | dict[str, Any] | None]] = [
        (admin, "POST", "/v1/namespaces", {"namespace_name": "fz-a", "vector_configs": [{}]}),
        (admin, "POST", "/v1/namespaces", {"namespace_name": "fz-b", "feature_extractors": [{}]}),
        (admin, "POST", "/v1/namespaces", {"namespace_name": "fz-c", "namespace_id": "../../x"}),
        (admin, "GET", "/v1/namespaces?page=100000000000000000000", None),
        (admin, "GET", "/v1/namespaces?offset=10000000000000000000", None),
        (client, "GET", "/v1/collections?page=100000000000000000000", None),
        (client, "POST", "/v1/retrievers/list?page=100000000000000000000", {}),
        (client, "GET", f"/v1/retrievers/{rid}/executions/x?offset=10000000000000000000", None),
        (client, "POST", "/v1/retrievers/executions/list", {"status": ["nonsense"]}),
        (client, "POST", f"/v1/retrievers/{rid}/executions/list", {"status": 5}),
        (client, "GET", "/v1/retrievers/typeahead?q=a&fields=[]", None),
        (client, "POST", execute, deep),
        (client, "GET", "/v1/collections/notes/documents?filters=" + deep, None),
        (
            client,
            "POST",
            "/v1/collections/notes/documents/list",
            deep and '{"filters":' + deep + "}",
        ),
        (
            admin,
            "POST",
            f"/v1/namespaces/{ns}/documents/upsert",
            {"collection_id": "notes", "documents": [{"document_id": "../../x", "vectors": {}}]},
        ),
        (
            client,
            "POST",
            execute,
            {"inputs": {"q": "a"}, "pagination": {"method": "offset", "page_number": 10**20}},
        ),
    ]
    for who, method, path, body in cases:
        if isinstance(body, str):
            resp = raw(who, method, path, body)
        else:
            resp = (
                who.request(method, path, json=body)
                if body is not None
                else who.request(method, path)
            )
        assert 400 <= resp.status_code < 500, (path, resp.status_code, resp.text[:300])
        error(resp, resp.status_code)
    # and the statuses the filter does know, one or several, are accepted
    ok = client.post("/v1/retrievers/executions/list", json={"status": ["completed", "failed"]})
    assert ok.status_code == 200, ok.text


def test_template_filter_and_pipeline_bounds_answer_422_at_once(
    world: tuple[httpx.Client, httpx.Client, str, str],
) -> None:
    _, client, _, rid = world

    def adhoc(query: Any, **extra: Any) -> httpx.Response:
        stage = {
            "stage_name": "search",
            "config": {
                "stage_id": "feature_search",
                "parameters": {"searches": [{"feature_uri": URI, "query": query}]},
            },
        }
        body = {"collection_identifiers": ["notes"], "stages": [stage], **extra}
        return client.post("/v1/retrievers/execute", json=body)

    started = time.perf_counter()
    for template, code in [
        ("{{ 'a' * 200000000 }}", "template_limit_exceeded"),
        ("{{ 'a'.ljust(1000000000) }}", "template_limit_exceeded"),
        ("{{ '%999999999d' % 1 }}", "template_limit_exceeded"),
        (
            "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
            "{{ 'x' }}",
            "template_limit_exceeded",
        ),
    ]:
        assert error(adhoc(template), 422)["code"] == code, template
    # an in-list of 100,000 values, and filters too deep or too wide
    many = {"AND": [{"field": "metadata.a", "operator": "in", "value": list(range(100_000))}]}
    wide = {"AND": [{"field": f"metadata.f{i}", "value": i} for i in range(300)]}
    deep: dict[str, Any] = {"field": "metadata.a", "value": 1}
    for _ in range(12):  # past the 10 groups a filter may nest, within the body's depth
        deep = {"OR": [deep]}
    for flt in (many, wide, deep):
        resp = client.post(
            f"/v1/retrievers/{rid}/execute", json={"inputs": {"q": "a"}, "filters": flt}
        )
        assert error(resp, 422)["code"] == "invalid_filter"
    stages = [
        {"stage_name": f"s{i}", "config": {"stage_id": "sort_relevance", "parameters": {}}}
        for i in range(40)
    ]
    resp = client.post(
        "/v1/retrievers",
        json={"retriever_name": "long", "collection_identifiers": ["notes"], "stages": stages},
    )
    assert error(resp, 422)["code"] == "too_many_stages"
    assert time.perf_counter() - started < 10  # each bound answers at once, not after the work
    # a template within bounds still runs
    fine = adhoc("{{ 'note' * 2 }}")
    assert fine.status_code == 200 and fine.json()["status"] == "completed", fine.text


def test_a_key_past_its_rate_gets_429_with_retry_after(
    fresh_server: Callable[..., ServerHandle],
) -> None:
    handle = fresh_server(embedder="hash", rate_limit_per_s=2, rate_limit_burst=5)
    admin = handle.client(ADMIN_KEY)
    codes = [admin.get("/v1/namespaces").status_code for _ in range(12)]
    assert codes[:5] == [200] * 5 and 429 in codes[5:]
    resp = admin.get("/v1/namespaces")
    err = error(resp, 429)
    assert err["code"] == "rate_limited"
    wait = err["details"]["retry_after_seconds"]
    assert 0 < wait <= 0.5 and resp.headers["Retry-After"] == "1"
    time.sleep(wait + 0.05)
    assert admin.get("/v1/namespaces").status_code == 200  # the bucket refills
    # another key has a bucket of its own; a request without a key is not counted
    assert handle.client().get("/v1/health").status_code == 200


def test_executions_at_once_per_key_are_bounded(
    fresh_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    assert slow_stage.SlowStage.stage_id == "test_slow"
    handle = fresh_server(embedder="hash", max_concurrent_executions=1)
    admin = handle.client(ADMIN_KEY)
    admin.post("/v1/namespaces", json={"namespace_name": "busy"}).raise_for_status()
    client = handle.client(ADMIN_KEY, "busy")
    body = {"collection_name": "col", "source": {"type": "direct_upsert"}}
    client.post(
        "/v1/collections", json={**body, "feature_extractor": TEXT_EXTRACTOR}
    ).raise_for_status()
    slow = {
        "stage_name": "nap",
        "config": {"stage_id": "test_slow", "parameters": {"total_ms": 800}},
    }
    rid = client.post(
        "/v1/retrievers",
        json={"retriever_name": "slow", "collection_identifiers": ["col"], "stages": [slow]},
    ).json()["retriever_id"]
    pending = client.post(f"/v1/retrievers/{rid}/execute?wait=false", json={"inputs": {}})
    assert pending.status_code == 200, pending.text
    second = client.post(f"/v1/retrievers/{rid}/execute", json={"inputs": {}, "skip_cache": True})
    err = error(second, 429)
    assert err["code"] == "too_many_executions" and second.headers["Retry-After"] == "1"
    # once the background run has ended its slot is free again
    eid = pending.json()["execution_id"]
    deadline = time.monotonic() + 10
    while (
        client.get(f"/v1/retrievers/{rid}/executions/{eid}/status").json()["status"] != "completed"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    again = client.post(f"/v1/retrievers/{rid}/execute", json={"inputs": {}, "skip_cache": True})
    assert again.status_code == 200 and again.json()["status"] == "completed", again.text


def test_every_execution_has_a_deadline(fresh_server: Callable[..., ServerHandle]) -> None:
    handle = fresh_server(embedder="hash", execution_deadline_ms=100)
    admin = handle.client(ADMIN_KEY)
    admin.post("/v1/namespaces", json={"namespace_name": "late"}).raise_for_status()
    client = handle.client(ADMIN_KEY, "late")
    body = {"collection_name": "col", "source": {"type": "direct_upsert"}}
    client.post(
        "/v1/collections", json={**body, "feature_extractor": TEXT_EXTRACTOR}
    ).raise_for_status()
    slow = {
        "stage_name": "nap",
        "config": {"stage_id": "test_slow", "parameters": {"total_ms": 2000}},
    }
    rid = client.post(
        "/v1/retrievers",
        json={"retriever_name": "slow", "collection_identifiers": ["col"], "stages": [slow]},
    ).json()["retriever_id"]
    started = time.perf_counter()
    out = client.post(f"/v1/retrievers/{rid}/execute", json={"inputs": {}}).json()
    assert out["status"] == "failed" and "time limit" in out["error"], out
    assert time.perf_counter() - started < 1.5  # stopped at the deadline, not after 2 s


def test_concurrent_posts_each_keep_their_own_body(server: ServerHandle) -> None:
    """The body-size middleware buffers and replays each request's body: under concurrency
    every request still sees its own."""
    names = [f"ns-{uuid.uuid4().hex[:10]}" for _ in range(16)]
    results: dict[str, int] = {}

    def create(name: str) -> None:
        with server.client(ADMIN_KEY) as c:
            results[name] = c.post("/v1/namespaces", json={"namespace_name": name}).status_code

    threads = [threading.Thread(target=create, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {n: 200 for n in names}
    with server.client(ADMIN_KEY) as c:
        for name in names:
            assert c.get(f"/v1/namespaces/{name}").json()["namespace_name"] == name
