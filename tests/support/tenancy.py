"""Tenants with look-alike content for the tenant-isolation property test, and its detector.

Every tenant gets the same collection names ("shared", "empty"), the same retriever names
("shared", "slow", "hold"), documents with the same BYO ids, and executions of every kind
(completed, cache hit, canary query, wait=false, streamed, batch, failed, still running,
adhoc), continuation tokens (cursor, scroll id, keyset marker; named and adhoc; document-list
cursors) and keys (namespace-bound, and bound read-only). What differs is what leaks: each
tenant's texts, metadata and descriptions carry canary words ("zq" + tenant label + random
hex) that no request ever sends, and its ids and private names are random.

The detector (`leaked`, `foreign_ids`) flags, in any response body: a string of another
tenant that the request did not itself send (ids, private names, canaries, key secrets), and
another tenant's id in an id-bearing field (or as a dict key) of a successful answer, whether
the request sent it or not.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import Field

from stagewise.pipeline.registry import get_stage, register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)
from stagewise.services import keys
from tests.support import slow_stage  # noqa: F401  (registers the test_slow stage)
from tests.support.server import ServerHandle

FEATURE_URI = "mixpeek://text_extractor@v1/all_minilm_l6_v2"
SHARED_DOC_IDS = [f"doc-{i:03d}" for i in range(6)]
IDEMPOTENT_DOC = "doc-idem"
SHARED_IDEMPOTENCY_KEY = "idem-shared"
# The "running" execution of each tenant waits for RELEASE, at most this long (below the
# server's 60 s execution deadline).
HOLD_MAX_MS = 50_000
RELEASE = threading.Event()
CANARY = "zq"

# Fields whose value is an id of some tenant's resource (or a list of them).
ID_KEYS = frozenset(
    {
        "namespace_id",
        "collection_id",
        "collection_ids",
        "collection_identifiers",
        "retriever_id",
        "source_retriever_id",
        "execution_id",
        "source_execution_id",
        "document_id",
        "document_ids",
        "target_collection_id",
        "key_id",
        "bucket_id",
        "object_id",
        "blob_id",
    }
)


class HoldParams(StageParams):
    max_ms: float = Field(default=HOLD_MAX_MS, ge=0)


class HoldStage(Stage):
    """Runs until the isolation test releases it (RELEASE), so that its execution is still
    running, read from memory, while the attacks run; registered like a plug-in stage."""

    stage_id: ClassVar[str] = "test_tenancy_hold"
    category: ClassVar[Category] = "apply"
    description: ClassVar[str] = "Waits until the tenant-isolation test releases it (tests only)"
    Params = HoldParams

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: HoldParams = self.params  # type: ignore[assignment]
        deadline = time.perf_counter() + p.max_ms / 1000.0
        while not RELEASE.wait(0.01) and time.perf_counter() < deadline:
            ctx.budget.check()
        return StageResult(list(candidates), metadata={})


if get_stage(HoldStage.stage_id) is None:
    register(HoldStage)


def search_stage(query: str = "{{INPUT.query}}") -> dict[str, Any]:
    return {
        "stage_name": "search",
        "config": {
            "stage_id": "feature_search",
            "parameters": {
                "searches": [
                    {
                        "feature_uri": FEATURE_URI,
                        "query": {"input_mode": "text", "value": query},
                        "top_k": 50,
                    }
                ],
                "final_top_k": 10,
            },
        },
    }


def adhoc_body(collection: str = "shared", **more: Any) -> dict[str, Any]:
    return {
        "collection_identifiers": [collection],
        "input_schema": {"query": {"type": "text"}},
        "stages": [search_stage()],
        **more,
    }


@dataclass
class Tenant:
    label: str
    name: str
    id: str = ""
    writer: str = ""  # a key bound to this namespace
    reader: str = ""  # a read-only key bound to this namespace
    key_ids: list[str] = field(default_factory=list)
    collections: dict[str, str] = field(default_factory=dict)  # name -> id
    docs: dict[str, set[str]] = field(default_factory=dict)  # collection id -> document ids
    only_doc: str = ""  # a BYO id no other tenant has
    auto_docs: list[str] = field(default_factory=list)  # server-made ids
    retrievers: dict[str, str] = field(default_factory=dict)  # name -> id
    executions: dict[str, str] = field(default_factory=dict)  # kind -> named execution id
    execution_retriever: dict[str, str] = field(default_factory=dict)  # id -> retriever id
    adhoc: dict[str, str] = field(default_factory=dict)  # kind -> adhoc execution id
    tokens: dict[str, Any] = field(default_factory=dict)  # kind -> cursor/scroll id/marker
    doc_cursors: list[str] = field(default_factory=list)  # [plain list, filtered list]
    idem_key: str = ""
    idem_body: dict[str, Any] = field(default_factory=dict)
    private_collection: str = ""
    private_retriever: str = ""
    buckets: dict[str, str] = field(default_factory=dict)  # name -> id
    objects: dict[str, list[str]] = field(default_factory=dict)  # bucket id -> object ids
    private_bucket: str = ""
    object_cursor: str = ""  # a next_cursor of the "shared" bucket's object list
    # What is this tenant's alone, with what it is (for readable failure reports).
    own: dict[str, str] = field(default_factory=dict)

    def canary(self, what: str) -> str:
        word = f"{CANARY}{self.label}{what.replace('-', '')}{secrets.token_hex(4)}"
        self.own[word] = f"{self.label} canary: {what}"
        return word

    def mine(self, value: str, what: str) -> str:
        self.own[value] = f"{self.label} {what}"
        return value

    def col(self, identifier: str) -> str | None:
        """The collection an identifier names in this namespace (by id or by name)."""
        if identifier in self.collections.values():
            return identifier
        return self.collections.get(identifier)

    def ret(self, identifier: str) -> str | None:
        if identifier in self.retrievers.values():
            return identifier
        return self.retrievers.get(identifier)

    def bkt(self, identifier: str) -> str | None:
        if identifier in self.buckets.values():
            return identifier
        return self.buckets.get(identifier)

    def has_doc(self, document_id: str) -> bool:
        return any(document_id in ids for ids in self.docs.values())

    @property
    def ids(self) -> set[str]:
        """The ids of this tenant's resources (shared BYO ids excluded: every tenant has them)."""
        return {
            self.id,
            *self.collections.values(),
            *self.retrievers.values(),
            *self.executions.values(),
            *self.adhoc.values(),
            *self.key_ids,
            self.only_doc,
            *self.auto_docs,
        }


