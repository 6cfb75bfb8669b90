"""Execute pagination: four methods, all served from an execution's stored ranked snapshot."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from stagewise.errors import ValidationFailed

RESULT_WINDOW = 10_000  # ranked documents kept per execution; continuations read this snapshot
_LIMITS = {"cursor": 500, "offset": 500, "keyset": 500, "scroll": 1000}


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


def parse_page_request(raw: dict[str, Any] | None, default_limit: int) -> PageRequest:
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
