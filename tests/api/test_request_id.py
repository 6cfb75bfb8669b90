"""X-Request-ID: on every response (errors included), a valid incoming one kept and a hostile
one replaced; stored on the execution as `trace_id` (blocking, background and cache-hit
runs); and carried by the JSON log lines of its request, the background run's included."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from stagewise import request_id
from stagewise.api.logs import JsonFormatter, TextFormatter, log_config
from tests.conftest import ADMIN_KEY
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]

GENERATED = re.compile(r"[0-9a-f]{32}")
EXECUTE_ROUTE = "/v1/retrievers/{retriever_id}/execute"


class _Lines(logging.Handler):
    """Formats each record as it is emitted, in the thread that logged it (as a stream
    handler does), and keeps the parsed JSON object."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        assert "\n" not in line
        self.lines.append(json.loads(line))


@pytest.fixture
def logs() -> Iterator[_Lines]:
    handler = _Lines()
    logger = logging.getLogger("stagewise")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def _rid(resp: httpx.Response) -> str:
    return resp.headers["x-request-id"]


def _wait_for(found: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        result = found()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_every_response_has_a_request_id(fresh_server: Callable[..., ServerHandle]) -> None:
    http = fresh_server(embedder="hash").client()
    first, second = _rid(http.get("/v1/health")), _rid(http.get("/v1/health"))
    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second) and first != second
    for kept in ("client-1.2:3_x", "a" * 64):
        assert _rid(http.get("/v1/health", headers={"X-Request-ID": kept})) == kept
    for hostile in ("a" * 65, "a b", "<script>", 'x"y', "", "id\\n"):
        got = _rid(http.get("/v1/health", headers={"X-Request-ID": hostile}))
        assert got != hostile and GENERATED.fullmatch(got), hostile
    # Errors, in the one error shape, carry it too: an unknown route, a missing key.
    resp = http.get("/v1/nope", headers={"X-Request-ID": "err-1"})
    assert resp.status_code == 404 and resp.json()["success"] is False and _rid(resp) == "err-1"
    resp = http.get("/v1/namespaces", headers={"X-Request-ID": "err-2"})
    assert resp.status_code == 401 and _rid(resp) == "err-2"


def _retriever(handle: ServerHandle) -> tuple[httpx.Client, str]:
    handle.client(ADMIN_KEY).post(
        "/v1/namespaces",
        json={"namespace_name": "trace", "vector_configs": [{"name": "emb", "dimension": 2}]},
    ).raise_for_status()
    http = handle.client(ADMIN_KEY, "trace")
    http.post(
        "/v1/collections", json={"collection_name": "pts", "source": {"type": "direct_upsert"}}
    ).raise_for_status()
    docs = [{"document_id": f"d{i}", "vectors": {"emb": [1.0, float(i)]}} for i in range(3)]
    http.post(
        "/v1/namespaces/trace/documents/upsert", json={"collection_id": "pts", "documents": docs}
    ).raise_for_status()
    search = {
        "feature_uri": "emb",
        "query": {"input_mode": "vector", "value": "{{INPUT.v}}"},
        "top_k": 3,
    }
    body = {
        "retriever_name": "r",
        "collection_identifiers": ["pts"],
        "input_schema": {"v": {"type": "array"}},
        "stages": [
            {
                "stage_name": "search",
                "config": {"stage_id": "feature_search", "parameters": {"searches": [search]}},
            }
        ],
    }
    return http, http.post("/v1/retrievers", json=body).raise_for_status().json()["retriever_id"]


