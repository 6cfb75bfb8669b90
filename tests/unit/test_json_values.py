"""parse_request_json reads a body exactly as the stdlib would, whichever parser it takes
(orjson for speed, the stdlib where orjson could differ), and refuses what stores cannot hold."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagewise.domain.json_values import INT64_MAX, INT64_MIN, JsonLimits, parse_request_json
from stagewise.errors import ValidationFailed

pytestmark = pytest.mark.unit

LIMITS = JsonLimits(max_depth=32, max_string_bytes=10_000)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(INT64_MIN, INT64_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(values, st.booleans())
def test_reads_every_storable_body_as_the_stdlib_does(value: Any, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert parse_request_json(body, LIMITS) == json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"v": [0.1, 18446744073709551616]}',  # beyond uint64: orjson would make it a float
        b'{"v": [0.1, 9223372036854775808]}',  # beyond int64, within uint64
        b'{"v": -9223372036854775809}',
        b'{"v": 1e400}',
        b'{"v": [1, NaN]}',
        b'{"v": "\\ud800"}',
        b'{"v": ' + b"[" * 40 + b"]" * 40 + b"}",
    ],
)
def test_refuses_what_stores_cannot_hold(body: bytes) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_request_json(body, LIMITS)
    assert err.value.code == "invalid_json_value"


def test_long_digit_runs_in_strings_and_utf16_bodies_still_parse() -> None:
    text = {"id": "1234567890123456789012345", "v": [0.25, -3]}
    assert parse_request_json(json.dumps(text).encode(), LIMITS) == text
    assert parse_request_json(json.dumps(text).encode("utf-16"), LIMITS) == text
    with pytest.raises(json.JSONDecodeError):
        parse_request_json(b'{"v": [1,', LIMITS)
