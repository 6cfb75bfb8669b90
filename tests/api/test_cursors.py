"""Signed cursors over loopback HTTP and the official SDK: every pagination method walks the
ranked list without overlap or gap, every pagination key of both documents is present with
its true value, and a tampered, foreign, expired or hand-made cursor is a 400."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import mixpeek
import pytest
from mixpeek.models import ExecuteRetrieverRequest

from stagewise.services.cursors import CursorCodec
from tests.support.corpus import COLLECTION, TEXTS, search, seed_corpus
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]
QUERY = {"query": "documents about gardening"}
N = len(TEXTS)
METHODS = ["cursor", "offset", "keyset", "scroll"]
UNION = {
    "method", "page_number", "page_size", "limit", "offset", "returned", "total",
    "has_next", "has_previous", "cursor", "next_cursor", "scroll_id", "after",
}  # fmt: skip
DOCS = f"/v1/collections/{COLLECTION}/documents"
GARDEN = {"AND": [{"field": "metadata.category", "operator": "eq", "value": "garden"}]}
PETS = {"AND": [{"field": "metadata.category", "operator": "eq", "value": "pets"}]}
Post = Callable[[dict[str, Any]], httpx.Response]  # sends one pagination object


def stages() -> list[dict[str, Any]]:
    params = {"searches": [search()], "final_top_k": N}
    return [{"stage_name": "s", "config": {"stage_id": "feature_search", "parameters": params}}]


def make(http: httpx.Client) -> str:
    body = {
        "retriever_name": f"r-{uuid.uuid4().hex[:8]}",
        "collection_identifiers": [COLLECTION],
        "input_schema": {"query": {"type": "text"}},
        "stages": stages(),
    }
    return str(ok(http.post("/v1/retrievers", json=body))["retriever_id"])


def named(http: httpx.Client, rid: str) -> Post:
    url = f"/v1/retrievers/{rid}/execute"
    return lambda p: http.post(url, json={"inputs": QUERY, "pagination": p})


def adhoc(http: httpx.Client) -> Post:
    body = {"collection_identifiers": [COLLECTION], "stages": stages(), "inputs": QUERY}
    body["input_schema"] = {"query": {"type": "text"}}
    return lambda p: http.post("/v1/retrievers/execute", json={**body, "pagination": p})


def ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def bad(resp: httpx.Response) -> dict[str, Any]:
    """The single error shape, 400 invalid_cursor."""
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert set(body) == {"success", "status", "error"}
    assert body["success"] is False and body["status"] == 400
    assert set(body["error"]) == {"message", "type", "code", "details"}
    assert (body["error"]["type"], body["error"]["code"]) == ("BadRequestError", "invalid_cursor")
    return dict(body["error"])


def ids(out: dict[str, Any], key: str = "documents") -> list[str]:
    return [d["document_id"] for d in out[key]]


def cur(token: Any, limit: int = 5) -> dict[str, Any]:
    return {"method": "cursor", "limit": limit, "cursor": token}


def scr(token: Any, limit: int = 5) -> dict[str, Any]:
    return {"method": "scroll", "limit": limit, "scroll_id": token}


def key(after: Any, limit: int = 5) -> dict[str, Any]:
    return {"method": "keyset", "limit": limit, "after": after}


@pytest.fixture(scope="module")
def http(server: ServerHandle) -> Iterator[httpx.Client]:
    client = seed_corpus(server, f"ns-{uuid.uuid4().hex[:10]}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def rid(http: httpx.Client) -> str:
    return make(http)


@pytest.fixture(scope="module")
def expected(http: httpx.Client, rid: str) -> list[str]:
    out = ok(named(http, rid)({"method": "offset", "page_size": 500}))
    assert out["pagination"]["total"] == N
    return ids(out)


def check_union(p: dict[str, Any], docs: list[dict[str, Any]], method: str, size: int) -> None:
    """Every key of both documents, each with its true value."""
    assert set(p) >= UNION
    offset = p["offset"]
    assert (p["method"], p["page_size"], p["limit"]) == (method, size, size)
    assert p["page_number"] == offset // size + 1
    assert p["returned"] == len(docs) and p["total"] == N
    assert p["has_next"] is (offset + len(docs) < N)
    assert p["has_previous"] is (offset > 0)
    if not p["has_next"]:
        assert p["cursor"] is p["next_cursor"] is p["scroll_id"] is p["after"] is None
        return
    assert isinstance(p["cursor"], str)
    assert p["after"]["document_id"] == docs[-1]["document_id"]
    assert p["after"]["score"] == docs[-1]["score"]
    assert p["next_cursor"] == (p["after"] if method == "keyset" else p["cursor"])
    assert (p["scroll_id"] is not None) is (method == "scroll")


def follow(pagination: dict[str, Any], p: dict[str, Any]) -> None:
    """The next request, as each document says to build it."""
    method = pagination["method"]
    if method == "offset":
        pagination["page_number"] = p["page_number"] + 1
    elif method == "keyset":
        pagination["after"] = p["next_cursor"]
    else:
        field = "scroll_id" if method == "scroll" else "cursor"
        pagination[field] = p[field]


def walk(post: Post, method: str, size: int) -> list[list[str]]:
    pagination = {"method": method, "page_size" if method == "offset" else "limit": size}
    pages: list[list[str]] = []
    for _ in range(N + 2):
        out = ok(post(pagination))
        assert out["pagination"]["offset"] == sum(map(len, pages))
        check_union(out["pagination"], out["documents"], method, size)
        pages.append(ids(out))
        if not out["pagination"]["has_next"]:
            return pages
        follow(pagination, out["pagination"])
    raise AssertionError("the walk never ended")


def assert_partition(pages: list[list[str]], expected: list[str]) -> None:
    flat = [d for page in pages for d in page]
    assert len(flat) == len(set(flat)), "pages overlap"
    assert flat == expected, "pages skip or reorder documents"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [5, 36])
def test_named_walk_is_a_partition_with_true_union_keys(
    http: httpx.Client, rid: str, expected: list[str], method: str, size: int
) -> None:
    assert_partition(walk(named(http, rid), method, size), expected)


@pytest.mark.parametrize("method", METHODS)
def test_adhoc_walk_is_a_partition_with_true_union_keys(
    http: httpx.Client, expected: list[str], method: str
) -> None:
    assert_partition(walk(adhoc(http), method, 7), expected)


def test_offset_page_two_values_and_its_tokens_fetch_page_three(
    http: httpx.Client, rid: str, expected: list[str]
) -> None:
    post = named(http, rid)
    out = ok(post({"method": "offset", "page_size": 3, "page_number": 2}))
    p = out["pagination"]
    assert ids(out) == expected[3:6]
    assert (p["offset"], p["page_number"], p["has_previous"], p["has_next"]) == (3, 2, True, True)
    assert (p["returned"], p["total"], p["scroll_id"]) == (3, N, None)
    for nxt in (ok(post(cur(p["cursor"], 3))), ok(post(key(p["after"], 3)))):
        assert ids(nxt) == expected[6:9] and nxt["execution_id"] == out["execution_id"]
        assert (nxt["pagination"]["offset"], nxt["pagination"]["page_number"]) == (6, 3)


@pytest.mark.parametrize("kind", ["named", "adhoc"])
def test_execution_detail_serves_the_union_and_its_tokens_continue(
    http: httpx.Client, rid: str, expected: list[str], kind: str
) -> None:
    post = named(http, rid) if kind == "named" else adhoc(http)
    eid = ok(post(cur(None, 2)))["execution_id"]
    url = f"/v1/retrievers/{rid}/executions/{eid}"
    if kind == "adhoc":
        url = f"/v1/retrievers/executions/{eid}"
    detail = ok(http.get(url, params={"limit": 4, "offset": 8}))
    p = detail["pagination"]
    check_union(p, detail["documents"], "offset", 4)
    assert ids(detail) == expected[8:12]
    assert (p["offset"], p["page_number"], p["has_previous"], p["has_next"]) == (8, 3, True, True)
    for nxt in (ok(post(cur(p["cursor"], 4))), ok(post(key(p["after"], 4)))):
        assert nxt["execution_id"] == eid and ids(nxt) == expected[12:16]
    last = ok(http.get(url, params={"limit": 4, "offset": N - 4}))["pagination"]
    assert (last["has_next"], last["has_previous"], last["cursor"], last["after"]) == (
        False, True, None, None,
    )  # fmt: skip
    first = ok(http.get(url))["pagination"]
    assert (first["offset"], first["page_number"], first["has_previous"]) == (0, 1, False)
    assert first["total"] == N and first["returned"] == N


# --- refused continuations ----------------------------------------------------------------


def b64json(obj: Any) -> str:
    """A cursor built the old, unsigned way."""
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode()


def payload(token: str) -> dict[str, Any]:
    body = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def reencode(token: str, x: int | None = None, **position: Any) -> str:
    """The payload edited by a client who cannot sign, keeping the old tag."""
    state = payload(token)
    state["p"].update(position)
    if x is not None:
        state["x"] = x
    body = base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode())
    return f"{body.rstrip(b'=').decode()}.{token.split('.')[1]}"


def flip(token: str) -> str:
    i = len(token) // 4
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


@pytest.fixture(scope="module")
def issued(http: httpx.Client, rid: str) -> dict[str, Any]:
    out = ok(named(http, rid)(cur(None)))
    scroll = ok(named(http, rid)({**scr(None), "scroll_ttl": 120}))["pagination"]
    return {"eid": out["execution_id"], **out["pagination"], "scroll": scroll["scroll_id"]}


@pytest.fixture(scope="module")
def forged(
    issued: dict[str, Any], server: ServerHandle, http: httpx.Client
) -> dict[str, dict[str, Any]]:
    cursor, scroll_id, after = issued["cursor"], issued["scroll"], issued["after"]
    st = payload(cursor)
    # The server's own secret, to build a token that is genuine but expired.
    codec = CursorCodec((server.data_dir / "cursor.secret").read_text().encode())
    position = {"m": "scroll", "e": st["p"]["e"], "o": 5}
    expired = codec.encode("exec", st["n"], st["s"], position, ttl_s=60, now=time.time() - 3600)
    pinned = {"score": after["score"], "document_id": after["document_id"]}
    return {
        "flipped byte": cur(flip(cursor)),
        "edited offset, old tag": cur(reencode(cursor, o=0)),
        "edited payload, no tag": cur(reencode(cursor, o=0).split(".")[0]),
        "old format, negative": cur(b64json({"e": issued["eid"], "o": -2})),
        "old format, not an int": cur(b64json({"o": "x"})),
        "garbage base64": cur("%%%not-base64%%%"),
        "not a string": cur(12345),
        "another retriever": cur(ok(named(http, make(http))(cur(None)))["pagination"]["cursor"]),
        "an adhoc cursor": cur(ok(adhoc(http)(cur(None)))["pagination"]["cursor"]),
        "scroll id as cursor": cur(scroll_id),
        "cursor as scroll id": scr(cursor),
        "expired scroll": scr(expired),
        "extended scroll": scr(reencode(scroll_id, x=2**40)),
        "scroll garbage": scr("abc.def"),
        "keyset forged position": key({**pinned, "execution_id": issued["eid"], "position": 0}),
        "keyset position only": key({"execution_id": issued["eid"], "position": 3}),
        "keyset, other document": key({**after, "document_id": "doc_x"}),
        "keyset, tampered token": key({**after, "token": flip(after["token"])}),
        "keyset, cursor as token": key({**after, "token": cursor}),
        "keyset, unknown document": key({"document_id": "doc_nope"}),
        "keyset, not an object": key(cursor),
    }


FORGED = [
    "flipped byte", "edited offset, old tag", "edited payload, no tag", "old format, negative",
    "old format, not an int", "garbage base64", "not a string", "another retriever",
    "an adhoc cursor", "scroll id as cursor", "cursor as scroll id", "expired scroll",
    "extended scroll", "scroll garbage", "keyset forged position", "keyset position only",
    "keyset, other document", "keyset, tampered token", "keyset, cursor as token",
    "keyset, unknown document", "keyset, not an object",
]  # fmt: skip


@pytest.mark.parametrize("case", FORGED)
def test_forged_continuations_are_a_400_invalid_cursor(
    http: httpx.Client, rid: str, forged: dict[str, dict[str, Any]], case: str
) -> None:
    assert set(forged) == set(FORGED)
    err = bad(named(http, rid)(forged[case]))
    assert err["message"]
    if case == "expired scroll":
        assert "expired" in err["message"] and err["details"]["expired"] is True


def test_scroll_expiry_is_set_by_the_server(issued: dict[str, Any]) -> None:
    state = payload(issued["scroll"])
    assert abs(state["x"] - (time.time() + 120)) < 30  # the request's scroll_ttl, from now
    assert "x" not in payload(issued["cursor"])


def test_a_cursor_from_another_namespace_is_refused(
    server: ServerHandle, http: httpx.Client
) -> None:
    other = seed_corpus(server, f"ns-{uuid.uuid4().hex[:10]}")
    theirs = ok(adhoc(other)(cur(None, 3)))["pagination"]["cursor"]
    other.close()
    assert "different query" in bad(adhoc(http)(cur(theirs, 3)))["message"]


# --- document listing ---------------------------------------------------------------------


def list_walk(http: httpx.Client, body: dict[str, Any], via: str) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    for _ in range(N + 2):
        if via == "body":
            out = ok(http.post(f"{DOCS}/list", json={**body, "cursor": cursor}))
        else:
            out = ok(http.get(DOCS, params={**body, **({via: cursor} if cursor else {})}))
        pages.append(ids(out, "results"))
        cursor = out["pagination"]["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("the listing never ended")


@pytest.mark.parametrize(
    ("body", "via"),
    [
        ({"limit": 7}, "cursor"),
        ({"limit": 7}, "next_cursor"),
        ({"limit": 4, "sort": {"field": "metadata.year", "direction": "desc"}}, "body"),
        ({"limit": 3, "filters": GARDEN}, "body"),
    ],
)
def test_document_listing_cursors_partition_the_list(
    http: httpx.Client, body: dict[str, Any], via: str
) -> None:
    everything = ok(http.post(f"{DOCS}/list", json={**body, "limit": 1000}))
    assert_partition(list_walk(http, body, via), ids(everything, "results"))


def next_cursor(resp: httpx.Response) -> str:
    return str(ok(resp)["pagination"]["next_cursor"])


def test_forged_and_foreign_document_cursors_are_refused(
    http: httpx.Client, issued: dict[str, Any]
) -> None:
    seq = next_cursor(http.get(DOCS, params={"limit": 5}))
    by_filter = next_cursor(http.post(f"{DOCS}/list", json={"limit": 2, "filters": GARDEN}))
    source = {"collection_name": "other", "source": {"type": "direct_upsert"}}
    http.post("/v1/collections", json=source).raise_for_status()
    for i in range(3):
        http.post("/v1/collections/other/documents", json={"text": f"t{i}"}).raise_for_status()
    elsewhere = next_cursor(http.get("/v1/collections/other/documents", params={"limit": 1}))
    for cursor in (
        flip(seq), reencode(seq, s=0), b64json({"o": -2}), b64json({"o": "x"}), b64json({"s": 1}),
        "%%%garbage%%%", elsewhere, issued["cursor"],
    ):  # fmt: skip
        bad(http.get(DOCS, params={"limit": 5, "cursor": cursor}))
    for other_query in (
        {"filters": PETS}, {"filters": GARDEN, "sort": "metadata.year:asc"},
        {"filters": GARDEN, "search": "soil"}, {},
    ):  # fmt: skip
        bad(http.post(f"{DOCS}/list", json={"limit": 2, "cursor": by_filter, **other_query}))
    ok(http.post(f"{DOCS}/list", json={"limit": 2, "filters": GARDEN, "cursor": by_filter}))


def test_list_routes_without_cursors_refuse_one_instead_of_repeating_page_one(
    http: httpx.Client,
) -> None:
    bad(http.get("/v1/collections", params={"cursor": "abc"}))
    bad(http.post("/v1/collections/list", json={"cursor": "abc"}))
    bad(http.post("/v1/retrievers/list", params={"next_cursor": "abc"}, json={}))
    bad(http.get("/v1/namespaces", params={"cursor": "abc"}))
    assert http.get("/v1/collections", params={"cursor": ""}).status_code == 200


# --- the official SDK ---------------------------------------------------------------------


@pytest.mark.sdk
@pytest.mark.parametrize("method", METHODS)
def test_sdk_parses_every_method_and_walks_it(
    server: ServerHandle, http: httpx.Client, rid: str, expected: list[str], method: str
) -> None:
    namespace = {"NamespaceHeader": str(http.headers["X-Namespace"])}
    config = mixpeek.Configuration(
        host=server.base_url, access_token=server.admin_key, api_key=namespace
    )
    with mixpeek.ApiClient(config) as client:
        api = mixpeek.RetrieversApi(client)

        def execute(pagination: dict[str, Any]) -> mixpeek.ExecuteRetrieverResponse:
            body = {"inputs": QUERY, "pagination": pagination}
            return api.execute_retriever(rid, ExecuteRetrieverRequest.from_dict(body))

        pagination = {"method": method, "page_size" if method == "offset" else "limit": 8}
        pages: list[list[str]] = []
        while True:
            out = execute(pagination)
            assert out.pagination is not None and out.documents is not None
            check_union(out.pagination, out.documents, method, 8)
            pages.append([d["document_id"] for d in out.documents])
            if not out.pagination["has_next"]:
                break
            follow(pagination, out.pagination)
        assert_partition(pages, expected)
        detail = api.get_execution_retrievers(rid, str(out.execution_id))
        assert detail.pagination is not None and set(detail.pagination) >= UNION
        with pytest.raises(mixpeek.ApiException) as info:
            execute(cur(b64json({"o": -2}), 8))
        assert info.value.status == 400
        assert json.loads(str(info.value.body))["error"]["code"] == "invalid_cursor"


# --- restart ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cursors_survive_a_restart_and_die_with_a_new_secret(
    fresh_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    data, ns = tmp_path / "data", f"ns-{uuid.uuid4().hex[:10]}"
    first = fresh_server(data, embedder="hash")
    http = seed_corpus(first, ns)
    rid = make(http)
    ranked = ids(ok(named(http, rid)({"method": "offset", "page_size": 100})))
    cursor = ok(named(http, rid)(cur(None)))["pagination"]["cursor"]
    docs_cursor = next_cursor(http.get(DOCS, params={"limit": 5}))
    docs_page2 = ok(http.get(DOCS, params={"limit": 5, "cursor": docs_cursor}))["results"]
    http.close()
    first.stop()

    second = fresh_server(data, embedder="hash")
    with second.client(second.admin_key, namespace=ns) as again:
        assert ids(ok(named(again, rid)(cur(cursor)))) == ranked[5:10]
        assert ok(again.get(DOCS, params={"limit": 5, "cursor": docs_cursor}))["results"] == (
            docs_page2
        )
    second.stop()

    rotated = fresh_server(data, embedder="hash", cursor_secret="another-secret-long-enough")
    with rotated.client(rotated.admin_key, namespace=ns) as later:
        bad(named(later, rid)(cur(cursor)))
        bad(later.get(DOCS, params={"limit": 5, "cursor": docs_cursor}))
