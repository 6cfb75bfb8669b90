"""Process-local tables stay bounded in memory, whatever the traffic (bench/soak.py found
both of these growing)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from stagewise.errors import RateLimited
from stagewise.pipeline.embed_cache import CacheUse, EmbeddingCache
from stagewise.services.limits import RateLimiter

pytestmark = [pytest.mark.unit]


def test_cached_embeddings_do_not_keep_their_batches_alive() -> None:
    """One text of each batch stays hot (it keeps being hit) while the rest are evicted: a
    cached row that viewed its batch would keep all 300 batches alive."""
    cache = EmbeddingCache(450)  # room for every hot text and one batch
    rng = np.random.default_rng(0)
    tracemalloc.start()
    try:
        for batch in range(300):
            texts = [f"hot {batch}"] + [f"cold {batch}-{i}" for i in range(99)]
            cache.embed(
                "model",
                texts,
                lambda ts: rng.random((len(ts), 384), dtype=np.float32),
                CacheUse("auto"),
            )
            use = CacheUse("auto")
            cache.embed("model", [f"hot {b}" for b in range(batch + 1)], _never, use)
            assert use.misses == 0
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 450 float32 rows of 384 are 0.7 MiB; rows viewing their batches would hold ~90 MiB
    assert held < 8 * 2**20, held
    rows = [entry for _, entry in cache._entries.values()]
    assert len(rows) == 450 and all(r.base is None and r.dtype == np.float32 for r in rows)


def _never(texts: list[str]) -> np.ndarray:
    raise AssertionError(f"{texts} should have come from the cache")


def test_a_cached_embedding_reads_back_exactly() -> None:
    cache = EmbeddingCache(10)
    vectors = np.asarray([[0.1, 0.2, 0.3]], dtype=np.float32)
    first = cache.embed("m", ["a"], lambda ts: vectors, CacheUse("auto"))
    use = CacheUse("auto")
    again = cache.embed("m", ["a"], lambda ts: np.zeros((1, 3), np.float32), use)
    assert use.hits == 1 and np.array_equal(first, again) and again.dtype == np.float64


def test_the_rate_table_keeps_the_most_recent_keys_only() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=100)
    limiter.check("steady")
    for i in range(5_000):  # a flood of made-up keys
        limiter.check(f"bogus-{i}")
        if i % 50 == 0:
            with pytest.raises(RateLimited):
                limiter.check(f"bogus-{i}")  # each is limited while it is in the table
    assert len(limiter._buckets) == 100
    assert "steady" not in limiter._buckets  # the least recently seen went first
