"""`stagewise ingest PATH --bucket B` against a live server: a folder becomes objects and
documents; a run cut off mid-upload and its rerun upload each file once; bad files are
reported without stopping the rest."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from stagewise import cli_ingest
from stagewise.cli import app
from tests.conftest import ADMIN_KEY
from tests.support.server import ServerHandle

pytestmark = [pytest.mark.api]


def make_folder(root: Path, n_text: int, n_md: int, n_json: int) -> int:
    (root / "notes" / "deep").mkdir(parents=True)
    for i in range(n_text):
        where = root / "notes" if i % 2 else root / "notes" / "deep"
        (where / f"t{i}.txt").write_text(f"Plain note {i} about rivers and {i * 7} stones.")
    for i in range(n_md):
        (root / f"m{i}.md").write_text(f"# Heading {i}\n\nMarkdown note {i} about lighthouses.")
    for i in range(n_json):
        body = {"content": f"JSON record {i} about glaciers.", "title": f"record {i}"}
        (root / f"j{i}.json").write_text(json.dumps(body))
    (root / "ignored.csv").write_text("a,b\n1,2\n")
    return n_text + n_md + n_json


def setup(http: httpx.Client, ns: str) -> tuple[str, str]:
    assert http.post("/v1/namespaces", json={"namespace_name": ns}).status_code == 200
    http.headers["X-Namespace"] = ns
    schema = {"properties": {"content": {"type": "text"}, "title": {"type": "string"}}}
    res = http.post("/v1/buckets", json={"bucket_name": "docs", "bucket_schema": schema})
    assert res.status_code == 200, res.text
    res = http.post(
        "/v1/collections",
        json={
            "collection_name": "docs",
            "source": {"type": "bucket", "bucket_ids": [res.json()["bucket_id"]]},
            "feature_extractor": {
                "feature_extractor_name": "text_extractor",
                "version": "v1",
                "input_mappings": {"text": "content"},
                "parameters": {"extractor_type": "text_extractor", "split_by": "none"},
            },
        },
    )
    assert res.status_code == 200, res.text
    return "docs", res.json()["collection_id"]


def invoke(server: ServerHandle, ns: str, folder: Path) -> tuple[int, str]:
    env = {"STAGEWISE_URL": server.base_url, "STAGEWISE_API_KEY": ADMIN_KEY}
    args = ["ingest", str(folder), "--bucket", "docs", "--namespace", ns]
    result = CliRunner().invoke(app, args, env=env, terminal_width=200)
    return result.exit_code, result.output


def counts(output: str) -> dict[str, int]:
    found = re.findall(r"([a-z ()]+): (\d+)", output)
    return {name.strip(): int(value) for name, value in found}


def test_interrupted_ingest_reruns_only_what_is_missing(
    server: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = f"cli-{uuid.uuid4().hex[:8]}"
    files = make_folder(tmp_path / "in", n_text=24, n_md=8, n_json=8)
    with server.client(ADMIN_KEY) as http:
        bucket, collection_id = setup(http, ns)

        # A run cut off by the network after its second upload request.
        monkeypatch.setattr(cli_ingest, "UPLOAD_CHUNK", 10)
        real_call = cli_ingest.Api.call
        sent: list[int] = []  # objects per upload request
        cut_at = [3]

        def counted(self: cli_ingest.Api, method: str, path: str, **kwargs: Any) -> Any:
            if path.endswith("/objects/batch"):
                sent.append(len(kwargs["json"]["objects"]))
                if len(sent) == cut_at[0]:
                    raise cli_ingest.IngestError("cannot reach the server: connection reset")
            return real_call(self, method, path, **kwargs)

        monkeypatch.setattr(cli_ingest.Api, "call", counted)
        code, output = invoke(server, ns, tmp_path / "in")
        assert code == 1 and "connection reset" in output, output
        assert http.get(f"/v1/buckets/{bucket}").json()["object_count"] == 20

        sent.clear()
        cut_at[0] = 0
        code, output = invoke(server, ns, tmp_path / "in")
        assert sum(sent) == files - 20  # only the files the first run did not upload
        assert code == 0, output
        seen = counts(output)
        assert (seen["files"], seen["uploaded"], seen["already in the bucket"]) == (files, 20, 20)
        assert seen["documents written"] == files and seen["objects"] == files
        assert http.get(f"/v1/buckets/{bucket}").json()["object_count"] == files
        docs = http.get(f"/v1/collections/{collection_id}/documents/count").json()["count"]
        assert docs == files

        # Nothing new: no upload, and the batch finds every object processed already.
        sent.clear()
        code, output = invoke(server, ns, tmp_path / "in")
        assert code == 0, output
        assert sent == []
        seen = counts(output)
        assert (seen["uploaded"], seen["already in the bucket"]) == (0, files)
        assert seen["documents written"] == 0 and seen["skipped (already processed)"] == files
        assert http.get(f"/v1/buckets/{bucket}").json()["object_count"] == files
        docs = http.get(f"/v1/collections/{collection_id}/documents/count").json()["count"]
        assert docs == files

        # Every object is one file, named by its key; each has one document.
        listed = http.get(f"/v1/buckets/{bucket}/objects", params={"limit": 100}).json()
        keys = sorted(o["idempotency_key"].split("#")[0] for o in listed["results"])
        assert len(keys) == len(set(keys)) == files
        assert "ingest:notes/deep/t0.txt" in keys and "ingest:j3.json" in keys
        one = listed["results"][0]["object_id"]
        assert http.get(f"/v1/objects/{one}/documents").json()["total"] == 1


def test_bad_files_are_reported_and_the_rest_ingested(server: ServerHandle, tmp_path: Path) -> None:
    ns = f"cli-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("A good note about owls.")
    (folder / "b.md").write_text("Another good note about herons.")
    (folder / "broken.json").write_text("{not json")
    (folder / "list.json").write_text("[1, 2]")
    (folder / "no_text.json").write_text(json.dumps({"title": "a record without content"}))
    with server.client(ADMIN_KEY) as http:
        _, collection_id = setup(http, ns)
        code, output = invoke(server, ns, folder)
        assert code == 1, output
        assert "broken.json: not valid JSON" in output
        assert "list.json: a .json file must hold one JSON object" in output
        assert "no_text.json: the object has no 'content' to embed" in output  # uploaded
        seen = counts(output)
        assert (seen["files"], seen["uploaded"], seen["documents written"]) == (5, 3, 2), output
        docs = http.get(f"/v1/collections/{collection_id}/documents/count").json()["count"]
        assert docs == 2
