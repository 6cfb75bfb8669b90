"""Embeddings kept for reuse by the stages that compute them (feature_search's query texts,
rerank's document windows), honouring the stages' `cache_behavior` and `cache_ttl_seconds`.

An embedding is a pure function of (model, text), so reusing one never changes an answer;
the TTL only bounds how long a stage trusts an entry. The cache is process-local memo, not
shared state: another process simply computes its own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from stagewise.pipeline.stage import StageParams

Vector = NDArray[np.float64]
CacheBehavior = Literal["auto", "disabled", "aggressive"]


@dataclass
class CacheUse:
    """What one stage run got from the cache: its statistics report these."""

    behavior: str
    hits: int = 0
    misses: int = 0

    @property
    def served_from_cache(self) -> bool:
        """Every embedding the stage needed came from the cache (no model call)."""
        return self.hits > 0 and self.misses == 0

    def report(self) -> dict[str, Any]:
        return {"behavior": self.behavior, "hits": self.hits, "misses": self.misses}


AGGRESSIVE_REFUSED = (
    "cache_behavior 'aggressive' is not implemented: this stage caches only embeddings, "
    "which are deterministic ('auto', the default), or nothing ('disabled')"
)


class CachedStageParams(StageParams):
    """The cache parameters of a stage that keeps embeddings here."""

    cache_behavior: Literal["auto", "disabled", "aggressive"] | None = Field(
        default=None,
        description="auto: reuse cached embeddings; disabled: embed every time; aggressive: "
        "refused (only deterministic embeddings are cached)",
    )
    cache_ttl_seconds: int | None = Field(
        default=None, ge=0, description="Oldest cached embedding this stage reuses"
    )

    @model_validator(mode="after")
    def _cache_implemented(self) -> CachedStageParams:
        if self.cache_behavior == "aggressive":
            raise ValueError(AGGRESSIVE_REFUSED)
        return self


class EmbeddingCache:
    """(model key, text) -> embedding, LRU-bounded, each stamped with when it was computed."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[Any, str], tuple[float, NDArray[np.float32]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def embed(
        self,
        model: Any,
        texts: Sequence[str],
        compute: Callable[[list[str]], NDArray[Any]],
        use: CacheUse,
        ttl_s: float | None = None,
        batch_size: int = 64,
        check: Callable[[], None] | None = None,
    ) -> NDArray[np.float64]:
        """Embeddings of `texts` (rows in order); the missing ones computed in batches by
        `compute`, with `check` (the budget) called before each batch."""
        out = np.empty((len(texts), 0), dtype=np.float64)
        found: dict[int, Vector] = {}
        missing: list[int] = []
        if use.behavior != "disabled":
            now = time.monotonic()
            with self._lock:
                for i, text in enumerate(texts):
                    entry = self._entries.get((model, text))
                    if entry is None or (ttl_s is not None and now - entry[0] > ttl_s):
                        missing.append(i)
                        continue
                    self._entries.move_to_end((model, text))
                    found[i] = entry[1].astype(np.float64)
        else:
            missing = list(range(len(texts)))
        use.hits += len(found)
        use.misses += len(missing)
        for start in range(0, len(missing), batch_size):
            if check is not None:
                check()
            batch = missing[start : start + batch_size]
            block = np.asarray(compute([texts[i] for i in batch]), dtype=np.float64)
            stamp = time.monotonic()
            for i, row in zip(batch, block, strict=True):
                found[i] = row
            if use.behavior != "disabled":
                with self._lock:
                    for i, row in zip(batch, block, strict=True):
                        # A copy of its own: a row of `block` is a view that would keep the
                        # whole batch alive (49 MiB held for 2.9 MiB of vectors, measured).
                        # float32 is what the models produce, so nothing is lost.
                        self._entries[(model, texts[i])] = (stamp, row.astype(np.float32))
                        self._entries.move_to_end((model, texts[i]))
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
        if found:
            out = np.stack([found[i] for i in range(len(texts))])
        return out
