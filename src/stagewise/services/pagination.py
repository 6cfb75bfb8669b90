"""Execute pagination: four methods, all served from an execution's stored ranked snapshot.

Continuations (cursor, scroll id, the keyset marker we issue) are signed tokens from
services/cursors.py bound to the namespace and the scope (retriever id or "adhoc"), so a token
that was edited or comes from another retriever or namespace is a 400 before any page is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.errors import InvalidCursor, ValidationFailed
from stagewise.services.context import Stores
from stagewise.services.cursors import CursorCodec, FieldSpec

RESULT_WINDOW = 10_000  # ranked documents kept per execution; continuations read this snapshot
_LIMITS = {"cursor": 500, "offset": 500, "keyset": 500, "scroll": 1000}
Page = tuple[list[dict[str, Any]], dict[str, Any]]  # the documents and the pagination block
KIND = "exec"
_POSITION: dict[str, FieldSpec] = {"m": str, "e": str, "o": range(RESULT_WINDOW + 1)}
# The keyset token also names its marker's document id, checked against the readable one.
_KEYSET: dict[str, FieldSpec] = {**_POSITION, "d": str}
_TOKEN_FIELD = {
    "cursor": "pagination.cursor",
    "scroll": "pagination.scroll_id",
    "keyset": "pagination.after",
}


@dataclass
class PageRequest:
    method: str
    limit: int
    # What continuations are signed with and bound to (see module doc).
    codec: CursorCodec
    namespace_id: str
    scope: str
    offset: int = 0
    execution_id: str | None = None  # set for continuations
    scroll_ttl: int = 300
    after: dict[str, Any] | None = None


def _int(raw: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValidationFailed(f"pagination.{key} must be an integer in {low}..{high}", field=key)
    return value


def scope_of(record: ExecutionRecord) -> str:
    return record.retriever_id or "adhoc"


def parse_page_request(
    stores: Stores,
    namespace_id: str,
    scope: str,
    raw: dict[str, Any] | None,
    default_limit: int,
) -> PageRequest:
    """`scope` is what the continuation must belong to: the retriever id, or "adhoc"."""
    if raw is not None and not isinstance(raw, dict):
        raise ValidationFailed("pagination must be an object", code="invalid_pagination")
    raw = dict(raw or {})
    method = raw.get("method") or "cursor"
    if method not in _LIMITS:
        raise ValidationFailed(
            f"pagination.method must be one of {sorted(_LIMITS)}", code="invalid_pagination"
        )
    high = _LIMITS[method]
    default_limit = min(default_limit, high)
    req = PageRequest(method, default_limit, stores.cursors, namespace_id, scope)
    if method == "offset":
        req.limit = _int(raw, "page_size", default_limit, 1, high)
        req.offset = (_int(raw, "page_number", 1, 1, RESULT_WINDOW) - 1) * req.limit
        return req
    req.limit = _int(raw, "limit", 100 if method == "scroll" else default_limit, 1, high)
    if method == "scroll":
        req.scroll_ttl = _int(raw, "scroll_ttl", 300, 60, 3600)
    token: Any = None
    if method == "cursor":
        token = _present(raw.get("cursor"))
    elif method == "scroll":
        token = _present(raw.get("scroll_id"))
    else:
        req.after = _marker(raw.get("after"))
        token = req.after.get("token") if req.after else None
    if token is not None:
        what = _TOKEN_FIELD[method]
        state = _decode(req, token, method, what)
        req.execution_id, req.offset = state["e"], state["o"]
        if req.after is not None and req.after.get("document_id", state["d"]) != state["d"]:
            raise InvalidCursor("pagination.after does not match its token", field="after")
    return req


def _present(value: Any) -> Any:
    """null and "" mean "first page" (what SDKs send before they have a token)."""
    return None if value is None or value == "" else value


def _marker(after: Any) -> dict[str, Any] | None:
    """The keyset marker: ours carries a signed `token`; a client-built one is a bare
    {score, document_id|id} resolved by position in the ranked list."""
    if after is None or after == {}:
        return None
    if not isinstance(after, dict):
        raise InvalidCursor("pagination.after must be an object", field="after")
    if "token" in after:
        return after
    if "execution_id" in after or "position" in after:
        # Positions are only honoured inside a signed token; a hand-made one could overlap.
        raise InvalidCursor(
            "pagination.after names a position without the token that vouches for it; send "
            "the marker from the previous response unchanged, or just {score, document_id}",
            field="after",
        )
    doc_id, score = _doc_id(after), after.get("score")
    if doc_id is None and score is None:
        raise InvalidCursor("pagination.after needs document_id (or id) or score", field="after")
    if doc_id is not None and not isinstance(doc_id, str):
        raise InvalidCursor("pagination.after.document_id must be a string", field="after")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        raise InvalidCursor("pagination.after.score must be a number", field="after")
    return after


def _doc_id(after: dict[str, Any]) -> Any:
    return after.get("document_id") or after.get("id")


def _decode(req: PageRequest, token: Any, method: str, what: str) -> dict[str, Any]:
    state = req.codec.decode(
        token,
        kind=KIND,
        namespace_id=req.namespace_id,
        scope=req.scope,
        spec=_KEYSET if method == "keyset" else _POSITION,
        expires=method == "scroll",
        what=what,
    )
    if state["m"] != method:
        raise InvalidCursor(
            f"This {what} was issued for {state['m']} pagination, not {method}", field=what
        )
    return state


@dataclass
class _Issuer:
    """Mints the continuations of one page (all bound to the same execution and scope)."""

    codec: CursorCodec
    namespace_id: str
    scope: str
    execution_id: str

    def token(self, method: str, offset: int, ttl_s: int | None = None, **more: Any) -> str:
        fields = {"m": method, "e": self.execution_id, "o": offset, **more}
        return self.codec.encode(KIND, self.namespace_id, self.scope, fields, ttl_s=ttl_s)


def _union(
    issuer: _Issuer,
    method: str,
    limit: int,
    offset: int,
    total: int,
    page: list[dict[str, Any]],
    scroll_ttl: int,
) -> dict[str, Any]:
    """Every key the seed reference and the SDK name, for every method, each with its value."""
    returned = len(page)
    next_offset = offset + returned
    has_next = returned > 0 and next_offset < total
    cursor = after = scroll_id = None
    if has_next:
        cursor = issuer.token("cursor", next_offset)
        last = page[-1]
        doc_id = str(last.get("document_id"))
        after = {
            "score": last.get("score"),
            "document_id": doc_id,
            "token": issuer.token("keyset", next_offset, d=doc_id),
        }
        # A scroll id carries a server-set expiry for a scroll session; other methods have
        # no session (or scroll_ttl) to bound, so they get null rather than an invented one.
        if method == "scroll":
            scroll_id = issuer.token("scroll", next_offset, ttl_s=scroll_ttl)
    return {
        "method": method,
        "page_number": offset // limit + 1,
        "page_size": limit,
        "limit": limit,
        "offset": offset,
        "returned": returned,
        "total": total,
        "has_next": has_next,
        "has_previous": offset > 0,
        "cursor": cursor,
        # What this method's next request sends: the marker for keyset (`after` is an
        # object), the cursor token otherwise.
        "next_cursor": after if method == "keyset" else cursor,
        "scroll_id": scroll_id,
        "after": after,
    }


def page_response(
    req: PageRequest, execution_id: str, total: int, page: list[dict[str, Any]]
) -> dict[str, Any]:
    issuer = _Issuer(req.codec, req.namespace_id, req.scope, execution_id)
    return _union(issuer, req.method, req.limit, req.offset, total, page, req.scroll_ttl)


def results_of(
    stores: Stores, record: ExecutionRecord, offset: int, limit: int
) -> list[dict[str, Any]]:
    """A window of an execution's stored ranked list (a cache hit reads its source's)."""
    return stores.metadata.get_execution_results(
        record.source_execution_id or record.execution_id, offset, limit
    )


def _keyset_in(results: list[dict[str, Any]], req: PageRequest) -> PageRequest:
    """Resolve a bare keyset marker {score, document_id} to a position in a ranked list."""
    if req.method != "keyset" or not req.after or req.execution_id is not None:
        return req
    doc_id, score = _doc_id(req.after), req.after.get("score")
    for pos, doc in enumerate(results):
        if doc_id is not None and doc.get("document_id") == doc_id:
            req.offset = pos + 1
            return req
    if score is None:
        # Restarting at the top would repeat pages the caller has already seen.
        raise InvalidCursor(
            f"pagination.after names document '{doc_id}', which is not in these results; "
            "add its score to resume after it",
            field="after",
        )
    req.offset = sum(1 for d in results if float(d.get("score") or 0.0) > score)
    return req


def first_page(results: list[dict[str, Any]], record: ExecutionRecord, req: PageRequest) -> Page:
    """The requested page of a run that just finished, from its in-memory results."""
    req = _keyset_in(results, req)
    page = results[req.offset : req.offset + req.limit]
    return page, page_response(req, record.execution_id, record.total_results, page)


def stored_page(stores: Stores, record: ExecutionRecord, req: PageRequest) -> Page:
    """The requested page of a stored execution (a continuation, or a cached run)."""
    if req.method == "keyset" and req.after and req.execution_id is None:
        req = _keyset_in(results_of(stores, record, 0, record.total_results), req)
    page = results_of(stores, record, req.offset, req.limit)
    return page, page_response(req, record.execution_id, record.total_results, page)


def detail_pagination(
    stores: Stores, record: ExecutionRecord, page: list[dict[str, Any]], offset: int, limit: int
) -> dict[str, Any]:
    """Pagination of GET execution detail: an offset window over the stored snapshot, with
    the same keys as execute; its cursor and marker continue through execute."""
    issuer = _Issuer(stores.cursors, record.namespace_id, scope_of(record), record.execution_id)
    return _union(issuer, "offset", limit, offset, record.total_results, page, 300)
