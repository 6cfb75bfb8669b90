"""Acknowledged writes survive a clean restart and a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from bench.common import serve_command

from tests.conftest import ADMIN_KEY
from tests.support.server import ServerHandle, free_port

pytestmark = [pytest.mark.api, pytest.mark.slow]

COLLECTION = {
    "collection_name": "notes",
    "source": {"type": "direct_upsert"},
    "feature_extractor": {"feature_extractor_name": "text_extractor", "version": "v1"},
}


def seed(client: httpx.Client, base: httpx.Client, n: int) -> list[str]:
    base.post("/v1/namespaces", json={"namespace_name": "durable"}).raise_for_status()
    client.post("/v1/collections", json=COLLECTION).raise_for_status()
    ids = []
    for i in range(n):
        resp = client.post(
            "/v1/collections/notes/documents",
            json={"text": f"note {i}", "metadata": {"i": i, "even": i % 2 == 0}},
        )
        resp.raise_for_status()
        ids.append(resp.json()["document_id"])
    return ids


def test_restart_keeps_everything(
    fresh_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = fresh_server(data, embedder="hash")
    ids = seed(first.client(ADMIN_KEY, "durable"), first.client(ADMIN_KEY), 12)
    first.client(ADMIN_KEY, "durable").delete(f"/v1/collections/notes/documents/{ids[0]}")
    first.stop()

    second = fresh_server(data, embedder="hash")
    c = second.client(ADMIN_KEY, "durable")
    assert c.get("/v1/collections/notes/documents/count").json()["count"] == 11
    assert c.get(f"/v1/collections/notes/documents/{ids[5]}").json()["metadata"]["i"] == 5
    assert c.get(f"/v1/collections/notes/documents/{ids[0]}").status_code == 404
    evens = c.post(
        "/v1/collections/notes/documents/list",
        json={
            "filters": {"AND": [{"field": "metadata.even", "operator": "eq", "value": True}]},
            "limit": 100,
        },
    ).json()["results"]
    assert sorted(d["metadata"]["i"] for d in evens) == [2, 4, 6, 8, 10]


def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "STAGEWISE_ADMIN_KEY": ADMIN_KEY, "STAGEWISE_EMBEDDER": "hash"}
    cmd = serve_command(port, tmp_path / "data")

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code == 200:
                    return proc
            except httpx.TransportError:
                time.sleep(0.1)
        proc.kill()
        raise RuntimeError("server did not start")

    proc = start()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "X-Namespace": "durable"}
    with httpx.Client(base_url=base, headers=headers) as c:
        ids = seed(c, c, 0)
        docs = [
            {
                "document_id": f"d{i}",
                "vectors": {"all_minilm_l6_v2": [1.0] + [0.0] * 383},
                "metadata": {"i": i},
            }
            for i in range(300)
        ]
        resp = c.post(
            "/v1/namespaces/durable/documents/upsert",
            json={"collection_id": "notes", "documents": docs},
        )
        resp.raise_for_status()
        assert ids == []
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    proc = start()
    try:
        with httpx.Client(base_url=base, headers=headers) as c:
            assert c.get("/v1/collections/notes/documents/count").json()["count"] == 300
            hits = c.post(
                "/v1/collections/notes/documents/list",
                json={
                    "filters": {"AND": [{"field": "metadata.i", "operator": "gte", "value": 295}]},
                    "limit": 100,
                },
            ).json()["results"]
            assert sorted(d["document_id"] for d in hits) == [f"d{i}" for i in range(295, 300)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
