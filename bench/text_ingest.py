"""Text ingest, with the server embedding each document, against the bare model's own
throughput on the same texts.

    python -m bench.text_ingest [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import start_server
from bench.generate import Dataset, Spec
from bench.measure import ADMIN_KEY, NAMESPACE, UPSERT_BATCH, Client, log, ratio, rss_bytes

if TYPE_CHECKING:
    from stagewise.embeddings.base import Embedder


def text_ingest(n: int, seed: int, data_root: Path) -> dict[str, Any]:
    """Server-side embedding of n texts: single POSTs at 1 and 4 clients, and the batched
    BYO route, against the bare model on the same texts."""
    ds = Dataset(Spec(max(n, 2 * UPSERT_BATCH), seed + 7))
    texts = [d["text"] for d in ds.docs(0, 2 * n)]
    single_texts, batch_texts = texts[:n], texts[n : 2 * n]
    out: dict[str, Any] = {"documents": n}
    bare_before = bare_model(single_texts)
    data_dir = data_root / f"data-text-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = start_server(data_dir, admin_key=ADMIN_KEY)
    try:
        admin = Client(server.base_url, None)
        try:
            admin.call(
                "POST",
                "/v1/namespaces",
                {"namespace_name": NAMESPACE},
            )
        finally:
            admin.close()
        client = Client(server.base_url)
        try:
            client.call(
                "POST",
                "/v1/collections",
                {
                    "collection_name": "texts",
                    "source": {"type": "direct_upsert"},
                    "feature_extractor": {
                        "feature_extractor_name": "text_extractor",
                        "version": "v1",
                    },
                },
            )
            client.call("POST", "/v1/collections/texts/documents", {"text": "warm up the model"})
        finally:
            client.close()

        def post_single(items: list[str]) -> None:
            c = Client(server.base_url)
            try:
                for t in items:
                    c.call("POST", "/v1/collections/texts/documents", {"text": t})
            finally:
                c.close()

        for workers in (1, 4):
            part = single_texts[: n // 2] if workers == 1 else single_texts[n // 2 :]
            chunks = [part[i::workers] for i in range(workers)]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(post_single, chunks))
            secs = time.perf_counter() - t0
            out[f"single_post_{workers}_clients_docs_per_s"] = round(len(part) / secs, 1)
            log(f"  text ingest, single POSTs, {workers} clients: {len(part) / secs:.0f} docs/s")

        # Batched: the BYO route with empty vectors; the server embeds the texts of all the
        # call's documents in batches (the batched text route).
        c = Client(server.base_url, None)
        try:
            t0 = time.perf_counter()
            for start in range(0, n, UPSERT_BATCH):
                chunk = batch_texts[start : start + UPSERT_BATCH]
                c.call(
                    "POST",
                    f"/v1/namespaces/{NAMESPACE}/documents/upsert",
                    {
                        "collection_id": "texts",
                        "documents": [
                            {
                                "document_id": f"t{start + i}",
                                "vectors": {},
                                "payload": {"text": t},
                            }
                            for i, t in enumerate(chunk)
                        ],
                    },
                )
            secs = time.perf_counter() - t0
        finally:
            c.close()
        out["batched_upsert_docs_per_s"] = round(n / secs, 1)
        log(f"  text ingest, batched upsert: {n / secs:.0f} docs/s")
        out["server_rss"] = rss_bytes(server.proc.pid)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    bare_after = bare_model(single_texts)
    bare = {k: round((bare_before[k] + bare_after[k]) / 2, 1) for k in bare_before}
    out["bare_model_docs_per_s"] = bare
    out["bare_model_runs"] = [bare_before, bare_after]
    default = next(iter(bare_before))  # the default thread count comes first
    out["bare_model_default_threads"] = default
    best = max(bare.values())  # the stricter baseline: the faster thread count here
    out["bare_model_best_docs_per_s"] = best
    for key in (
        "single_post_1_clients_docs_per_s",
        "single_post_4_clients_docs_per_s",
        "batched_upsert_docs_per_s",
    ):
        out[key.replace("_docs_per_s", "_ratio_to_bare")] = ratio(out[key], best)
    log(f"  bare model: {bare} docs/s")
    return out


def bare_model(texts: list[str], model: Embedder | None = None) -> dict[str, float]:
    """`model.embed` (default: MiniLMEmbedder()) on `texts` in this process: docs/s at
    torch's default thread count (first key) and at 1 thread (the server runs torch with
    OMP_NUM_THREADS=1)."""
    import torch

    from stagewise.embeddings.minilm import MiniLMEmbedder

    model = model or MiniLMEmbedder()
    model.embed(texts)  # load and warm up on the very texts (first runs are slower)
    default_threads = torch.get_num_threads()
    out: dict[str, float] = {}
    try:
        for threads in sorted({default_threads, 1}, reverse=True):
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            model.embed(texts)
            out[f"{threads}_threads"] = round(len(texts) / (time.perf_counter() - t0), 1)
    finally:
        torch.set_num_threads(default_threads)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1000, help="texts per route")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data-root", type=Path, default=Path("/work/bench-data"))
    args = p.parse_args(argv)
    print(json.dumps(text_ingest(args.n, args.seed, args.data_root), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
