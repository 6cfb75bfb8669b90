"""The conformance suite every `BlobStore` backend must pass.

Subclass `BlobStoreConformance` in a test module (class name starting with ``Test``) and
override the `blobs` fixture so that it yields a fresh, empty store for every test.
"""

from __future__ import annotations

import hashlib
import threading

import pytest

from stagewise.errors import NotFound
from stagewise.storage.ingest import BlobStore


class BlobStoreConformance:
    @pytest.fixture
    def blobs(self) -> BlobStore:
        raise NotImplementedError("subclasses must provide a `blobs` fixture")

    def test_put_returns_the_sha256_and_get_gives_the_bytes_back(self, blobs: BlobStore) -> None:
        data = b"\x00\x01 some bytes \xff" * 100
        content_hash = blobs.put(data)
        assert content_hash == hashlib.sha256(data).hexdigest()
        assert blobs.exists(content_hash)
        assert blobs.get(content_hash) == data

    def test_empty_bytes_are_a_blob_too(self, blobs: BlobStore) -> None:
        content_hash = blobs.put(b"")
        assert blobs.get(content_hash) == b""

    def test_the_same_bytes_twice_give_the_same_hash(self, blobs: BlobStore) -> None:
        assert blobs.put(b"twice") == blobs.put(b"twice")
        assert blobs.put(b"twice") != blobs.put(b"other")

    def test_concurrent_writers_of_the_same_bytes_all_succeed(self, blobs: BlobStore) -> None:
        data = b"race" * 10_000
        hashes: list[str] = []
        errors: list[BaseException] = []

        def write() -> None:
            try:
                hashes.append(blobs.put(data))
            except BaseException as exc:  # collected: the assertion below names it
                errors.append(exc)

        threads = [threading.Thread(target=write) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        assert set(hashes) == {hashlib.sha256(data).hexdigest()}
        assert blobs.get(hashes[0]) == data

    def test_missing_blob_is_not_found(self, blobs: BlobStore) -> None:
        missing = hashlib.sha256(b"never written").hexdigest()
        assert not blobs.exists(missing)
        with pytest.raises(NotFound):
            blobs.get(missing)

    @pytest.mark.parametrize("bad", ["", "../../etc/passwd", "ab/../../x", "A" * 64, "0" * 63])
    def test_a_malformed_hash_names_no_blob(self, blobs: BlobStore, bad: str) -> None:
        assert not blobs.exists(bad)
        with pytest.raises(NotFound):
            blobs.get(bad)
        blobs.delete(bad)  # nothing to delete, and nothing outside the store is touched

    def test_delete_removes_and_is_idempotent(self, blobs: BlobStore) -> None:
        content_hash = blobs.put(b"short-lived")
        blobs.delete(content_hash)
        assert not blobs.exists(content_hash)
        blobs.delete(content_hash)
        with pytest.raises(NotFound):
            blobs.get(content_hash)
