"""The Embedder protocol and a deterministic toy embedder for unit tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float32]


class Embedder(Protocol):
    name: str  # inference name, the output segment of the feature URI
    label: str  # short model family, in the names of what is built on it ("minilm-maxsim")
    dimensions: int

    def embed(self, texts: Sequence[str]) -> Matrix:
        """L2-normalised float32 rows, one per text."""
        ...


class HashEmbedder:
    """Feature hashing of lower-cased words. Not semantic; for tests that need no model."""

    name = "all_minilm_l6_v2"
    label = "hash"
    dimensions = 384

    def embed(self, texts: Sequence[str]) -> Matrix:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dimensions] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalised: Matrix = out / norms
        return normalised
