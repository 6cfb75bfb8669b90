"""Request dependencies: stores, the authenticated principal, the selected namespace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from stagewise.domain.records import NamespaceRecord
from stagewise.errors import InvalidRequest
from stagewise.services.context import Stores
from stagewise.services.keys import Principal, authenticate
from stagewise.services.namespaces import namespace_for

# The dependencies are `async def`: FastAPI runs a sync dependency in the thread pool, and
# those hops cost more than the work itself when the reads come from memory.
R = TypeVar("R")


async def store_read(stores: Stores, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run a metadata read inline when the store answers from this process (the embedded
    default: cached records, SQLite in WAL mode, whose readers never wait on writers), in
    the thread pool when it may wait on a server (PostgreSQL)."""
    if stores.inline_reads:
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


async def get_stores(request: Request) -> Stores:
    stores: Stores = request.app.state.stores
    return stores


StoresDep = Annotated[Stores, Depends(get_stores)]


# What a read-only key may call: every GET, and the POSTs that only read (lists, and the
# retriever executions, whose stored records are a log of reads). Any other route is a write,
# whether or not it declares WriterKey: a new POST route is refused to read-only keys until
# it is listed here. Route templates, not request paths, so an id can never match.
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READ_POST_SUFFIXES = ("/list",)
_READ_POSTS = frozenset(
    {
        "/v1/retrievers/execute",
        "/v1/retrievers/{retriever_id}/execute",
        "/v1/retrievers/{retriever_id}/execute/batch",
        "/v1/retrievers/{retriever_id}/execute/explain",
        # Taxonomy executes validate on samples and store nothing.
        "/v1/taxonomies/{taxonomy_identifier}/execute",
        "/v1/taxonomies/execute/{taxonomy_identifier}",
        # Scoring is a pure computation on the body: it reads and stores nothing.
        "/v1/evaluations/score",
    }
)


def is_read(method: str, route_path: str | None) -> bool:
    if method in _READ_METHODS:
        return True
    if method != "POST" or route_path is None:
        return False
    return route_path in _READ_POSTS or route_path.endswith(_READ_POST_SUFFIXES)


async def get_principal(
    request: Request, stores: StoresDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    principal = await store_read(stores, authenticate, stores, authorization)
    if principal.read_only:
        route = request.scope.get("route")
        if not is_read(request.method, getattr(route, "path", None)):
            principal.require_write()
    return principal


CurrentKey = Annotated[Principal, Depends(get_principal)]


async def get_writer(principal: CurrentKey) -> Principal:
    principal.require_write()
    return principal


WriterKey = Annotated[Principal, Depends(get_writer)]


async def get_admin(principal: CurrentKey) -> Principal:
    principal.require_admin()
    return principal


AdminKey = Annotated[Principal, Depends(get_admin)]


async def get_namespace_dep(
    stores: StoresDep,
    principal: CurrentKey,
    x_namespace: Annotated[str | None, Header()] = None,
) -> NamespaceRecord:
    identifier = x_namespace or principal.namespace_id
    if not identifier:
        raise InvalidRequest(
            "Select a namespace with the 'X-Namespace' header (its name or id)",
            code="namespace_required",
        )
    return await store_read(stores, namespace_for, stores, principal, identifier)


NamespaceDep = Annotated[NamespaceRecord, Depends(get_namespace_dep)]


M = TypeVar("M", bound=BaseModel)


async def orjson_body(request: Request) -> Any:
    """The request body as StrictJSONRoute parsed and checked it, else parsed with orjson
    (large vector payloads parse ~4x faster than with the stdlib json FastAPI uses);
    malformed JSON takes the usual 400 path."""
    if hasattr(request, "_json"):  # parsed once already (api/strict_json.py)
        return request._json
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": f"JSON decode error: {exc}"}]
        ) from exc


RawBody = Annotated[Any, Depends(orjson_body)]


def parse_body(model: type[M], raw: Any) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from exc
