"""Pages of one execution never overlap or skip, for any method, list length and sequence of
page sizes; and no edit of a token the server issued is ever accepted or ends in a crash."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagewise.domain.pipeline_records import ExecutionRecord
from stagewise.errors import InvalidCursor
from stagewise.services.context import Stores
from stagewise.services.cursors import CursorCodec
from stagewise.services.pagination import (
    first_page,
    page_response,
    parse_page_request,
    stored_page,
)

pytestmark = [pytest.mark.unit]
NS, SCOPE = "ns_prop", "ret_prop"


@dataclass
class _Results:
    ranked: list[dict[str, Any]]

    def get_execution_results(
        self, execution_id: str, offset: int, limit: int
    ) -> list[dict[str, Any]]:
        return self.ranked[offset : offset + limit]


@dataclass
class _Stores:
    """Just what pagination reads: the codec and an execution's stored ranked list."""

    metadata: _Results
    cursors: CursorCodec = field(default_factory=lambda: CursorCodec(b"p" * 32))


def ranked(n: int) -> list[dict[str, Any]]:
    # Ties in score on purpose: positions, not scores, must decide the pages.
    return [{"document_id": f"doc_{i}", "score": 1.0 - (i // 3) / 100} for i in range(n)]


def continuation(method: str, size: int, p: dict[str, Any]) -> dict[str, Any]:
    if method == "offset":
        return {"method": method, "page_size": size, "page_number": p["page_number"] + 1}
    if method == "keyset":
        return {"method": method, "limit": size, "after": p["after"]}
    name = "scroll_id" if method == "scroll" else "cursor"
    return {"method": method, "limit": size, name: p[name]}


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["cursor", "offset", "keyset", "scroll"]),
    n=st.integers(0, 60),
    sizes=st.lists(st.integers(1, 25), min_size=1, max_size=80),
)
def test_pages_never_overlap_or_skip(method: str, n: int, sizes: list[int]) -> None:
    docs = ranked(n)
    stores = cast(Stores, _Stores(_Results(docs)))
    record = ExecutionRecord(execution_id="exec_p", namespace_id=NS, total_results=n)
    size = sizes[0]
    raw: dict[str, Any] = {"method": method, "page_size" if method == "offset" else "limit": size}
    req = parse_page_request(stores, NS, SCOPE, raw, 10)
    page, p = first_page(docs, record, req)
    seen = [d["document_id"] for d in page]
    for size in [*sizes[1:], *[sizes[-1]] * (n + 1)]:
        assert p["offset"] + p["returned"] == len(seen)
        assert p["has_previous"] is (p["offset"] > 0) and p["total"] == n
        if not p["has_next"]:
            break
        if method == "offset":
            size = p["page_size"]  # offset pages are numbered in one size
        req = parse_page_request(stores, NS, SCOPE, continuation(method, size, p), 10)
        page, p = stored_page(stores, record, req)
        seen += [d["document_id"] for d in page]
    assert seen == [d["document_id"] for d in docs]


@settings(max_examples=300, deadline=None)
@given(
    offset=st.integers(0, 50),
    index=st.integers(0, 10_000),
    replacement=st.characters(codec="ascii"),
    method=st.sampled_from(["cursor", "scroll"]),
)
def test_an_edited_token_is_refused_never_crashes(
    offset: int, index: int, replacement: str, method: str
) -> None:
    stores = cast(Stores, _Stores(_Results(ranked(60))))
    req = parse_page_request(stores, NS, SCOPE, {"method": method, "limit": 5}, 10)
    req.offset = offset
    p = page_response(req, "exec_p", 60, ranked(60)[offset : offset + 5])
    name = "scroll_id" if method == "scroll" else "cursor"
    token = str(p[name])
    i = index % len(token)
    edited = token[:i] + replacement + token[i + 1 :]
    raw = {"method": method, "limit": 5, name: edited}
    try:
        got = parse_page_request(stores, NS, SCOPE, raw, 10)
    except InvalidCursor:
        return
    # Only an edit that decodes to the same bytes (unused base64 bits) may pass, unchanged.
    assert (got.execution_id, got.offset) == ("exec_p", offset + 5)
