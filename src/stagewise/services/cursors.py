"""Signed continuation tokens: every cursor, scroll id and keyset marker the server issues.

A token is `base64url(payload) "." base64url(HMAC-SHA256(secret, payload))`, unpadded. The
payload is compact JSON: version `v`, kind `k` ("exec" or "docs"), namespace `n`, scope `s`
(retriever id / "adhoc", or collection id plus a hash of the query), the position fields `p`
and, for scroll, an expiry `x` the server set. Decoding checks the tag first and then every
field, so a token the client edited, built by hand, or took from another query is a 400,
never a 500.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stagewise.errors import InvalidCursor

VERSION = 1
MAX_TOKEN_CHARS = 4096  # far above any token we issue; bounds the work on garbage input
SECRET_FILE = "cursor.secret"
# A field spec: `str` for a non-empty string, or the range an int must fall in.
FieldSpec = type[str] | range
_ENVELOPE = ("v", "k", "n", "s", "p")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    # validate=True: characters outside the url-safe alphabet are an error, not skipped.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


class CursorCodec:
    """Issues and checks tokens with one server secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the cursor secret must be at least 16 bytes")
        self._secret = secret

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def encode(
        self,
        kind: str,
        namespace_id: str,
        scope: str,
        fields: Mapping[str, Any],
        *,
        ttl_s: int | None = None,
        now: float | None = None,
    ) -> str:
        """A token for `fields`; with `ttl_s` it expires that many seconds from now."""
        state: dict[str, Any] = {"v": VERSION, "k": kind, "n": namespace_id, "s": scope}
        if ttl_s is not None:
            state["x"] = int(time.time() if now is None else now) + ttl_s
        state["p"] = dict(fields)  # nested, so a field can never shadow the envelope
        payload = json.dumps(state, separators=(",", ":"), ensure_ascii=True).encode()
        return f"{_b64(payload)}.{_b64(self._tag(payload))}"

    def decode(
        self,
        token: Any,
        *,
        kind: str,
        namespace_id: str,
        scope: str,
        spec: Mapping[str, FieldSpec],
        expires: bool = False,
        what: str = "cursor",
        now: float | None = None,
    ) -> dict[str, Any]:
        """The position fields of a token issued for exactly this kind, namespace and scope.

        Raises InvalidCursor for anything else: not a string, bad base64, a wrong tag,
        another kind/namespace/scope, missing or extra fields, wrong types or ranges, and
        (with `expires`) a missing or passed expiry.
        """
        state = self._verified(token, what)
        if state.get("v") != VERSION or state.get("k") != kind:
            raise _invalid(what)
        if state.get("n") != namespace_id or state.get("s") != scope:
            raise InvalidCursor(
                f"The {what} was issued for a different query; start again without it",
                field=what,
            )
        position = state.get("p")
        envelope = {*_ENVELOPE, *(("x",) if expires else ())}
        if set(state) != envelope or not isinstance(position, dict) or set(position) != set(spec):
            raise _invalid(what)
        if expires:
            expiry = state["x"]
            if not _is_int(expiry):
                raise _invalid(what)
            if (time.time() if now is None else now) > expiry:
                raise InvalidCursor(
                    f"The {what} has expired; start a new scroll", field=what, expired=True
                )
        out: dict[str, Any] = {}
        for key, rule in spec.items():
            value = position[key]
            if isinstance(rule, range):
                ok = _is_int(value) and value in rule
            else:
                ok = isinstance(value, str) and 0 < len(value) <= 256
            if not ok:
                raise _invalid(what)
            out[key] = value
        return out

    def _verified(self, token: Any, what: str) -> dict[str, Any]:
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise _invalid(what)
        body, dot, tag = token.partition(".")
        if not dot:
            raise _invalid(what)
        try:
            payload, given = _unb64(body), _unb64(tag)
        except (binascii.Error, ValueError) as exc:
            raise _invalid(what) from exc
        if not hmac.compare_digest(given, self._tag(payload)):
            raise _invalid(what)
        try:
            state = json.loads(payload)
        except ValueError as exc:  # only reachable with the secret itself; still a 400
            raise _invalid(what) from exc
        if not isinstance(state, dict):
            raise _invalid(what)
        return state


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _invalid(what: str) -> InvalidCursor:
    return InvalidCursor(
        f"The {what} is not valid: it was altered, truncated or not issued by this server",
        field=what,
    )


def query_hash(obj: Any) -> str:
    """A short, stable digest of a query (filters, sort, search) that a cursor is bound to."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def load_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, else one generated once and kept in the data dir (mode 0600)
    so cursors survive a restart. Both forms are text, so the file's content can be copied
    into STAGEWISE_CURSOR_SECRET to share it."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    existing = _read_secret(path)
    if existing is not None:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        # link() publishes the complete file, or fails if another process won the race.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    found = _read_secret(path)
    if found is None:
        raise RuntimeError(
            f"the cursor secret at {path} is too short; delete it or set STAGEWISE_CURSOR_SECRET"
        )
    return found


def _read_secret(path: Path) -> bytes | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return text.encode() if len(text) >= 16 else None
