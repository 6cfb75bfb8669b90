"""API keys: hashed at rest, namespace-bound and read-only keys get 403 where they must."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid

import pytest

from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]


def cli(*args: str, data_dir: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "stagewise", *args, "--data-dir", data_dir],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_cli_keys_are_hashed_and_scoped(server: ServerHandle) -> None:
    admin = server.client(server.admin_key)
    ns_a, ns_b = f"ns-{uuid.uuid4().hex[:8]}", f"ns-{uuid.uuid4().hex[:8]}"
    for ns in (ns_a, ns_b):
        admin.post("/v1/namespaces", json={"namespace_name": ns}).raise_for_status()

    bound = cli("keys", "create", "--namespace", ns_a, data_dir=str(server.data_dir))
    reader = cli(
        "keys", "create", "--namespace", ns_a, "--read-only", data_dir=str(server.data_dir)
    )
    assert bound.startswith("sk_") and reader.startswith("sk_") and bound != reader

    # Only hashes are stored.
    with sqlite3.connect(server.data_dir / "stagewise.db") as db:
        dump = "\n".join(db.iterdump())
    assert bound not in dump and reader not in dump

    a = server.client(bound, namespace=ns_a)
    assert a.get("/v1/collections").status_code == 200
    created = a.post(
        "/v1/collections", json={"collection_name": "mine", "source": {"type": "none"}}
    )
    assert created.status_code == 200, created.text

    other = server.client(bound, namespace=ns_b).get("/v1/collections")
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "namespace_forbidden"
    assert (
        server.client(bound).post("/v1/namespaces", json={"namespace_name": "x" * 5}).status_code
        == 403
    )

    r = server.client(reader, namespace=ns_a)
    assert r.get("/v1/collections/mine").status_code == 200
    denied = r.post("/v1/collections", json={"collection_name": "nope", "source": {"type": "none"}})
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "read_only_key"
    assert r.get("/v1/collections").json()["total_count"] == 1


def test_keys_create_for_unknown_namespace_fails(server: ServerHandle) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "stagewise",
            "keys",
            "create",
            "--namespace",
            "missing-ns",
            "--data-dir",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert "not found" in out.stdout
