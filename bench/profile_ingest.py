"""Where a batch's time goes, in one process: the processing pipeline (embed, commit to the
store, apply to the index) against the bare model on the same texts, then a whole batch task
through the API. Prints docs/s and the top of a cProfile of the pipeline.

    python -m bench.profile_ingest [--postgres] [--objects 960]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as `stagewise serve` sets it
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SLICE = 64
SCHEMA = {"properties": {"content": {"type": "text"}}}


def text(i: int, kind: str) -> str:
    return f"{kind} synthetic text {i} about some topic with several more words here"


def main() -> None:
    from tests.support.pg import admin_engine, fresh_database
    from tests.support.server import start_server

    from stagewise.services.bucket_source import parse_source
    from stagewise.services.ingest_runtime import serving_context
    from stagewise.services.processing import process_objects

    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL store")
    parser.add_argument("--objects", type=int, default=960)
    args = parser.parse_args()
    n = args.objects - args.objects % SLICE
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_database(admin_engine(), "prof")) if args.postgres else ""
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = start_server(
            data_dir, admin_key="sk_profile_admin_key_1", **({"database_url": url} if url else {})
        )
        stack.callback(server.stop)
        admin = server.client(server.admin_key)
        admin.post("/v1/namespaces", json={"namespace_name": "prof"}).raise_for_status()
        c = server.client(server.admin_key, namespace="prof")
        bucket = c.post("/v1/buckets", json={"bucket_name": "prof", "bucket_schema": SCHEMA})
        bucket_id = bucket.raise_for_status().json()["bucket_id"]
        extractor = {
            "feature_extractor_name": "text_extractor",
            "input_mappings": {"text": "content"},
            "parameters": {"split_by": "none"},
        }
        col = (
            c.post(
                "/v1/collections",
                json={
                    "collection_name": "prof",
                    "source": {"type": "bucket", "bucket_ids": [bucket_id]},
                    "feature_extractor": extractor,
                },
            )
            .raise_for_status()
            .json()
        )

        def upload(kind: str) -> list[str]:
            ids: list[str] = []
            for start in range(0, n + SLICE, 100):
                objs = [
                    {"blobs": [{"property": "content", "type": "text", "data": text(i, kind)}]}
                    for i in range(start, min(start + 100, n + SLICE))
                ]
                res = c.post(f"/v1/buckets/{bucket_id}/objects/batch", json={"objects": objs})
                ids += [o["object_id"] for o in res.raise_for_status().json()["succeeded"]]
            return ids

        stores = server.server.config.app.state.stores  # type: ignore[attr-defined]
        ctx = serving_context(stores)
        ns = stores.metadata.get_namespace("prof")
        record = stores.metadata.get_collection(ns.namespace_id, col["collection_id"])
        source = parse_source(record)
        ids = upload("pipeline")
        found = stores.ingest.get_objects(bucket_id, ids)
        objects = [found[i] for i in ids]
        process_objects(ctx, record, source, objects[:SLICE], "skip")  # warm-up
        profile = cProfile.Profile()
        began = time.perf_counter()
        profile.enable()
        for start in range(SLICE, n + SLICE, SLICE):
            process_objects(ctx, record, source, objects[start : start + SLICE], "skip")
        profile.disable()
        pipeline = n / (time.perf_counter() - began)
        texts = [text(i, "pipeline") for i in range(n)]
        began = time.perf_counter()
        for start in range(0, n, SLICE):
            stores.embedder.embed(texts[start : start + SLICE])
        bare = n / (time.perf_counter() - began)
        task_ids = upload("task")[:n]
        began = time.perf_counter()
        batch = c.post(
            f"/v1/buckets/{bucket_id}/batches",
            params={"auto_submit": "true"},
            json={"object_ids": task_ids},
        ).raise_for_status()
        task_id = batch.json()["task_id"]
        while c.get(f"/v1/tasks/{task_id}").json()["status"] not in ("COMPLETED", "FAILED"):
            time.sleep(0.25)
        task = n / (time.perf_counter() - began)
        store = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{n} objects, {store}: bare model {bare:.1f} docs/s")
        print(f"  pipeline {pipeline:.1f} docs/s ({pipeline / bare:.2f} of bare)")
        print(f"  whole task through the API {task:.1f} docs/s ({task / bare:.2f} of bare)")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    main()
