"""Deterministic synthetic collections for the performance benchmarks.

A collection of N documents, every value a pure function of (seed, document index):

- a 384-d float32 unit vector drawn around one of ~1,000 cluster centres (gaussian noise with a
  per-cluster spread, then L2-normalised; cluster sizes vary);
- a short text: 8-20 words drawn Zipf-like from a ~5,000-word synthetic vocabulary, plus one or
  two "topic words" of the document's cluster, so BM25 has long posting lists to work through
  and lexical and dense relevance agree a little;
- metadata: ``category`` (20 values, skewed: ``cat00`` ~28%, ``cat02`` ~9%), ``year``
  (1990-2024), ``price`` (a float) and ``tags`` (1-3 of 50).

Rows are generated in fixed blocks of BLOCK rows, each block from its own seeded generator, so
a document does not depend on N (the 10k collection is the prefix of the 100k one) or on how a
caller iterates, and a 1M x 384 matrix (1.5 GB) is written block by block into a ``.npy``
memory map without a second copy. ``Dataset.vectors(cache_dir)`` reuses that file on later runs
(keyed by N, seed and the generator version).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

GENERATOR_VERSION = 1
BLOCK = 10_000
DIM = 384
N_CLUSTERS = 1000
VOCAB_SIZE = 5000
N_CATEGORIES = 20
N_TAGS = 50
TOPIC_WORDS_PER_CLUSTER = 5
YEARS = (1990, 2024)
ZIPF_EXPONENT = 1.07

F32 = NDArray[np.float32]

# Streams of randomness, one per kind of value, so that adding one never shifts another.
_S_CENTRES, _S_LABELS, _S_NOISE, _S_META, _S_TEXT, _S_QUERIES, _S_VOCAB = range(7)

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
# Real English words the CVCVC pattern can produce; kept out so no stop word hides a term.
_EXCLUDED = frozenset(
    {"never", "later", "makes", "taken", "below", "sever", "lever", "refer", "rider"}
)


def category_weights() -> NDArray[np.float64]:
    """P(category i) proportional to 1 / (i + 1): cat00 27.8%, cat01 13.9%, cat02 9.3% ..."""
    w: NDArray[np.float64] = 1.0 / np.arange(1, N_CATEGORIES + 1, dtype=np.float64)
    return w / float(w.sum())


def category_name(i: int) -> str:
    return f"cat{i:02d}"


def selective_category(target: float = 0.10) -> tuple[str, float]:
    """The category whose share is closest to `target`, and that share."""
    w = category_weights()
    i = int(np.argmin(np.abs(w - target)))
    return category_name(i), float(w[i])


def vocabulary(seed: int = 0) -> list[str]:
    """VOCAB_SIZE distinct pronounceable CVCVC words (not English), in a fixed seeded order.

    The order is the Zipf rank: word 0 is the most frequent."""
    words = [
        a + b + c + d + e
        for a in _CONSONANTS
        for b in _VOWELS
        for c in _CONSONANTS
        for d in _VOWELS
        for e in _CONSONANTS
    ]
    words = [w for w in words if w not in _EXCLUDED]
    rng = np.random.default_rng([seed, _S_VOCAB])
    picked = rng.choice(len(words), size=VOCAB_SIZE, replace=False)
    return [words[i] for i in picked]


def _zipf_probabilities(n: int, exponent: float = ZIPF_EXPONENT) -> NDArray[np.float64]:
    p: NDArray[np.float64] = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return p / float(p.sum())


def _normalise(x: NDArray[Any]) -> NDArray[Any]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    x /= norms
    return x


@dataclass(frozen=True)
class Spec:
    n: int
    seed: int = 0
    dim: int = DIM
    n_clusters: int = N_CLUSTERS

    @property
    def key(self) -> str:
        return f"n{self.n}-d{self.dim}-c{self.n_clusters}-s{self.seed}-v{GENERATOR_VERSION}"


class Dataset:
    """A synthetic collection; nothing is materialised until asked for."""

    def __init__(self, spec: Spec) -> None:
        if spec.n < 1:
            raise ValueError("n must be positive")
        self.spec = spec

    # ---- the model the data is drawn from ------------------------------------------------------
    @cached_property
    def centres(self) -> F32:
        rng = np.random.default_rng([self.spec.seed, _S_CENTRES])
        c = rng.standard_normal((self.spec.n_clusters, self.spec.dim))
        return _normalise(c).astype(np.float32)

    @cached_property
    def spreads(self) -> F32:
        """Per-cluster noise scale (the noise vector has expected norm ~spread): 0.35-1.1."""
        rng = np.random.default_rng([self.spec.seed, _S_CENTRES, 1])
        return np.exp(rng.uniform(np.log(0.35), np.log(1.1), self.spec.n_clusters)).astype(
            np.float32
        )

    @cached_property
    def cluster_weights(self) -> NDArray[np.float64]:
        """Cluster sizes vary (gamma(2) weights: the largest ~4x the mean)."""
        rng = np.random.default_rng([self.spec.seed, _S_CENTRES, 2])
        w = rng.gamma(2.0, 1.0, self.spec.n_clusters)
        return np.asarray(w / w.sum(), dtype=np.float64)

    @cached_property
    def vocab(self) -> list[str]:
        return vocabulary(self.spec.seed)

    @cached_property
    def topic_words(self) -> NDArray[np.int64]:
        """(n_clusters, TOPIC_WORDS_PER_CLUSTER) vocabulary ranks from the mid-frequency band."""
        rng = np.random.default_rng([self.spec.seed, _S_VOCAB, 1])
        return rng.integers(200, VOCAB_SIZE, (self.spec.n_clusters, TOPIC_WORDS_PER_CLUSTER))

    # ---- blocks --------------------------------------------------------------------------------
    def _blocks(self) -> Iterator[tuple[int, int, int]]:
        """(block index, first row, rows of it inside the collection)."""
        for b in range((self.spec.n + BLOCK - 1) // BLOCK):
            start = b * BLOCK
            yield b, start, min(BLOCK, self.spec.n - start)

    def _block_labels(self, b: int) -> NDArray[np.int64]:
        rng = np.random.default_rng([self.spec.seed, _S_LABELS, b])
        return rng.choice(self.spec.n_clusters, size=BLOCK, p=self.cluster_weights)

    def labels(self) -> NDArray[np.int32]:
        """The generating cluster of every document."""
        out = np.empty(self.spec.n, dtype=np.int32)
        for b, start, rows in self._blocks():
            out[start : start + rows] = self._block_labels(b)[:rows]
        return out

    def _block_vectors(self, b: int) -> F32:
        labels = self._block_labels(b)
        rng = np.random.default_rng([self.spec.seed, _S_NOISE, b])
        noise = rng.standard_normal((BLOCK, self.spec.dim), dtype=np.float32)
        noise *= (self.spreads[labels] / np.float32(np.sqrt(self.spec.dim)))[:, None]
        noise += self.centres[labels]
        return _normalise(noise)

    def vector_blocks(self) -> Iterator[tuple[int, F32]]:
        """(first row, float32 rows) in order; each block is at most BLOCK rows."""
        for b, start, rows in self._blocks():
            yield start, self._block_vectors(b)[:rows]

    def vectors(self, cache_dir: Path | None = None) -> F32:
        """All vectors. With a cache dir: a read-only memory map of `<key>.npy`, written (block
        by block, then renamed into place) on first use."""
        if cache_dir is None:
            out = np.empty((self.spec.n, self.spec.dim), dtype=np.float32)
            for start, block in self.vector_blocks():
                out[start : start + len(block)] = block
            return out
        cache_dir.mkdir(parents=True, exist_ok=True)
        path = cache_dir / f"vectors-{self.spec.key}.npy"
        if not path.exists():
            tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
            mm = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.float32, shape=(self.spec.n, self.spec.dim)
            )
            for start, block in self.vector_blocks():
                mm[start : start + len(block)] = block
            mm.flush()
            del mm
            os.replace(tmp, path)
        arr = np.load(path, mmap_mode="r")
        if arr.shape != (self.spec.n, self.spec.dim) or arr.dtype != np.float32:
            raise ValueError(f"{path} has shape {arr.shape} {arr.dtype}; delete it")
        return arr  # type: ignore[no-any-return]

    # ---- texts and metadata --------------------------------------------------------------------
    def _block_records(self, b: int) -> dict[str, Any]:
        labels = self._block_labels(b)
        rng = np.random.default_rng([self.spec.seed, _S_META, b])
        category = rng.choice(N_CATEGORIES, size=BLOCK, p=category_weights())
        year = rng.integers(YEARS[0], YEARS[1] + 1, size=BLOCK)
        price = np.round(rng.lognormal(3.0, 1.0, size=BLOCK), 2)
        n_tags = rng.integers(1, 4, size=BLOCK)
        tag_p = _zipf_probabilities(N_TAGS, 0.8)
        tags = rng.choice(N_TAGS, size=(BLOCK, 3), p=tag_p)
        trng = np.random.default_rng([self.spec.seed, _S_TEXT, b])
        n_words = trng.integers(8, 21, size=BLOCK)  # 8..20 words in all
        n_topic = trng.integers(1, 3, size=BLOCK)  # 1 or 2 of them topic words
        background = trng.choice(
            VOCAB_SIZE, size=int(n_words.sum()), p=_zipf_probabilities(VOCAB_SIZE)
        )
        topic_pick = trng.integers(0, TOPIC_WORDS_PER_CLUSTER, size=(BLOCK, 2))
        return {
            "labels": labels,
            "category": category,
            "year": year,
            "price": price,
            "n_tags": n_tags,
            "tags": tags,
            "n_words": n_words,
            "n_topic": n_topic,
            "background": background,
            "offsets": np.concatenate([[0], np.cumsum(n_words)]),
            "topic_pick": topic_pick,
        }

    def docs(self, start: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
        """Documents [start, stop) as dicts: document_id, text, metadata (vectors apart)."""
        stop = self.spec.n if stop is None else min(stop, self.spec.n)
        vocab = self.vocab
        for b, first, rows in self._blocks():
            lo, hi = max(start, first), min(stop, first + rows)
            if lo >= hi:
                continue
            r = self._block_records(b)
            for i in range(lo - first, hi - first):
                words = r["background"][r["offsets"][i] : r["offsets"][i + 1]].tolist()
                topics = self.topic_words[r["labels"][i], r["topic_pick"][i, : r["n_topic"][i]]]
                # The topic words replace the first background words: still 8..20 words.
                for j, t in enumerate(topics.tolist()):
                    words[j] = t
                n_tags = int(r["n_tags"][i])
                tag_ids = list(dict.fromkeys(int(t) for t in r["tags"][i, :n_tags]))
                yield {
                    "document_id": f"d{first + i:07d}",
                    "text": " ".join(vocab[w] for w in words),
                    "metadata": {
                        "category": category_name(int(r["category"][i])),
                        "year": int(r["year"][i]),
                        "price": float(r["price"][i]),
                        "tags": [f"tag{t:02d}" for t in tag_ids],
                    },
                }

    def column(self, name: str) -> NDArray[Any]:
        """One metadata column for every document: 'category' (int codes), 'year', 'price'."""
        out: NDArray[Any] | None = None
        for b, start, rows in self._blocks():
            values = self._block_records(b)[name][:rows]
            if out is None:
                out = np.empty(self.spec.n, dtype=values.dtype)
            out[start : start + rows] = values
        assert out is not None
        return out

    # ---- queries -------------------------------------------------------------------------------
    def queries(self, n: int, seed: int = 1) -> tuple[F32, list[str], NDArray[np.int64]]:
        """`n` queries: unit vectors near a cluster centre (the cluster drawn by size), and 2-3
        words (1-2 topic words of that cluster plus a mid-frequency word) for BM25."""
        rng = np.random.default_rng([self.spec.seed, _S_QUERIES, seed])
        clusters = rng.choice(self.spec.n_clusters, size=n, p=self.cluster_weights)
        noise = rng.standard_normal((n, self.spec.dim)).astype(np.float32)
        noise *= (0.3 * self.spreads[clusters] / np.float32(np.sqrt(self.spec.dim)))[:, None]
        vecs = _normalise(self.centres[clusters] + noise).astype(np.float32)
        texts = []
        for c in clusters.tolist():
            k = int(rng.integers(1, 3))
            topics = rng.choice(self.topic_words[c], size=k, replace=False).tolist()
            extra = int(rng.integers(50, 1000))
            texts.append(" ".join(self.vocab[w] for w in [*topics, extra]))
        return vecs, texts, clusters


def nearest_centroid(vectors: NDArray[Any], centres: NDArray[Any]) -> NDArray[np.int64]:
    return np.asarray(np.argmax(np.asarray(vectors) @ centres.T, axis=1), dtype=np.int64)