@dataclass
class Forbidden:
    """What a principal of one tenant must never be shown: the others' strings and ids."""

    strings: dict[str, str]  # string -> what it is
    ids: set[str]

    @classmethod
    def of(cls, tenants: Iterable[Tenant], home: Tenant) -> Forbidden:
        strings: dict[str, str] = {}
        ids: set[str] = set()
        for t in tenants:
            if t is not home:
                strings.update(t.own)
                ids |= t.ids
        return cls(strings, ids)


def leaked(text: str, request_text: str, forbidden: Forbidden) -> list[str]:
    """The forbidden strings in a response that the request did not itself send."""
    return sorted(
        f"{s!r} ({what})"
        for s, what in forbidden.strings.items()
        if s in text and s not in request_text
    )


def _walk(obj: Any, path: str = "$") -> Iterator[tuple[str, Any, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield path, k, v
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{path}[{i}]")


def foreign_ids(obj: Any, forbidden: Forbidden, echoed: str = "") -> list[str]:
    """Another tenant's ids in id-bearing fields or as keys of `obj` (a parsed body). Values
    found in `echoed` (the request) are let through: for error bodies, which name what was
    asked for."""

    def bad(value: Any) -> bool:
        return isinstance(value, str) and value in forbidden.ids and value not in echoed

    found = []
    for path, key, value in _walk(obj):
        if bad(key):
            found.append(f"{path}: key {key!r}")
        if key in ID_KEYS:
            values = value if isinstance(value, list) else [value]
            found += [f"{path}.{key} = {v!r}" for v in values if bad(v)]
    return found


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


# --- seeding ------------------------------------------------------------------------------


def _ok(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, (resp.request.method, resp.request.url, resp.text)
    return resp.json()


def seed_tenant(server: ServerHandle, label: str) -> Tenant:
    """One namespace with the look-alike content described in the module docstring."""
    tag = secrets.token_hex(4)
    t = Tenant(label=label, name=f"iso-{label}-{tag}")
    t.mine(t.name, "namespace name")
    admin = server.client(server.admin_key)
    ns = _ok(
        admin.post(
            "/v1/namespaces",
            json={"namespace_name": t.name, "description": t.canary("namespace-description")},
        )
    )
    t.id = t.mine(ns["namespace_id"], "namespace id")
    http = server.client(server.admin_key, namespace=t.name)

    # Collections: two look-alike names and one of this tenant's own.
    t.private_collection = t.mine(f"private-{label}-{tag}", "private collection name")
    extractor = {"feature_extractor_name": "text_extractor", "version": "v1"}
    for name, body in (
        ("shared", {"source": {"type": "direct_upsert"}, "feature_extractor": extractor}),
        (
            t.private_collection,
            {"source": {"type": "direct_upsert"}, "feature_extractor": extractor},
        ),
        ("empty", {"source": {"type": "none"}}),
    ):
        col = _ok(
            http.post(
                "/v1/collections",
                json={"collection_name": name, "description": t.canary(f"{name[:7]}-desc"), **body},
            )
        )
        t.collections[name] = t.mine(col["collection_id"], f"collection id of {name!r}")
        t.docs[col["collection_id"]] = set()
    shared, private = t.collections["shared"], t.collections[t.private_collection]

    # Documents: the same BYO ids in every tenant, one BYO id of its own, server-made ids.
    t.only_doc = t.mine(f"only-{label}-{tag}", "tenant-only BYO document id")
    byo = [
        {
            "document_id": doc_id,
            "payload": {"text": f"alpha report item{i} {t.canary(f'doc{i}')}"},
            "metadata": {"tenant_tag": t.canary(f"meta{i}"), "year": 2000 + i},
            "vectors": {},
        }
        for i, doc_id in enumerate([*SHARED_DOC_IDS, t.only_doc])
    ]
    upsert = f"/v1/namespaces/{t.name}/documents/upsert"
    _ok(http.post(upsert, json={"collection_id": shared, "documents": byo}))
    t.docs[shared] |= {d["document_id"] for d in byo}
    for col_name, col_id, n in (("shared", shared, 2), (t.private_collection, private, 3)):
        for i in range(n):
            doc = _ok(
                http.post(
                    f"/v1/collections/{col_name}/documents",
                    json={
                        "text": f"alpha report made{i} {t.canary(f'made{i}')}",
                        "metadata": {"tenant_tag": t.canary(f"madememo{i}"), "year": 2010 + i},
                    },
                )
            )
            t.auto_docs.append(t.mine(doc["document_id"], "server-made document id"))
            t.docs[col_id].add(doc["document_id"])
    # Idempotent upserts: a key every tenant uses, and one of this tenant's own.
    t.idem_key = t.mine(f"idem-{label}-{tag}", "idempotency key")
    for key in (SHARED_IDEMPOTENCY_KEY, t.idem_key):
        body = {
            "collection_id": shared,
            "documents": [
                {
                    "document_id": IDEMPOTENT_DOC,
                    "payload": {"text": f"alpha idem {t.canary('idem')}"},
                    "vectors": {},
                }
            ],
            "options": {"idempotency_key": key},
        }
        _ok(http.post(upsert, json=body))
    t.idem_body = body
    t.docs[shared].add(IDEMPOTENT_DOC)

    # Retrievers: look-alike names and definitions, and one of this tenant's own.
    t.private_retriever = t.mine(f"privret-{label}-{tag}", "private retriever name")
    slow = {"stage_name": "slow", "config": {"stage_id": "test_slow", "parameters": {}}}
    for name, body in (
        ("shared", {"collection_identifiers": ["shared"], "stages": [search_stage()]}),
        (
            t.private_retriever,
            {"collection_identifiers": [t.private_collection], "stages": [search_stage()]},
        ),
        (
            "slow",  # fails: its time budget ends long before the stage does
            {
                "collection_identifiers": ["shared"],
                "stages": [
                    {**slow, "config": {**slow["config"], "parameters": {"total_ms": 2000}}}
                ],
                "budget_limits": {"max_time_ms": 50},
            },
        ),
        (
            "hold",  # still running while the attacks run (see HoldStage)
            {
                "collection_identifiers": ["shared"],
                "stages": [
                    {
                        "stage_name": "hold",
                        "config": {"stage_id": HoldStage.stage_id, "parameters": {}},
                    }
                ],
            },
        ),
    ):
        r = _ok(
            http.post(
                "/v1/retrievers",
                json={
                    "retriever_name": name,
                    "description": t.canary(f"ret-{name[:7]}"),
                    "input_schema": {"query": {"type": "text"}},
                    "metadata": {"owner": t.canary("ret-owner")},
                    **body,
                },
            )
        )
        t.retrievers[name] = t.mine(r["retriever_id"], f"retriever id of {name!r}")

    def named(kind: str, retriever: str, body: dict[str, Any], **params: Any) -> dict[str, Any]:
        rid = t.retrievers[retriever]
        out = _ok(http.post(f"/v1/retrievers/{rid}/execute", json=body, params=params))
        t.executions[kind] = t.mine(out["execution_id"], f"{kind} execution id")
        t.execution_retriever[out["execution_id"]] = rid
        return out

    query = {"query": "alpha report"}
    first = named(
        "completed", "shared", {"inputs": query, "pagination": {"method": "cursor", "limit": 2}}
    )
    t.tokens["cursor"] = first["pagination"]["cursor"]
    t.tokens["keyset"] = first["pagination"]["after"]
    hit = named(
        "cache_hit", "shared", {"inputs": query, "pagination": {"method": "scroll", "limit": 2}}
    )
    t.tokens["scroll"] = hit["pagination"]["scroll_id"]
    named("canary_query", "shared", {"inputs": {"query": f"alpha {t.canary('query')}"}})
    named("background", "shared", {"inputs": {"query": "alpha background"}}, wait="false")
    named("private", t.private_retriever, {"inputs": query})
    named("failed", "slow", {"inputs": {}})
    stream = http.post(
        f"/v1/retrievers/{t.retrievers['shared']}/execute",
        json={"inputs": {"query": "alpha stream"}, "stream": True},
        params={"skip_cache": "true"},
    )
    assert stream.status_code == 200, stream.text
    done = sse_events(stream.text)[-1]
    t.executions["stream"] = t.mine(done["execution_id"], "streamed execution id")
    t.execution_retriever[done["execution_id"]] = t.retrievers["shared"]
    batch = _ok(
        http.post(
            f"/v1/retrievers/{t.retrievers['shared']}/execute/batch",
            json={"queries": [{"inputs": {"query": "alpha one"}}, {"inputs": {"query": "two"}}]},
        )
    )
    for i, result in enumerate(batch["results"]):
        t.executions[f"batch{i}"] = t.mine(result["execution_id"], "batch execution id")
        t.execution_retriever[result["execution_id"]] = t.retrievers["shared"]

    def adhoc(kind: str, body: dict[str, Any]) -> dict[str, Any]:
        out = _ok(http.post("/v1/retrievers/execute", json=body))
        t.adhoc[kind] = t.mine(out["execution_id"], f"adhoc {kind} execution id")
        return out

    out = adhoc("cursor", adhoc_body(inputs=query, pagination={"method": "cursor", "limit": 2}))
    t.tokens["adhoc_cursor"] = out["pagination"]["cursor"]
    t.tokens["adhoc_keyset"] = out["pagination"]["after"]
    out = adhoc("scroll", adhoc_body(inputs=query, pagination={"method": "scroll", "limit": 2}))
    t.tokens["adhoc_scroll"] = out["pagination"]["scroll_id"]
    enrich = {
        "stage_name": "join",
        "config": {
            "stage_id": "document_enrich",
            "parameters": {
                "target_collection_id": t.private_collection,
                "target_field": "year",
                "source_field": "metadata.year",
            },
        },
    }
    adhoc(
        "enrich",
        {
            **adhoc_body(inputs={"query": f"alpha {t.canary('adhoc-query')}"}),
            "stages": [search_stage(), enrich],
        },
    )

    # Document-list cursors: a plain list and a filtered one.
    docs = f"/v1/collections/{shared}/documents"
    t.doc_cursors.append(_ok(http.get(docs, params={"limit": 2}))["pagination"]["next_cursor"])
    filtered = {"filters": {"AND": [{"field": "metadata.year", "operator": "gte", "value": 2001}]}}
    out = _ok(http.post(f"{docs}/list", json={**filtered, "limit": 1}))
    t.doc_cursors.append(out["pagination"]["next_cursor"])
    assert all(t.doc_cursors), t.doc_cursors

    seed_buckets(http, t, tag)

    # Keys, made in-process as the operator's CLI does.
    stores = server.server.config.app.state.stores  # type: ignore[attr-defined]
    for attr, read_only in (("writer", False), ("reader", True)):
        secret, record = keys.create_key(
            stores.metadata, name=t.canary(f"key-{attr}"), namespace_id=t.id, read_only=read_only
        )
        setattr(t, attr, t.mine(secret, f"{attr} key secret"))
        t.key_ids.append(t.mine(record.key_id, f"{attr} key id"))

    # The wait=false run has finished (the "hold" run is started last, by start_hold).
    status = f"/v1/retrievers/{t.retrievers['shared']}/executions/{t.executions['background']}"
    deadline = time.monotonic() + 30
    while _ok(http.get(f"{status}/status"))["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, "the wait=false execution did not finish"
        time.sleep(0.02)
    admin.close()
    http.close()
    return t


def seed_buckets(http: httpx.Client, t: Tenant, tag: str) -> None:
    """Buckets "shared" (a look-alike name) and one of this tenant's own, each with objects
    whose root fields and text blobs carry canaries."""
    t.private_bucket = t.mine(f"bucket-{t.label}-{tag}", "private bucket name")
    schema = {"properties": {"title": {"type": "string"}, "body": {"type": "text"}}}
    for name in ("shared", t.private_bucket):
        bucket = _ok(
            http.post(
                "/v1/buckets",
                json={
                    "bucket_name": name,
                    "description": t.canary(f"{name[:6]}-bucket"),
                    "bucket_schema": schema,
                },
            )
        )
        bid = t.buckets[name] = t.mine(bucket["bucket_id"], f"bucket id of {name!r}")
        t.objects[bid] = []
        for i in range(3):
            blob = {"property": "body", "type": "text", "data": f"alpha {t.canary(f'blob{i}')}"}
            obj = _ok(
                http.post(
                    f"/v1/buckets/{bid}/objects",
                    json={"title": t.canary(f"object{i}"), "blobs": [blob]},
                )
            )
            t.objects[bid].append(t.mine(obj["object_id"], "object id"))
            t.mine(obj["blobs"][0]["blob_id"], "blob id")
    page = _ok(http.get(f"/v1/buckets/{t.buckets['shared']}/objects", params={"limit": 1}))
    t.object_cursor = t.mine(page["pagination"]["next_cursor"], "object list cursor")


def start_hold(server: ServerHandle, t: Tenant) -> None:
    """A wait=false run that goes on until RELEASE is set (read from memory meanwhile)."""
    with server.client(server.admin_key, namespace=t.name) as http:
        out = _ok(
            http.post(
                f"/v1/retrievers/{t.retrievers['hold']}/execute",
                json={"inputs": {}},
                params={"wait": "false"},
            )
        )
    t.executions["running"] = t.mine(out["execution_id"], "running execution id")
    t.execution_retriever[out["execution_id"]] = t.retrievers["hold"]


def fingerprint(server: ServerHandle, tenants: Iterable[Tenant]) -> dict[str, Any]:
    """What each tenant holds, as its admin reads it: attacks must not change any of it
    (clones an attacker made in its own namespace aside)."""
    out: dict[str, Any] = {}
    with server.client(server.admin_key) as admin:
        for t in tenants:
            h = {"X-Namespace": t.id}
            ns = _ok(admin.get(f"/v1/namespaces/{t.id}"))
            cols = _ok(admin.get("/v1/collections", params={"include_system": True}, headers=h))
            rets = _ok(admin.get("/v1/retrievers", params={"limit": 1000}, headers=h))
            out[t.label] = {
                "namespace": (ns["namespace_name"], ns.get("description")),
                "collections": sorted(
                    (
                        c["collection_id"],
                        c["collection_name"],
                        c.get("description"),
                        _ok(
                            admin.get(
                                f"/v1/collections/{c['collection_id']}/documents/count",
                                headers=h,
                            )
                        )["count"],
                    )
                    for c in cols["results"]
                ),
                "retrievers": sorted(
                    (r["retriever_id"], r["retriever_name"], r.get("description"), r["version"])
                    for r in rets["results"]
                    if not r["retriever_name"].startswith("clone-")
                ),
                "buckets": _buckets(admin, h),
                "keys": sorted(
                    (k["key_id"], k["status"])
                    for k in _ok(admin.get("/v1/keys", params={"namespace": t.id}))["results"]
                ),
            }
    return out


def _buckets(admin: httpx.Client, headers: dict[str, str]) -> list[Any]:
    out = []
    for b in _ok(admin.get("/v1/buckets", params={"limit": 1000}, headers=headers))["results"]:
        path = f"/v1/buckets/{b['bucket_id']}/objects"
        objects = _ok(admin.get(path, params={"limit": 1000}, headers=headers))["results"]
        figures = (b["bucket_name"], b["description"], b["object_count"], b["total_size_bytes"])
        out.append((b["bucket_id"], *figures, [(o["object_id"], o["title"]) for o in objects]))
    return sorted(out)
