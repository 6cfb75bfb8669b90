"""Build the next generation of one collection's search shard, in a child process.

The Qdrant binding holds the GIL while it builds HNSW (minutes at a million points), so the
serving process never builds. This child reads the collection from the source of truth,
writes a fresh shard, optimises it and prints its watermark (the highest `seq` it holds) as
JSON; the server then swaps it in and replays what was written meanwhile (IndexBuilder).

    python -m stagewise.storage.index.generation --database-url URL --namespace-id NS \
        --collection-id COL --out DIR [--extra '{"metadata.category": "keyword"}']
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from qdrant_edge import UpdateOperation

from stagewise.storage.index.layout import create_shard, to_points
from stagewise.storage.payload import index_changes
from stagewise.storage.sql.store import SqlMetadataStore


def build_generation(
    database_url: str, namespace_id: str, collection_id: str, out: Path, extra: dict[str, str]
) -> dict[str, Any]:
    store = SqlMetadataStore(database_url)
    try:
        col = store.get_collection(namespace_id, collection_id)
        if col is None:
            raise SystemExit(f"collection {collection_id} does not exist")
        started = time.perf_counter()
        shard = create_shard(out, col, extra)
        watermark = points = 0
        for live, _, last_seq in index_changes(store, col, 0):  # a fresh shard: no deletes
            if live:
                shard.update(UpdateOperation.upsert_points(to_points(live)))
            points += len(live)
            watermark = last_seq
        loaded = time.perf_counter()
        # the builder reads this: writes after it are no longer in this generation
        sys.stdout.write(orjson.dumps({"loaded": points, "watermark": watermark}).decode() + "\n")
        sys.stdout.flush()
        shard.optimize()
        shard.close()
        return {
            "watermark": watermark,
            "points": points,
            "load_s": round(loaded - started, 3),
            "optimize_s": round(time.perf_counter() - loaded, 3),
        }
    finally:
        store.close()


# The serving process comes first (issue 14: its p50 while a generation builds).
BUILD_NICENESS = 19


def lower_priority() -> None:
    """Run this build at the lowest CPU priority and, on a machine with several cores, on
    one of them only, so the server keeps the others. The engine sizes its indexing threads
    from the cores this process may use, so it builds with one thread then."""
    os.nice(BUILD_NICENESS - os.nice(0))
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= 2:
        os.sched_setaffinity(0, {cores[-1]})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--namespace-id", required=True)
    parser.add_argument("--collection-id", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--extra", default="{}", help="extra payload indexes, field -> kind")
    args = parser.parse_args(argv)
    lower_priority()
    result = build_generation(
        args.database_url,
        args.namespace_id,
        args.collection_id,
        args.out,
        orjson.loads(args.extra),
    )
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
