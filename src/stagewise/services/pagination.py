"""Execute pagination: four methods, all served from an execution's stored ranked snapshot."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.errors import ValidationFailed
from stagewise.services.context import Stores

RESULT_WINDOW = 10_000  # ranked documents kept per execution; continuations read this snapshot
_LIMITS = {"cursor": 500, "offset": 500, "keyset": 500, "scroll": 1000}
Page = tuple[list[dict[str, Any]], dict[str, Any]]  # the documents and the pagination block


@dataclass
class PageRequest:
    method: str
    limit: int
    offset: int = 0
    execution_id: str | None = None  # set for continuations
    scroll_ttl: int = 300
    after: dict[str, Any] | None = None


def _token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _untoken(token: str, what: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
        if isinstance(state, dict) and "e" in state and "o" in state:
            return state
    except (ValueError, UnicodeDecodeError):
        pass
    raise ValidationFailed(f"The {what} is not valid", code=f"invalid_{what.replace(' ', '_')}")


def _int(raw: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValidationFailed(f"pagination.{key} must be an integer in {low}..{high}", field=key)
    return value


def parse_page_request(
    stores: Stores,
    namespace_id: str,
    scope: str,
    raw: dict[str, Any] | None,
    default_limit: int,
) -> PageRequest:
    """`scope` is what the continuation must belong to: the retriever id, or "adhoc"."""
    raw = dict(raw or {})
    method = raw.get("method") or "cursor"
    if method not in _LIMITS:
        raise ValidationFailed(
            f"pagination.method must be one of {sorted(_LIMITS)}", code="invalid_pagination"
        )
    high = _LIMITS[method]
    default_limit = min(default_limit, high)
    if method == "offset":
        size = _int(raw, "page_size", default_limit, 1, high)
        page = _int(raw, "page_number", 1, 1, RESULT_WINDOW)
        return PageRequest("offset", size, offset=(page - 1) * size)
    limit = _int(raw, "limit", 100 if method == "scroll" else default_limit, 1, high)
    if method == "cursor":
        cursor = raw.get("cursor")
        if cursor:
            state = _untoken(str(cursor), "cursor")
            return PageRequest("cursor", limit, offset=int(state["o"]), execution_id=state["e"])
        return PageRequest("cursor", limit)
    if method == "scroll":
        ttl = _int(raw, "scroll_ttl", 300, 60, 3600)
        scroll_id = raw.get("scroll_id")
        if scroll_id:
            state = _untoken(str(scroll_id), "scroll id")
            if time.time() > float(state.get("x", 0)):
                raise ValidationFailed(
                    "The scroll context has expired; start a new scroll", code="scroll_expired"
                )
            return PageRequest("scroll", limit, int(state["o"]), state["e"], ttl)
        return PageRequest("scroll", limit, scroll_ttl=ttl)
    after = raw.get("after")
    if after is not None and not isinstance(after, dict):
        raise ValidationFailed("pagination.after must be an object", field="after")
    if after:
        if "execution_id" in after and "position" in after:
            return PageRequest(
                "keyset", limit, int(after["position"]) + 1, after["execution_id"], after=after
            )
        return PageRequest("keyset", limit, after=after)
    return PageRequest("keyset", limit)


def page_response(
    req: PageRequest, execution_id: str, total: int, page: list[dict[str, Any]]
) -> dict[str, Any]:
    returned = len(page)
    next_offset = req.offset + returned
    has_next = next_offset < total
    out: dict[str, Any] = {
        "method": req.method,
        "returned": returned,
        "total": total,
        "has_next": has_next,
    }
    if req.method == "offset":
        out.update(page_number=req.offset // req.limit + 1, page_size=req.limit)
    elif req.method == "cursor":
        out.update(
            limit=req.limit,
            cursor=_token({"e": execution_id, "o": next_offset}) if has_next else None,
        )
    elif req.method == "scroll":
        out.update(
            limit=req.limit,
            scroll_id=_token(
                {"e": execution_id, "o": next_offset, "x": time.time() + req.scroll_ttl}
            )
            if has_next
            else None,
        )
    else:
        after = None
        if has_next and page:
            last = page[-1]
            after = {
                "score": last.get("score"),
                "document_id": last.get("document_id"),
                "execution_id": execution_id,
                "position": next_offset - 1,
            }
        out.update(limit=req.limit, after=after, next_cursor=after)
    return out


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
    doc_id, score = req.after.get("document_id") or req.after.get("id"), req.after.get("score")
    for pos, doc in enumerate(results):
        if doc.get("document_id") == doc_id:
            req.offset = pos + 1
            return req
    if isinstance(score, int | float):
        req.offset = sum(1 for d in results if float(d.get("score") or 0.0) > score)
    return req


def first_page(results: list[dict[str, Any]], record: ExecutionRecord, req: PageRequest) -> Page:
    """The requested page of a run that just finished, from its in-memory results."""
    req = _keyset_in(results, req)
    page = results[req.offset : req.offset + req.limit]
    return page, page_response(req, record.execution_id, record.total_results, page)


def stored_page(stores: Stores, record: ExecutionRecord, req: PageRequest) -> Page:
    """The requested page of a stored execution (a continuation, or a cached run)."""
    if req.method == "keyset":
        req = _keyset_in(results_of(stores, record, 0, record.total_results), req)
    page = results_of(stores, record, req.offset, req.limit)
    return page, page_response(req, record.execution_id, record.total_results, page)


def detail_pagination(
    stores: Stores, record: ExecutionRecord, page: list[dict[str, Any]], offset: int, limit: int
) -> dict[str, Any]:
    """Pagination of GET execution detail: an offset window over the stored snapshot."""
    return {
        "method": "offset",
        "returned": len(page),
        "total": record.total_results,
        "has_next": offset + len(page) < record.total_results,
        "page_size": limit,
        "page_number": offset // limit + 1,
    }
