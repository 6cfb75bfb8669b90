"""Ingest throughput through buckets (issue 12): objects uploaded -> batches submitted ->
tasks COMPLETED, on the in-process pool and on 1 and 2 Celery workers, each against the bare
embedding model on the same texts, measured in the same run.

    python -m bench.ingest [--objects 2000] [--batches 4] [--rounds 3] [--quick] [--out FILE]

Each topology gets a fresh PostgreSQL database and Redis prefix (tests/support/workers.py),
and `python -m stagewise serve` as a child process:
- `inprocess`: no broker; batches run on the server's own ingest pool (STAGEWISE_INGEST_WORKERS,
  default 1 thread);
- `celery-1` / `celery-2`: one server with STAGEWISE_BROKER_URL on a private RabbitMQ queue,
  and 1, then 2 fresh `python -m stagewise worker --concurrency 1 --threads T` processes,
  T = cores / workers unless `--threads` (each loads the model once, before its first task).
A round: a new bucket and bucket-sourced collection (split_by none, so one document per
object), the objects uploaded through objects/batch (100 a request), then `--batches` batches
of equal size submitted back to back (one batch is one task, run by one worker: a second
worker helps only when there are several batches), and waited for until every task is
COMPLETED (`process`), then until every batch is `documents_resolvable` in the server
(`searchable`). A warm-up batch precedes the rounds of each topology. docs/s = objects /
seconds from the first submit (process, searchable) or from the first upload (end to end).

Bare model: `make_embedder("minilm", 64).embed(texts)` in this process on the same texts,
before and after the topologies (median), at torch's default thread count (every core) and
at 1 thread; the ratio is to the faster of the two (the stricter baseline). The machine's
load average is recorded before and after: other work on a shared machine skews every
figure. Medians over rounds."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tests.support.celery_workers import WorkerProcess, private_queue
from tests.support.workers import shared_env

from bench import text_ingest
from bench.common import BenchError, ServerProcess, start_server
from bench.generate import Dataset, Spec
from bench.measure import ADMIN_KEY, Client, load_average, log, ratio

TOPOLOGIES = ("inprocess", "celery-1", "celery-2")
CPUS = os.cpu_count() or 1
TERMINAL = {"COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELED"}


def bare_model(texts: list[str]) -> dict[str, float]:
    """docs/s of `make_embedder("minilm", 64).embed(texts)`: torch's default thread count
    (every core), then 1 thread."""
    from stagewise.embeddings.factory import make_embedder

    return text_ingest.bare_model(texts, make_embedder("minilm", 64))


class Flow:
    """Bucket -> objects -> batches -> tasks over HTTP, in a namespace of its own."""

    def __init__(self, base_url: str) -> None:
        self.ns = f"ingest-{uuid.uuid4().hex[:8]}"
        Client(base_url, None).call("POST", "/v1/namespaces", {"namespace_name": self.ns})
        self.client = Client(base_url, self.ns)

    def bucket(self, name: str) -> str:
        schema = {"properties": {"content": {"type": "text"}, "n": {"type": "integer"}}}
        bucket, _ = self.client.call(
            "POST", "/v1/buckets", {"bucket_name": name, "bucket_schema": schema}
        )
        extractor = {
            "feature_extractor_name": "text_extractor",
            "version": "v1",
            "input_mappings": {"text": "content"},
            "parameters": {"extractor_type": "text_extractor", "split_by": "none"},
        }
        source = {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]}
        self.client.call(
            "POST",
            "/v1/collections",
            {"collection_name": name, "source": source, "feature_extractor": extractor},
        )
        return str(bucket["bucket_id"])

    def upload(self, bucket_id: str, texts: list[str]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(texts), 100):
            objects = [
                {"n": start + i, "blobs": [{"property": "content", "type": "text", "data": t}]}
                for i, t in enumerate(texts[start : start + 100])
            ]
            res, _ = self.client.call(
                "POST", f"/v1/buckets/{bucket_id}/objects/batch", {"objects": objects}
            )
            if res["failed_count"]:
                raise BenchError(f"upload failed: {res['failed'][:3]}")
            ids += [o["object_id"] for o in res["succeeded"]]
        return ids

    def submit(self, bucket_id: str, object_ids: list[str], batches: int) -> list[dict[str, Any]]:
        size = -(-len(object_ids) // batches)
        out = []
        for start in range(0, len(object_ids), size):
            batch, _ = self.client.call(
                "POST",
                f"/v1/buckets/{bucket_id}/batches?auto_submit=true",
                {"object_ids": object_ids[start : start + size]},
            )
            out.append(batch)
        return out

    def wait(self, bucket_id: str, batches: list[dict[str, Any]], timeout: float = 1800) -> float:
        """Until every task ends (each must be COMPLETED); returns that moment. One request
        per poll, 4 a second: polling must not take the CPU the workers measure on."""
        deadline = time.monotonic() + timeout
        pending = [b["task_id"] for b in batches]
        while pending:
            task, _ = self.client.call("GET", f"/v1/tasks/{pending[0]}")
            if task["status"] in TERMINAL:
                if task["status"] != "COMPLETED":
                    raise BenchError(
                        f"task {task['task_id']}: {task['status']} {task.get('error')}"
                    )
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise BenchError(f"tasks still running after {timeout:.0f} s: {pending}")
            time.sleep(0.25)
        return time.perf_counter()

    def wait_searchable(self, bucket_id: str, batches: list[dict[str, Any]]) -> float:
        for b in batches:
            for _ in range(1200):
                got, _ = self.client.call("GET", f"/v1/buckets/{bucket_id}/batches/{b['batch_id']}")
                if got["documents_resolvable"]:
                    break
                time.sleep(0.25)
            else:
                raise BenchError(f"batch {b['batch_id']} never became searchable")
        return time.perf_counter()

    def round(self, name: str, texts: list[str], batches: int) -> dict[str, float]:
        bucket_id = self.bucket(name)
        t_upload = time.perf_counter()
        object_ids = self.upload(bucket_id, texts)
        t_submit = time.perf_counter()
        submitted = self.submit(bucket_id, object_ids, batches)
        t_done = self.wait(bucket_id, submitted)
        t_searchable = self.wait_searchable(bucket_id, submitted)
        n = len(texts)
        return {
            "upload_docs_per_s": round(n / (t_submit - t_upload), 1),
            "process_docs_per_s": round(n / (t_done - t_submit), 1),
            "searchable_docs_per_s": round(n / (t_searchable - t_submit), 1),
            "end_to_end_docs_per_s": round(n / (t_done - t_upload), 1),
        }


@contextmanager
def topology(
    kind: str, data_root: Path, args_threads: int = 0
) -> Iterator[tuple[ServerProcess, Callable[[int], None]]]:
    """A serving process for `kind` (inprocess | celery), and a function that gives it n
    Celery workers."""
    with ExitStack() as stack:
        env = stack.enter_context(shared_env("sw_bench_ingest"))
        if kind == "celery":
            env = {**env, **stack.enter_context(private_queue("swbench"))}
        data_dir = data_root / f"data-{kind}-{os.getpid()}"
        shutil.rmtree(data_dir, ignore_errors=True)
        server = start_server(data_dir, admin_key=ADMIN_KEY, env=env)
        stack.callback(server.stop)
        workers: list[WorkerProcess] = []

        def set_workers(n: int) -> None:
            """n fresh workers, each with its share of the cores (`worker --threads`)."""
            while workers:
                workers.pop().stop()
            for _ in range(n):
                threads = args_threads or max(1, CPUS // n)
                workers.append(WorkerProcess(data_dir, env, threads=threads))
                workers[-1].start()

        stack.callback(set_workers, 0)
        yield server, set_workers


def run_rounds(kind: str, flow: Flow, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    flow.round(f"warmup-{kind}", texts[:32], 1)
    rounds: list[dict[str, float]] = []
    for r in range(args.rounds):
        figures = flow.round(f"{kind}-round{r}", texts, args.batches)
        log(f"  {kind} round {r + 1}: {figures}")
        rounds.append(figures)
    keys = rounds[0].keys()
    return {
        "median": {k: round(statistics.median(r[k] for r in rounds), 1) for k in keys},
        "rounds": rounds,
    }


def run_topologies(
    kinds: list[str], texts: list[str], args: argparse.Namespace, data_root: Path
) -> dict[str, Any]:
    """The in-process pool on a server of its own; celery-1 then celery-2 on one server,
    its workers replaced between them."""
    out: dict[str, Any] = {}
    if "inprocess" in kinds:
        with topology("inprocess", data_root) as (server, _):
            out["inprocess"] = run_rounds("inprocess", Flow(server.base_url), texts, args)
    celery = [k for k in kinds if k.startswith("celery-")]
    if celery:
        with topology("celery", data_root, args.threads) as (server, set_workers):
            flow = Flow(server.base_url)
            for kind in sorted(celery):
                set_workers(int(kind.split("-")[1]))
                out[kind] = run_rounds(kind, flow, texts, args)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=4, help="batches per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="128 objects, 1 round (CI)")
    parser.add_argument("--topologies", default=",".join(TOPOLOGIES))
    parser.add_argument(
        "--threads", type=int, default=0, help="model threads per worker (0: cores / workers)"
    )
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.objects, args.batches, args.rounds = 128, 2, 1
    data_root = args.data_root or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    texts = [d["text"] for d in Dataset(Spec(args.objects, 20261203)).docs(0, args.objects)]
    out: dict[str, Any] = {
        "objects": args.objects,
        "batches": args.batches,
        "worker_threads": args.threads or "cores / workers",
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load_before": load_average(),
    }
    log(f"bench.ingest: {args.objects} objects, {args.batches} batches, {args.rounds} rounds")
    bare_runs = [bare_model(texts)]
    log(f"  bare model: {bare_runs[0]} docs/s")
    try:
        out.update(run_topologies(args.topologies.split(","), texts, args, data_root))
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 1
    if not args.quick:  # (the quick run keeps under a minute)
        bare_runs.append(bare_model(texts))
        log(f"  bare model (after): {bare_runs[1]} docs/s")
    out["load_after"] = load_average()
    bare = {k: statistics.median(r[k] for r in bare_runs) for k in bare_runs[0]}
    best = max(bare.values())
    out["bare_model_docs_per_s"] = bare
    out["bare_model_runs"] = bare_runs
    for kind in args.topologies.split(","):
        med = out[kind]["median"]
        out[kind]["process_ratio_to_bare"] = ratio(med["process_docs_per_s"], best)
        out[kind]["end_to_end_ratio_to_bare"] = ratio(med["end_to_end_docs_per_s"], best)
    print(
        f"\nmedians over {args.rounds} round(s), {args.objects} objects in {args.batches} batches"
    )
    print(f"bare model: {bare} docs/s (baseline {best})")
    print(f"{'topology':<10} {'upload':>8} {'process':>8} {'search.':>8} {'e2e':>8} ratio")
    for kind in args.topologies.split(","):
        m = out[kind]["median"]
        print(
            f"{kind:<10} {m['upload_docs_per_s']:>8} {m['process_docs_per_s']:>8} "
            f"{m['searchable_docs_per_s']:>8} {m['end_to_end_docs_per_s']:>8} "
            f"{out[kind]['process_ratio_to_bare']}"
        )
    print(f"load average before {out['load_before']}, after {out['load_after']}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
