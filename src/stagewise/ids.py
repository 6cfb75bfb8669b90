"""Resource ids: a prefix plus a random token, and time helpers shared by every layer."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import time
import uuid
from datetime import UTC, datetime

from stagewise.errors import ValidationFailed

_ALPHABET = string.ascii_lowercase + string.digits
_POINT_NAMESPACE = uuid.UUID("6f1c3a52-2a43-4d0e-9a57-5b8e3c2f7d10")
_POINT_PREFIX = _POINT_NAMESPACE.bytes

PREFIXES = ("ns_", "col_", "doc_", "ret_", "exec_", "key_", "sk_")


def new_id(prefix: str, length: int = 12) -> str:
    # One draw from the OS's randomness, not one per character (a choice each cost ~25 us).
    return prefix + _base36(secrets.randbelow(36**length), length)


def _base36(value: int, width: int) -> str:
    out = ""
    while value:
        value, digit = divmod(value, 36)
        out = _ALPHABET[(digit + 26) % 36] + out  # digits sort before letters, as in ASCII
    return out.rjust(width, "0")


def new_sortable_id(prefix: str) -> str:
    """An id whose text order is its creation order (to the microsecond), then random: what
    keyset listings "oldest first" page on (bucket objects)."""
    return prefix + _base36(time.time_ns() // 1000, 11) + new_id("", 8)


# Ids a client may choose (a namespace's, a BYO document's): never a path, never empty.
CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def check_client_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not CLIENT_ID.match(value):
        raise ValidationFailed(
            f"{field} {value!r} is not a valid id: 1 to 128 letters, digits, '_', '-', '.' or "
            "':', starting with a letter or digit",
            code="invalid_id",
            field=field,
        )
    return value


def new_api_key() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def point_id(document_id: str) -> str:
    """Qdrant point ids must be ints or UUIDs; document ids are strings. This is uuid5 of the
    document id, spelled out: uuid.uuid5 builds two UUID objects per call, and every search
    maps a few hundred ids."""
    digest = bytearray(hashlib.sha1(_POINT_PREFIX + document_id.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
