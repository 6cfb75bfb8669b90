"""The signed cursor codec: every way a token can be wrong is an InvalidCursor (400)."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from stagewise.errors import InvalidCursor
from stagewise.services.cursors import CursorCodec, load_secret, query_hash

pytestmark = [pytest.mark.unit]

SPEC: dict[str, Any] = {"e": str, "o": range(10_001)}
codec = CursorCodec(b"k" * 32)


def enc(fields: dict[str, Any] | None = None, **kw: Any) -> str:
    return codec.encode("exec", "ns_a", "ret_a", {"e": "exec_1", "o": 7} | (fields or {}), **kw)


def dec(token: Any, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"kind": "exec", "namespace_id": "ns_a", "scope": "ret_a", "spec": SPEC}
    return codec.decode(token, **(args | kw))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def payload_of(token: str) -> dict[str, Any]:
    body = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def rejected(token: Any, **kw: Any) -> InvalidCursor:
    with pytest.raises(InvalidCursor) as info:
        dec(token, **kw)
    err = info.value
    assert (err.status, err.type, err.code) == (400, "BadRequestError", "invalid_cursor")
    return err


def test_round_trip_returns_exactly_the_position_fields() -> None:
    assert dec(enc()) == {"e": "exec_1", "o": 7}


def test_every_single_character_change_is_rejected() -> None:
    token = enc()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, ch in enumerate(token):
        if ch == ".":
            continue
        other = alphabet[(alphabet.index(ch) + 1) % len(alphabet)]
        forged = token[:i] + other + token[i + 1 :]
        try:
            got = dec(forged)
        except InvalidCursor:
            continue
        # Only the unused low bits of the last base64 character can change without effect.
        assert got == dec(token), (i, forged)


def test_edited_payload_with_the_old_tag_or_no_tag_is_rejected() -> None:
    token = enc()
    state = payload_of(token)
    assert state["p"] == {"e": "exec_1", "o": 7}
    state["p"]["o"] = 0
    edited = b64(json.dumps(state, separators=(",", ":")).encode())
    rejected(f"{edited}.{token.split('.')[1]}")
    rejected(edited)
    rejected(f"{edited}.")


def test_the_old_unsigned_formats_are_rejected() -> None:
    for state in ({"o": "x"}, {"o": -2}, {"e": "exec_1", "o": 3}, {"s": 5}):
        rejected(base64.urlsafe_b64encode(json.dumps(state).encode()).decode())


@pytest.mark.parametrize(
    "token",
    ["", "!!!not base64!!!", "abc", "a.b.c", "é.é", "x" * 5000, 12, None, ["a"], {"o": 1}],
)
def test_garbage_is_rejected(token: Any) -> None:
    rejected(token)


def test_another_secret_kind_namespace_or_scope_is_rejected() -> None:
    token = enc()
    with pytest.raises(InvalidCursor):
        CursorCodec(b"z" * 32).decode(
            token, kind="exec", namespace_id="ns_a", scope="ret_a", spec=SPEC
        )
    rejected(token, kind="docs")
    assert "different query" in rejected(token, namespace_id="ns_b").message
    assert "different query" in rejected(token, scope="ret_b").message


@pytest.mark.parametrize(
    "fields",
    [
        {"o": -1},
        {"o": 10_001},
        {"o": "3"},
        {"o": 2.0},
        {"o": True},
        {"o": None},
        {"e": 5},
        {"e": ""},
        {"e": "x" * 300},
        {"extra": 1},
    ],
)
def test_signed_but_out_of_range_or_mistyped_fields_are_rejected(fields: dict[str, Any]) -> None:
    rejected(enc(fields))


def test_a_missing_field_is_rejected() -> None:
    token = codec.encode("exec", "ns_a", "ret_a", {"e": "exec_1"})
    rejected(token)


def test_expiry_is_set_by_the_server_and_enforced() -> None:
    now = time.time()
    token = enc(ttl_s=300, now=now)
    assert payload_of(token)["x"] == int(now) + 300
    assert dec(token, expires=True) == {"e": "exec_1", "o": 7}
    err = rejected(token, expires=True, now=now + 301)
    assert "expired" in err.message and err.details["expired"] is True
    # A token without an expiry is not a scroll id, and an expiring one is not a cursor.
    rejected(enc(), expires=True)
    rejected(token)


def test_an_edited_expiry_is_rejected() -> None:
    token = enc(ttl_s=60)
    state = payload_of(token)
    state["x"] += 10**6
    edited = b64(json.dumps(state, separators=(",", ":")).encode())
    rejected(f"{edited}.{token.split('.')[1]}", expires=True)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        CursorCodec(b"short")


def test_generated_secret_is_private_and_survives_a_restart(tmp_path: Path) -> None:
    first = load_secret(None, tmp_path)
    path = tmp_path / "cursor.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load_secret(None, tmp_path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["cursor.secret"]  # no temp file left
    other = tmp_path / "other"
    assert load_secret(None, other) != first


def test_a_configured_secret_wins_and_matches_the_file_form(tmp_path: Path) -> None:
    assert load_secret("s" * 20, tmp_path) == b"s" * 20
    assert not (tmp_path / "cursor.secret").exists()
    generated = load_secret(None, tmp_path)
    # Copying the file's text into STAGEWISE_CURSOR_SECRET gives the same key.
    assert load_secret((tmp_path / "cursor.secret").read_text(), tmp_path / "x") == generated


def test_a_truncated_secret_file_is_a_loud_error(tmp_path: Path) -> None:
    (tmp_path / "cursor.secret").write_text("abc")
    with pytest.raises(RuntimeError, match="too short"):
        load_secret(None, tmp_path)


def test_query_hash_ignores_key_order_and_tells_queries_apart() -> None:
    a = query_hash([{"field": "x", "value": 1}, "metadata.year", True])
    b = query_hash([{"value": 1, "field": "x"}, "metadata.year", True])
    assert a == b
    assert a != query_hash([{"field": "x", "value": 2}, "metadata.year", True])
