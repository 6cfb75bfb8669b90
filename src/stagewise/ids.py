"""Resource ids: a prefix plus a random token, and time helpers shared by every layer."""

from __future__ import annotations

import re
import secrets
import string
import time
import uuid
from datetime import UTC, datetime

from stagewise.errors import ValidationFailed

_ALPHABET = string.ascii_lowercase + string.digits
_POINT_NAMESPACE = uuid.UUID("6f1c3a52-2a43-4d0e-9a57-5b8e3c2f7d10")

PREFIXES = ("ns_", "col_", "doc_", "ret_", "exec_", "key_", "sk_")


def new_id(prefix: str, length: int = 12) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


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
    """Qdrant point ids must be ints or UUIDs; document ids are strings."""
    return str(uuid.uuid5(_POINT_NAMESPACE, document_id))


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
