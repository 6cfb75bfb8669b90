"""Concurrent embed calls are coalesced into fewer model calls, with each caller's own rows."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from stagewise.embeddings.base import HashEmbedder, Matrix
from stagewise.embeddings.batching import BatchingEmbedder

pytestmark = [pytest.mark.unit]


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        self.calls: list[int] = []
        self.gate = threading.Event()

    def embed(self, texts: Sequence[str]) -> Matrix:
        self.gate.wait(5)  # hold the first call so the others queue up behind it
        self.calls.append(len(texts))
        return super().embed(texts)


def test_concurrent_calls_are_batched_and_routed_back() -> None:
    inner = CountingEmbedder()
    batching = BatchingEmbedder(inner, max_batch=64, max_wait_ms=50)
    texts = [f"document number {i} about topic {i % 7}" for i in range(40)]
    results: dict[int, Matrix] = {}

    def call(i: int) -> None:
        results[i] = batching.embed([texts[i]])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    inner.gate.set()
    for t in threads:
        t.join(10)
    assert sum(inner.calls) == 40
    assert len(inner.calls) < 10  # coalesced: far fewer model calls than requests
    expected = HashEmbedder().embed(texts)
    for i in range(40):
        assert np.allclose(results[i][0], expected[i])


def test_errors_reach_every_waiter() -> None:
    class Broken(HashEmbedder):
        def embed(self, texts: Sequence[str]) -> Matrix:
            raise RuntimeError("model exploded")

    batching = BatchingEmbedder(Broken(), max_wait_ms=1)
    with pytest.raises(RuntimeError, match="model exploded"):
        batching.embed(["x"])
