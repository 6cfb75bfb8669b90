"""Blobs sent with an object, turned into bytes before anything is written (docs/ingestion.md).

`data` is, for a `text` blob, the text itself; for any type, a `data:` URI (base64 or
percent-encoded) or a `file://` path inside `settings.blob_import_dir`; for a binary type,
plain base64. Remote URLs (http, https, s3, ...) are never fetched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlparse

from stagewise.domain.ingest_records import BlobRef
from stagewise.errors import ValidationFailed
from stagewise.ids import new_id
from stagewise.services.bucket_schema import BLOB_TYPES

MAX_IMPORT_BYTES = 64 * 1024 * 1024  # one file:// import (read into memory)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://\S*$")
_DATA_URI = re.compile(r"^data:[\w/+.\-]*(;[\w=+.\-]*)*,")
_CHECKSUM = re.compile(r"^(sha256:)?([0-9a-fA-F]{64})$")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"ID3", "audio/mpeg"),
    (b"PK\x03\x04", "application/zip"),
)
_DEFAULT_MIME = {"text": "text/plain"}


@dataclass
class PendingBlob:
    """A decoded blob: its reference (hash, size, mime...) and the bytes still to store."""

    ref: BlobRef
    data: bytes
    metadata: dict[str, Any]


def _fail(where: str, message: str, code: str = "invalid_blob") -> ValidationFailed:
    return ValidationFailed(f"{where}: {message}", code=code, field=where)


def _sniff(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _import_file(url: str, import_dir: Path | None, where: str) -> tuple[bytes, str, str]:
    """(bytes, file name, resolved path) of a file:// URL that lies inside import_dir."""
    if import_dir is None:
        raise _fail(
            where,
            "file:// paths are refused: the server has no STAGEWISE_BLOB_IMPORT_DIR",
            "blob_import_refused",
        )
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost") or parsed.query or parsed.fragment:
        raise _fail(where, "a file:// URL must be file:///absolute/path", "blob_import_refused")
    root = os.path.realpath(import_dir)
    # realpath resolves every symlink, so a link pointing out of the directory is caught.
    path = os.path.realpath(unquote(parsed.path))
    if os.path.commonpath([root, path]) != root or path == root:
        raise _fail(
            where,
            "the file:// path is outside the server's blob import directory",
            "blob_import_refused",
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise _fail(where, "the file:// path cannot be read", "blob_import_refused") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _fail(where, "the file:// path is not a regular file", "blob_import_refused")
        if info.st_size > MAX_IMPORT_BYTES:
            raise _fail(
                where,
                f"the file is {info.st_size} bytes; at most {MAX_IMPORT_BYTES}",
                "blob_too_large",
            )
        data = fh.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise _fail(where, f"the file is over {MAX_IMPORT_BYTES} bytes", "blob_too_large")
    return data, os.path.basename(path), path


def _data_uri(text: str, where: str) -> tuple[bytes, str | None]:
    header, comma, payload = text[5:].partition(",")
    if not comma:
        raise _fail(where, "a data: URI needs a ',' before its payload")
    parts = header.split(";")
    mime = parts[0] or None
    if "base64" in parts[1:]:
        return _b64(payload, where), mime
    return unquote_to_bytes(payload), mime


def _b64(text: str, where: str) -> bytes:
    compact = "".join(text.split())
    padded = compact + "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:  # the URL-safe alphabet
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _fail(where, "is not valid base64") from exc


def _bytes_of(
    data: Any, kind: str, import_dir: Path | None, where: str
) -> tuple[bytes, str | None, str | None, dict[str, Any]]:
    """(bytes, mime, filename, what to echo in the blob's properties)."""
    if isinstance(data, str):
        if data.startswith("file://"):
            raw, filename, _ = _import_file(data, import_dir, where)
            return raw, None, filename, {"url": data, "source": "file"}
        if _DATA_URI.match(data):
            raw, mime = _data_uri(data, where)
            return raw, mime, None, {"source": "data_uri"}
        if _URL.match(data):
            raise _fail(
                where,
                "remote URLs are never fetched by this server; send the bytes (base64, a "
                "data: URI or, for a text blob, the text) or a file:// path inside the blob "
                "import directory",
                "blob_url_refused",
            )
        if kind == "text":
            return data.encode("utf-8"), "text/plain", None, {"source": "inline"}
        return _b64(data, where), None, None, {"source": "base64"}
    if kind == "text" and data is not None and not isinstance(data, bool | int | float):
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8"), "application/json", None, {"source": "inline"}
    raise _fail(where, f"a {kind} blob's data must be a string (base64, data: or file://)")


def decode_blob(
    raw: Any, index: int, props: dict[str, Any], import_dir: Path | None
) -> PendingBlob:
    where = f"blobs[{index}]"
    if not isinstance(raw, dict):
        raise _fail(where, "must be an object with property, type and data")
    prop = raw.get("property")
    if not isinstance(prop, str) or not prop:
        raise _fail(f"{where}.property", "is required: a bucket schema property")
    spec = props.get(prop)
    if spec is None:
        raise _fail(f"{where}.property", f"'{prop}' is not a property of the bucket schema")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in BLOB_TYPES:
        raise _fail(f"{where}.type", f"must be one of {', '.join(sorted(BLOB_TYPES))} (lower case)")
    if spec["type"] != kind:
        raise _fail(f"{where}.type", f"'{prop}' is a {spec['type']} property, not {kind}")
    if raw.get("upload_id") is not None:
        raise _fail(
            f"{where}.upload_id",
            "uploads are not available on this server; send data",
            "uploads_unavailable",
        )
    if raw.get("data") is None:
        raise _fail(f"{where}.data", "is required")
    data, mime, filename, echo = _bytes_of(raw["data"], kind, import_dir, f"{where}.data")
    content_hash = hashlib.sha256(data).hexdigest()
    checksum = raw.get("checksum")
    if checksum is not None:
        match = _CHECKSUM.match(checksum) if isinstance(checksum, str) else None
        if match is None:
            raise _fail(f"{where}.checksum", "must be 'sha256:<64 hex>' or 64 hex digits")
        if match.group(2).lower() != content_hash:
            raise _fail(f"{where}.checksum", "does not match the blob's bytes", "checksum_mismatch")
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _fail(f"{where}.metadata", "must be an object")
    key_prefix = raw.get("key_prefix")
    if key_prefix is not None and not isinstance(key_prefix, str):
        raise _fail(f"{where}.key_prefix", "must be a string")
    mime = (
        mime
        or (mimetypes.guess_type(filename)[0] if filename else None)
        or _sniff(data)
        or _DEFAULT_MIME.get(kind, "application/octet-stream")
    )
    if key_prefix:
        echo["key_prefix"] = key_prefix
    ref = BlobRef(
        property=prop,
        type=kind,
        blob_id=new_id("blob_"),
        content_hash=content_hash,
        size_bytes=len(data),
        mime_type=mime,
        filename=filename,
        properties=echo,
    )
    return PendingBlob(ref, data, metadata)
