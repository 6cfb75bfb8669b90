"""API keys: hashed at rest, namespace-bound and read-only keys get 403 where they must, and
the CLI lists (never showing a secret) and revokes them, effective on the next request."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid

import pytest
from typer.testing import CliRunner

from stagewise.cli import app
from stagewise.services.keys import hash_key
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


def run_cli(*args: str, data_dir: str, code: int = 0) -> str:
    # Wide enough that rich's table never folds a cell the assertions look for.
    result = CliRunner().invoke(app, [*args, "--data-dir", data_dir], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result.output


def test_cli_lists_and_revokes_keys_with_effect_on_the_next_request(server: ServerHandle) -> None:
    data_dir = str(server.data_dir)
    ns = f"ns-{uuid.uuid4().hex[:8]}"
    server.client(server.admin_key).post("/v1/namespaces", json={"namespace_name": ns})
    name = f"cli-{uuid.uuid4().hex[:6]}"
    made = run_cli("keys", "create", "--namespace", ns, "--name", name, data_dir=data_dir)
    secret = made.strip().splitlines()[-1]
    key_id = made.split("key id: ")[1].split()[0]
    client = server.client(secret, namespace=ns)
    assert client.get("/v1/collections").status_code == 200  # the server has looked it up

    listed = run_cli("keys", "list", "--namespace", ns, data_dir=data_dir)
    row = next(line for line in listed.splitlines() if key_id in line)
    assert secret[:10] in row and name in row and ns in row and "active" in row
    everything = run_cli("keys", "list", data_dir=data_dir)
    assert key_id in everything
    assert secret not in everything and hash_key(secret) not in everything

    revoked = run_cli("keys", "revoke", key_id, data_dir=data_dir)
    assert f"revoked {key_id}" in revoked
    resp = client.get("/v1/collections")  # the very next request, no restart
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "revoked_api_key"
    row = next(
        line for line in run_cli("keys", "list", data_dir=data_dir).splitlines() if key_id in line
    )
    assert "revoked" in row
    assert f"revoked {key_id}" in run_cli("keys", "revoke", key_id, data_dir=data_dir)
    assert "not found" in run_cli("keys", "revoke", "key_nope", data_dir=data_dir, code=1)


def test_cli_creates_keys_that_expire(server: ServerHandle) -> None:
    data_dir = str(server.data_dir)
    made = run_cli("keys", "create", "--ttl-seconds", "3600", data_dir=data_dir)
    key_id = made.split("key id: ")[1].split()[0]
    row = next(
        line for line in run_cli("keys", "list", data_dir=data_dir).splitlines() if key_id in line
    )
    assert "active" in row and "admin" in row
    assert server.client(made.strip().splitlines()[-1]).get("/v1/namespaces").status_code == 200
    past = run_cli("keys", "create", "--expires-at", "2001-01-01", data_dir=data_dir, code=2)
    assert "must be in the future" in past
