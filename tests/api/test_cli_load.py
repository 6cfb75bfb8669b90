"""`stagewise load FILE --collection C` against a live server: 10k lines with their own
vectors, killed half-way and rerun, end with exactly one document per distinct line; text
lines are embedded by the server; CSV and Parquet give the same documents as JSONL; bad lines
are reported by line number while the rest load."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import ADMIN_KEY
from tests.support.cli import new_namespace, run_cli, text_collection
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]

SRC = Path(__file__).resolve().parents[2] / "src"
DIM = 4


@pytest.fixture
def byo(server: ServerHandle) -> Iterator[tuple[httpx.Client, str]]:
    """A namespace with a 4-d BYO vector and a collection that takes it: no model runs."""
    ns, http = new_namespace(server, "load", vector_configs=[{"name": "emb", "dimension": DIM}])
    col = {"collection_name": "pts", "source": {"type": "direct_upsert"}}
    http.post("/v1/collections", json=col).raise_for_status()
    yield http, ns
    http.close()


def invoke(server: ServerHandle, ns: str, *args: str) -> tuple[int, str]:
    result = run_cli(server, "load", *args, "--namespace", ns)
    return result.exit_code, result.output


def count(http: httpx.Client, collection: str = "pts") -> int:
    return int(http.get(f"/v1/collections/{collection}/documents/count").json()["count"])


def vector(i: int) -> list[float]:
    return [round(1 + (i * k % 97) / 97, 4) for k in (1, 3, 7, 11)]


def test_interrupted_load_resumes_without_duplicates(
    server: ServerHandle, byo: tuple[httpx.Client, str], tmp_path: Path
) -> None:
    http, ns = byo
    # 10,000 lines: 9,800 distinct and 200 exact repeats of earlier lines (the same content
    # is the same document); every tenth line names its own id.
    lines = []
    for i in range(9800):
        row: dict[str, Any] = {"title": f"row {i}", "n": i, "vectors": {"emb": vector(i)}}
        if i % 10 == 0:
            row["document_id"] = f"doc-{i}"
        lines.append(json.dumps(row))
    lines += lines[1000:1200]
    assert len(set(lines)) == 9800
    data = tmp_path / "big.jsonl"
    data.write_text("\n".join(lines) + "\n")
    state = tmp_path / "big.jsonl.stagewise-load.json"

    # A real interruption: the process is killed (SIGKILL, no clean-up) once the checkpoint
    # says half the file is acknowledged.
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "STAGEWISE_URL": server.base_url,
        "STAGEWISE_API_KEY": ADMIN_KEY,
    }
    args = ["load", str(data), "--collection", "pts", "--namespace", ns, "--batch-size", "250"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stagewise", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    acked = 0
    deadline = time.monotonic() + 60
    while acked < 5000 and proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            acked = json.loads(state.read_text())["line"]
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the load ended before it was killed: {err!r}"
    checkpoint = json.loads(state.read_text())
    assert 5000 <= checkpoint["line"] < 10_000 and checkpoint["complete"] is False
    assert count(http) >= checkpoint["line"] - 200  # at least what it acknowledged

    code, output = invoke(server, ns, str(data), "--collection", "pts")
    assert code == 0, output
    done = checkpoint["line"]
    assert f"resuming after line {done:,}" in output
    assert f"skipped lines 1-{done:,}: acknowledged by an earlier run" in output
    assert f"loaded {10_000 - done:,} documents from {10_000 - done:,} rows" in output
    assert re.search(r"10000/10000 +[\d,]+ docs/s", output), output  # the progress bar
    assert count(http) == 9800
    assert http.get(f"/v1/namespaces/{ns}/documents/doc-4000").json()["metadata"] == {
        "title": "row 4000",
        "n": 4000,
    }

    # Done: a rerun sends nothing; --restart sends it all again, and replaces.
    code, output = invoke(server, ns, str(data), "--collection", "pts")
    assert code == 0 and "nothing to send" in output, output
    code, output = invoke(server, ns, str(data), "--collection", "pts", "--restart")
    assert code == 0 and "loaded 10,000 documents" in output, output
    assert count(http) == 9800


def test_bad_lines_are_reported_by_line_number_and_the_rest_load(
    server: ServerHandle, byo: tuple[httpx.Client, str], tmp_path: Path
) -> None:
    http, ns = byo
    lines = [
        json.dumps({"document_id": f"ok{i}", "vectors": {"emb": vector(i)}}) for i in range(40)
    ]
    lines[4] = '{"document_id": "broken'  # line 5: not JSON
    lines[11] = json.dumps({"document_id": "short", "vectors": {"emb": [1.0, 2.0]}})  # line 12
    lines[20] = "[1, 2]"  # line 21: not an object
    lines[33] = json.dumps({"document_id": "bad id!", "vectors": {"emb": vector(1)}})  # 34
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join(lines) + "\n")
    code, output = invoke(server, ns, str(data), "--collection", "pts", "--batch-size", "10")
    assert code == 1, output
    assert "loaded 36 documents from 40 rows" in output
    assert "4 row(s) failed:" in output
    assert "line 5: not valid JSON" in output
    assert "line 12: refused by the server (HTTP 422 vector_dimension_mismatch" in output
    assert "line 21: a line must hold a JSON object, not an array" in output
    assert "line 34: refused by the server (HTTP 422 invalid_id" in output
    assert count(http) == 36
    # The failures are part of the checkpoint: a rerun still says so, and still fails.
    code, output = invoke(server, ns, str(data), "--collection", "pts")
    assert code == 1 and "nothing to send" in output and "line 34: refused" in output


def test_csv_and_parquet_give_the_documents_jsonl_gives(
    server: ServerHandle, byo: tuple[httpx.Client, str], tmp_path: Path
) -> None:
    http, ns = byo
    rows = [
        {"color": ["red", "green"][i % 2], "size": i, "vectors": {"emb": vector(i)}}
        for i in range(12)
    ]
    for row in rows[:3]:
        row["document_id"] = f"named-{row['size']}"
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    csv_lines = ["document_id,color,metadata.size,vectors.emb"]
    csv_lines += [
        f'{r.get("document_id", "")},{r["color"]},{r["size"]},"{r["vectors"]["emb"]}"' for r in rows
    ]
    (tmp_path / "rows.csv").write_text("\n".join(csv_lines) + "\n")
    table = pa.table(
        {
            "document_id": [r.get("document_id") for r in rows],
            "metadata": [{"color": r["color"], "size": r["size"]} for r in rows],
            "vectors.emb": [r["vectors"]["emb"] for r in rows],
        }
    )
    pq.write_table(table, tmp_path / "rows.parquet", row_group_size=5)

    seen = []
    for name in ("rows.jsonl", "rows.csv", "rows.parquet"):
        code, output = invoke(server, ns, str(tmp_path / name), "--collection", "pts")
        assert code == 0 and "loaded 12 documents from 12 rows" in output, output
        assert count(http) == 12  # the same ids: each format replaced the same documents
        listed = http.post("/v1/collections/pts/documents/list", json={}, params={"limit": 50})
        seen.append(
            sorted(
                (d["document_id"], json.dumps(d["metadata"], sort_keys=True))
                for d in listed.json()["results"]
            )
        )
    assert seen[0] == seen[1] == seen[2]
    assert ("named-1", json.dumps({"color": "green", "size": 1})) in seen[0]


def test_text_lines_are_embedded_by_the_server(server: ServerHandle, tmp_path: Path) -> None:
    ns, http = new_namespace(server, "load")
    text_collection(http, "notes")
    data = tmp_path / "notes.jsonl"
    data.write_text(
        json.dumps({"document_id": "owl", "text": "Owls hunt at night.", "kind": "bird"})
        + "\n"
        + json.dumps({"text": "Trout live in cold rivers.", "kind": "fish"})
        + "\n"
    )
    code, output = invoke(server, ns, str(data), "--collection", "notes")
    assert code == 0 and "loaded 2 documents" in output, output
    assert count(http, "notes") == 2
    owl = http.get(f"/v1/namespaces/{ns}/documents/owl", params={"return_vectors": "true"}).json()
    assert owl["text"] == "Owls hunt at night." and owl["metadata"] == {"kind": "bird"}
    assert any(len(v) == 384 for v in owl["vectors"].values())  # embedded by the server
    http.close()
