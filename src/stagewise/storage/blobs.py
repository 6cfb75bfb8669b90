"""LocalBlobStore: blob bytes on the local disk, addressed by their sha256.

`<root>/ab/cd/<hash>`: two levels of fan-out keep directories small. A write goes to a temp
file in the target directory, is fsynced, then renamed into place, so a reader sees the whole
file or none, and two writers of the same bytes both succeed with one copy stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from pathlib import Path

from stagewise.errors import NotFound

_HASH = re.compile(r"^[0-9a-f]{64}$")


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, content_hash: str) -> Path | None:
        # A hash is a path component: anything but 64 lower-case hex digits names no blob.
        if not isinstance(content_hash, str) or not _HASH.match(content_hash):
            return None
        return self.root / content_hash[:2] / content_hash[2:4] / content_hash

    def put(self, data: bytes) -> str:
        content_hash = hashlib.sha256(data).hexdigest()
        path = self._path(content_hash)
        assert path is not None
        if path.exists():
            return content_hash  # same bytes: stored once
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{content_hash}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return content_hash

    def get(self, content_hash: str) -> bytes:
        path = self._path(content_hash)
        try:
            if path is None:
                raise FileNotFoundError(content_hash)
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound("blob", str(content_hash)[:80]) from exc

    def exists(self, content_hash: str) -> bool:
        path = self._path(content_hash)
        return path is not None and path.is_file()

    def delete(self, content_hash: str) -> None:
        path = self._path(content_hash)
        if path is not None:
            path.unlink(missing_ok=True)