def test_trace_id_is_the_request_id_of_the_run(
    fresh_server: Callable[..., ServerHandle], logs: _Lines
) -> None:
    http, rid = _retriever(fresh_server(embedder="hash"))
    base = f"/v1/retrievers/{rid}/executions"

    def execute(trace: str, v: list[float], **params: Any) -> dict[str, Any]:
        resp = http.post(
            f"/v1/retrievers/{rid}/execute",
            json={"inputs": {"v": v}},
            params=params,
            headers={"X-Request-ID": trace},
        )
        assert resp.status_code == 200 and _rid(resp) == trace, resp.text
        return dict(resp.json())

    ran = execute("exec-trace-1", [1.0, 0.0])
    assert ran["status"] == "completed" and ran["trace_id"] == "exec-trace-1"
    # A cache hit is a record of its own request.
    hit = execute("hit-trace-3", [1.0, 0.0])
    assert hit["cache_hit"] is True and hit["trace_id"] == "hit-trace-3"
    # wait=false: the run goes on in a worker thread, in the request's context.
    pending = execute("bg-trace-2", [0.0, 1.0], wait="false")
    assert pending["status"] == "pending" and pending["trace_id"] == "bg-trace-2"
    background = pending["execution_id"]
    _wait_for(
        lambda: http.get(f"{base}/{background}/status").json()["status"] == "completed",
        "the background run",
    )

    for execution_id, trace in (
        (ran["execution_id"], "exec-trace-1"),
        (hit["execution_id"], "hit-trace-3"),
        (background, "bg-trace-2"),
    ):
        assert http.get(f"{base}/{execution_id}").json()["trace_id"] == trace
        assert http.get(f"{base}/{execution_id}/status").json()["trace_id"] == trace
    listed = http.post(f"{base}/list", json={}).json()["results"]
    assert {x["execution_id"]: x["trace_id"] for x in listed} == {
        ran["execution_id"]: "exec-trace-1",
        hit["execution_id"]: "hit-trace-3",
        background: "bg-trace-2",
    }

    # The log lines: one JSON object each, with the request's id.
    def access(trace: str) -> list[dict[str, Any]]:
        return [
            x
            for x in logs.lines
            if x["logger"] == "stagewise.access" and x.get("request_id") == trace
        ]

    line = _wait_for(lambda: access("exec-trace-1"), "the access line")[0]
    assert line["level"] == "INFO" and line["timestamp"] and line["message"]
    assert line["method"] == "POST" and line["route"] == EXECUTE_ROUTE
    assert line["path"] == f"/v1/retrievers/{rid}/execute"
    assert line["status"] == 200 and line["duration_ms"] > 0
    # A decoded newline in a path is escaped in the message (the text format prints it).
    http.get("/v1/forged%0Aline", headers={"X-Request-ID": "nl-1"})
    forged = _wait_for(lambda: access("nl-1"), "the access line")[0]
    assert forged["path"] == "/v1/forged\nline" and "\n" not in forged["message"]
    ended = [x for x in logs.lines if x["logger"] == "stagewise.execute"]
    assert [(x["execution_id"], x["request_id"]) for x in ended] == [(background, "bg-trace-2")]
    assert all({"timestamp", "level", "logger", "message"} <= x.keys() for x in logs.lines)


def test_log_formats_carry_the_bound_request_id() -> None:
    record = logging.makeLogRecord(
        {"name": "stagewise.x", "levelno": logging.ERROR, "levelname": "ERROR", "msg": "boom %d"}
    )
    record.args = (1,)
    try:
        raise ValueError("bad")
    except ValueError:
        record.exc_info = sys.exc_info()
    token = request_id.bind("rid-7")
    try:
        text, line = TextFormatter().format(record), JsonFormatter().format(record)
    finally:
        request_id.unbind(token)
    assert " ERROR stagewise.x [rid-7] boom 1" in text and "ValueError: bad" in text
    body = json.loads(line)
    assert body["request_id"] == "rid-7" and body["message"] == "boom 1"
    assert "ValueError: bad" in body["exception"] and "\n" not in line
    assert not hasattr(record, "request_id")  # the text formatter formatted a copy
    # Outside a request: no id (JSON leaves the key out, text shows "-").
    assert "request_id" not in json.loads(JsonFormatter().format(record))
    assert "[-]" in TextFormatter().format(record)
    config = log_config("text", "warning")
    assert config["formatters"]["stagewise"]["()"] == "stagewise.api.logs.TextFormatter"
    assert config["loggers"]["uvicorn.access"]["handlers"] == []
