"""Pick the embedder named in the settings."""

from __future__ import annotations

from stagewise.embeddings.base import Embedder, HashEmbedder
from stagewise.embeddings.batching import BatchingEmbedder
from stagewise.embeddings.minilm import MiniLMEmbedder


def make_embedder(kind: str, batch_size: int = 64) -> Embedder:
    if kind == "minilm":
        return BatchingEmbedder(MiniLMEmbedder(batch_size=batch_size), max_batch=batch_size)
    if kind == "hash":
        return HashEmbedder()
    raise ValueError(f"unknown embedder {kind!r}; expected 'minilm' or 'hash'")
