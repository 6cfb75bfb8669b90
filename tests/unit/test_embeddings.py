"""The local model gives real semantic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from stagewise.embeddings.minilm import MiniLMEmbedder

pytestmark = [pytest.mark.unit, pytest.mark.slow]


def test_paraphrases_are_closer_than_unrelated_sentences() -> None:
    model = MiniLMEmbedder()
    a, b, c, d = model.embed(
        [
            "A man is eating a piece of bread.",
            "Someone eats some bread.",
            "The central bank raised interest rates again.",
            "Interest rates were increased by the central bank.",
        ]
    )
    assert a.shape == (384,)
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-4)
    assert float(a @ b) > float(a @ c) + 0.3
    assert float(c @ d) > float(c @ b) + 0.3
