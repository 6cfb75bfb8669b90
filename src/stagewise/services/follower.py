"""The search index as a follower of the SQL log (docs/architecture.md, "Scale-out").

Every document write takes a store-wide `seq` and is committed to SQL first; the index of
each process applies the writes in `seq` order and records, per collection, the last `seq` it
applied. The writing process applies its own write before it answers; other processes are
woken by PostgreSQL's NOTIFY (or poll, on SQLite) and catch up. A read decides how fresh it
must be (`Consistency`): strong reads first apply whatever SQL holds up to the collection's
head at read time, so every acknowledged write is seen whichever worker answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stagewise.domain.records import CollectionRecord, DocumentRecord
from stagewise.errors import NotFound
from stagewise.storage.payload import document_payload, index_changes
from stagewise.storage.protocols import IndexPoint, MetadataStore, SearchIndex

log = logging.getLogger("stagewise.follower")
LAG_SAMPLES = 4096


@dataclass(frozen=True)
class Consistency:
    """How fresh a read must be. strong: every write acknowledged before the read began
    (and every `seq` in `tokens`); eventual: whatever the follower holds, when it was known
    to be caught up within `max_staleness_ms` (else it catches up as strong does)."""

    mode: str = "strong"
    max_staleness_ms: float | None = None
    tokens: tuple[tuple[str, int], ...] = ()  # (collection_id, seq) from write tokens


STRONG = Consistency()


class IndexFollower:
    """Applies the SQL log to this process's search index. `exclusive`: this process is the
    only writer (the embedded default), so its own writes can be pushed to the index
    directly; otherwise a write is applied by reading the log back, which also picks up
    whatever other processes wrote to the collection in between."""

    def __init__(
        self,
        metadata: MetadataStore,
        index: SearchIndex,
        *,
        exclusive: bool,
        shared_index: bool = False,
        poll_s: float = 1.0,
        listen_url: str | None = None,
        on_catalog_change: Callable[[], None] | None = None,
    ) -> None:
        self.metadata = metadata
        self.index = index
        self.exclusive = exclusive
        # A shared index (a Qdrant server) is written by every writer directly: reads need
        # not wait for it, and the watermark is the index's own, not this process's.
        self.shared_index = shared_index
        self.poll_s = poll_s
        self.listen_url = listen_url
        self.on_catalog_change = on_catalog_change
        self._applied: dict[str, int] = {}
        self._synced_at: dict[str, float] = {}  # monotonic time it was last known caught up
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()
        self._lags_ms: deque[float] = deque(maxlen=LAG_SAMPLES)
        self._applied_total = 0
        self._indexes_applied: set[tuple[str, str, str]] = set()
        self._last_head = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- ordering
    def lock(self, collection_id: str) -> threading.RLock:
        """Serialises this process's writes to and applies of one collection's index."""
        with self._guard:
            return self._locks.setdefault(collection_id, threading.RLock())

    def applied(self, collection_id: str) -> int:
        seq = self._applied.get(collection_id)
        if seq is None or self.shared_index:
            seq = self._applied[collection_id] = self.index.max_seq(collection_id)
        return seq

    def forget(self, collection_id: str) -> None:
        """The index of a collection was replaced or dropped: re-read its watermark."""
        with self._guard:
            self._applied.pop(collection_id, None)
            self._synced_at.pop(collection_id, None)

    # ---- applying
    def apply_own_write(self, col: CollectionRecord, stored: Sequence[DocumentRecord]) -> None:
        """A write this process just committed; the caller holds `lock(collection)`.

        The batch's seqs were reserved together, and a writer reserves them only once every
        smaller seq is committed (the sequence row lock), so: apply the log up to the batch
        from SQL (other processes' writes, usually none), then the batch as it is in hand,
        without reading it back. Later writes (seq past the batch) come by the log as usual.
        """
        cid = col.collection_id
        if not stored:
            return
        if not self.exclusive:
            self._apply_log_below(col, min(d.seq for d in stored))
        points = [
            IndexPoint(d.document_id, d.seq, d.vectors, document_payload(col, d)) for d in stored
        ]
        self.index.upsert(cid, points)
        self._applied[cid] = max(self.applied(cid), max(d.seq for d in stored))
        self._applied_total += len(stored)

    def _apply_log_below(self, col: CollectionRecord, first: int) -> None:
        """Applies the log's writes with applied < seq < first, in seq order."""
        cid = col.collection_id
        self.index.ensure_collection(col)
        since = self.applied(cid)
        while True:
            changes = [
                d for d in self.metadata.changes_since(cid, since, limit=1000) if d.seq < first
            ]
            if not changes:
                return
            live = [c for c in changes if not c.deleted]
            self.index.delete(cid, [c.document_id for c in changes if c.deleted])
            self.index.upsert(
                cid,
                [
                    IndexPoint(d.document_id, d.seq, d.vectors, document_payload(col, d))
                    for d in live
                ],
            )
            since = self._applied[cid] = changes[-1].seq
            self._applied_total += len(changes)

    def catch_up(self, col: CollectionRecord, *, written_at_ms: float | None = None) -> int:
        """Applies every write newer than the collection's watermark, in `seq` order."""
        cid = col.collection_id
        with self.lock(cid):
            self.index.ensure_collection(col)
            self.apply_declared_indexes(col)
            since = self.applied(cid)
            applied = 0
            for live, gone, last_seq in index_changes(self.metadata, col, since):
                self.index.delete(cid, gone)
                self.index.upsert(cid, live)
                applied += len(live) + len(gone)
                self._applied[cid] = last_seq
            self._synced_at[cid] = time.monotonic()
            self._applied_total += applied
        if written_at_ms is not None and applied:
            self._lags_ms.append(max(0.0, time.time() * 1000.0 - written_at_ms))
        return applied

    def apply_declared_indexes(self, col: CollectionRecord) -> None:
        """The payload indexes the collection's record declares (another worker may have
        declared them): once per process each, so a refused kind is not retried per read."""
        for field, kind in col.payload_index_kinds.items():
            done = (col.collection_id, field, kind)
            if done not in self._indexes_applied:
                self.index.ensure_payload_index(col.collection_id, field, kind)
                self._indexes_applied.add(done)

    # ---- reads
    def ensure_fresh(self, col: CollectionRecord, head: int, consistency: Consistency) -> None:
        """Called before a read of `col` whose SQL head was `head` when the read began."""
        cid = col.collection_id
        if self.shared_index:
            return
        if col.payload_index_kinds and not self.exclusive:
            self.apply_declared_indexes(col)
        # A write token is always read strong, up to its write.
        token = max([0, *(seq for c, seq in consistency.tokens if c == cid)])
        if self.applied(cid) < token:
            self.catch_up(col)
            if self.applied(cid) < token:  # a seq this collection never had
                raise NotFound("write", f"{cid}@{token}")
        if self.applied(cid) >= head:
            return
        if consistency.mode == "eventual" and consistency.max_staleness_ms is not None:
            synced = self._synced_at.get(cid)
            if synced is not None and (time.monotonic() - synced) * 1000.0 <= (
                consistency.max_staleness_ms
            ):
                return
        self.catch_up(col)

    # ---- the background loop
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="stagewise-follower", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def sweep(self) -> int:
        """Catches up every collection, and drops the index of collections gone from SQL.
        Cheap when nothing was written: one read of the store-wide head."""
        head = self.metadata.log_head()
        if head == self._last_head:
            now = time.monotonic()
            for cid in list(self._synced_at):
                self._synced_at[cid] = now  # nothing new anywhere: all still caught up
            return 0
        applied = 0
        for ns in self.metadata.list_namespaces():
            for col in self.metadata.list_collections(ns.namespace_id):
                applied += self.catch_up(col)
        self._last_head = head
        return applied

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.listen_url:
                    self._listen()
                else:
                    self.sweep()
                    self._stop.wait(self.poll_s)
            except Exception:  # keep following: the next sweep repairs what this missed
                log.exception("the index follower failed; retrying")
                self._stop.wait(min(5.0, self.poll_s * 5))

    def _listen(self) -> None:
        import psycopg

        from stagewise.storage.sql.store import CATALOG_CHANNEL, LOG_CHANNEL

        url = self.listen_url or ""
        url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"LISTEN {LOG_CHANNEL}")
            conn.execute(f"LISTEN {CATALOG_CHANNEL}")
            # Whatever was written before we listened (or while a lost connection was down).
            if self.on_catalog_change is not None:
                self.on_catalog_change()
            self.sweep()
            while not self._stop.is_set():
                woken = False
                for note in conn.notifies(timeout=self.poll_s, stop_after=64):
                    woken = True
                    if note.channel == CATALOG_CHANNEL:
                        if self.on_catalog_change is not None:
                            self.on_catalog_change()
                    else:
                        self._on_notice(note.payload)
                if not woken:
                    self.sweep()

    def _on_notice(self, payload: str) -> None:
        namespace_id, collection_id, seq, written_ms = payload.split(" ")
        if self._applied.get(collection_id, -1) >= int(seq):
            return  # this process made (and applied) the write
        col = self.metadata.get_collection(namespace_id, collection_id)
        if col is not None:
            self.catch_up(col, written_at_ms=float(written_ms))

    # ---- reporting
    def status(self) -> dict[str, Any]:
        lags = sorted(self._lags_ms)

        def pct(p: float) -> float | None:
            return round(lags[min(len(lags) - 1, int(p * len(lags)))], 3) if lags else None

        return {
            "mode": "exclusive" if self.exclusive else "follower",
            "woken_by": "notify" if self.listen_url else "polling",
            "poll_s": self.poll_s,
            "writes_applied": self._applied_total,
            "lag_ms_p50": pct(0.5),
            "lag_ms_p99": pct(0.99),
            "lag_samples": len(lags),
        }

    def seq_lag(self, col: CollectionRecord) -> int:
        """How many seqs the index is behind SQL for one collection (0: caught up)."""
        return max(
            0,
            self.metadata.collection_signature(col.collection_id) - self.applied(col.collection_id),
        )
