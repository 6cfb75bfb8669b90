"""Micro-batching: concurrent embed calls (one document per request, many requests) are
coalesced into one model call, which is several times cheaper per text than one call each."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

from stagewise.embeddings.base import Embedder, Matrix


class BatchingEmbedder:
    def __init__(self, inner: Embedder, *, max_batch: int = 64, max_wait_ms: float = 2.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.label = inner.label  # a wrapper: scorers are named after the model, not it
        self.dimensions = inner.dimensions
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._queue: queue.Queue[tuple[list[str], Future[Matrix]]] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if len(texts) >= self.max_batch:
            return self.inner.embed(texts)  # already a full batch
        self._ensure_worker()
        future: Future[Matrix] = Future()
        self._queue.put((list(texts), future))
        return future.result()

    def _ensure_worker(self) -> None:
        if self._worker is None:
            with self._start_lock:
                if self._worker is None:
                    self._worker = threading.Thread(
                        target=self._loop, name="stagewise-embed", daemon=True
                    )
                    self._worker.start()

    def _loop(self) -> None:
        while True:
            pending = [self._queue.get()]
            count = len(pending[0][0])
            deadline = time.monotonic() + self.max_wait_s
            while count < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                pending.append(item)
                count += len(item[0])
            texts = [t for batch, _ in pending for t in batch]
            try:
                matrix = self.inner.embed(texts)
            except BaseException as exc:  # every waiter learns why
                for _, future in pending:
                    future.set_exception(exc)
                continue
            start = 0
            for batch, future in pending:
                future.set_result(matrix[start : start + len(batch)])
                start += len(batch)
