"""`stagewise ingest PATH --bucket B`: a folder of .txt, .md and .json files into a bucket,
then one batch through the bucket's collections, over HTTP (STAGEWISE_URL, STAGEWISE_API_KEY).

Each file's object carries an idempotency key made of its relative path and content hash, and
the bucket's objects are listed first: a rerun after an interruption uploads only the files
whose objects are missing (the key also makes a concurrent repeat return the existing object),
and its batch skips the objects that already have documents (dedup `skip`)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from stagewise.cli_client import (
    DEFAULT_URL,
    Api,
    ApiKey,
    CliError,
    Namespace,
    Url,
    console,
    progress_bar,
    session,
)

IngestError = CliError  # the name this module's callers and tests know
TEXT_SUFFIXES = frozenset({".txt", ".md"})
SUFFIXES = TEXT_SUFFIXES | {".json"}
UPLOAD_CHUNK = 100  # objects per POST .../objects/batch (the route's maximum)
LIST_PAGE = 1000
TERMINAL = frozenset({"COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELED"})


@dataclass(frozen=True)
class LocalFile:
    rel: str  # POSIX path relative to the folder
    path: Path
    digest: str  # sha256 of the bytes

    @property
    def key(self) -> str:
        """The object's idempotency key: the same file with the same content, the same key."""
        key = f"ingest:{self.rel}#{self.digest[:16]}"
        return key if len(key) <= 255 else "ingest:" + hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Summary:
    files: int = 0
    uploaded: int = 0
    present: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, error)
    files_by_object: dict[str, str] = field(default_factory=dict)  # object id -> file


def scan(root: Path) -> list[LocalFile]:
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    return [
        LocalFile(p.relative_to(root).as_posix(), p, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in paths
    ]


def text_property(bucket: dict[str, Any]) -> str | None:
    """The bucket schema's single text property (None when it has none or several)."""
    props = (bucket.get("bucket_schema") or {}).get("properties") or {}
    texts = [name for name, spec in props.items() if (spec or {}).get("type") == "text"]
    return texts[0] if len(texts) == 1 else None


def object_body(f: LocalFile, text_prop: str | None) -> dict[str, Any]:
    """A text file becomes a text blob on the bucket's text property; a .json file's root
    fields become the object's fields."""
    if f.path.suffix.lower() == ".json":
        try:
            body = json.loads(f.path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ValueError("a .json file must hold one JSON object (its root fields)")
        return {**body, "idempotency_key": f.key}
    if text_prop is None:
        raise ValueError("the bucket schema has no single text property to hold text files")
    try:
        text = f.path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("not UTF-8 text") from exc
    blob = {"property": text_prop, "type": "text", "data": text}
    return {"blobs": [blob], "idempotency_key": f.key}


def existing_objects(api: Api, bucket_id: str) -> dict[str, str]:
    """idempotency key -> object id, for every object of the bucket that has a key."""
    found: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": LIST_PAGE}
        if cursor:
            params["cursor"] = cursor
        page = api.call("GET", f"/v1/buckets/{bucket_id}/objects", params=params)
        for obj in page["results"]:
            if obj.get("idempotency_key"):
                found[obj["idempotency_key"]] = obj["object_id"]
        cursor = (page.get("pagination") or {}).get("next_cursor")
        if not cursor or not page["results"]:
            return found


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def upload(
    api: Api, bucket_id: str, todo: list[tuple[LocalFile, dict[str, Any]]], summary: Summary
) -> dict[str, str]:
    """Uploads `todo` in chunks; idempotency key -> object id of those stored."""
    stored: dict[str, str] = {}
    with progress_bar() as progress:
        bar = progress.add_task("uploading", total=len(todo))
        for part in chunks(todo, UPLOAD_CHUNK):
            res = api.call(
                "POST",
                f"/v1/buckets/{bucket_id}/objects/batch",
                json={"objects": [body for _, body in part]},
            )
            for ok in res["succeeded"]:
                stored[part[ok["object_index"]][0].key] = ok["object_id"]
            summary.uploaded += sum(1 for ok in res["succeeded"] if not ok.get("replayed"))
            summary.present += sum(1 for ok in res["succeeded"] if ok.get("replayed"))
            for bad in res["failed"]:
                summary.failures.append((part[bad["object_index"]][0].rel, str(bad["error"])))
            progress.advance(bar, len(part))
    return stored


def process(
    api: Api, bucket_id: str, object_ids: list[str], collection: str | None, poll_s: float
) -> dict[str, Any]:
    """One batch of `object_ids`, submitted, followed until its task ends; the batch then."""
    body: dict[str, Any] = {"object_ids": object_ids}
    if collection:
        body["collection_ids"] = [collection]
    batch: dict[str, Any] = api.call(
        "POST", f"/v1/buckets/{bucket_id}/batches", params={"auto_submit": "true"}, json=body
    )
    batch_path = f"/v1/buckets/{bucket_id}/batches/{batch['batch_id']}"
    with progress_bar() as progress:
        bar = progress.add_task("processing", total=len(object_ids))
        while True:
            task = api.call("GET", f"/v1/tasks/{batch['task_id']}")
            batch = api.call("GET", batch_path)
            progress.update(bar, completed=(batch.get("progress") or {}).get("processed") or 0)
            if task["status"] in TERMINAL:
                batch["task"] = task
                return batch
            time.sleep(poll_s)


def run(
    root: Path,
    *,
    api: Api,
    bucket: str,
    collection: str | None,
    poll_s: float = 0.5,
) -> tuple[Summary, dict[str, Any] | None]:
    found = api.call("GET", f"/v1/buckets/{bucket}")
    bucket_id = found["bucket_id"]
    files = scan(root)
    summary = Summary(files=len(files))
    have = existing_objects(api, bucket_id)
    text_prop = text_property(found)
    todo: list[tuple[LocalFile, dict[str, Any]]] = []
    object_ids: list[str] = []
    for f in files:
        if f.key in have:
            summary.present += 1
            object_ids.append(have[f.key])
            summary.files_by_object[have[f.key]] = f.rel
            continue
        try:
            todo.append((f, object_body(f, text_prop)))
        except (OSError, ValueError) as exc:
            summary.failures.append((f.rel, str(exc)))
    if todo:
        stored = upload(api, bucket_id, todo, summary)
        object_ids += stored.values()
        rel = {f.key: f.rel for f, _ in todo}
        summary.files_by_object.update({oid: rel[key] for key, oid in stored.items()})
    if not object_ids:
        return summary, None
    return summary, process(api, bucket_id, object_ids, collection, poll_s)


def report(summary: Summary, batch: dict[str, Any] | None) -> bool:
    """Prints the summary; True when nothing failed."""
    console.print(
        f"files: {summary.files}   uploaded: {summary.uploaded}   "
        f"already in the bucket: {summary.present}",
        highlight=False,
        soft_wrap=True,
    )
    failures = list(summary.failures)
    if batch is not None:
        progress = batch.get("progress") or {}
        task = batch["task"]
        console.print(
            f"batch {batch['batch_id']}: {batch['status']}   objects: {progress.get('total', 0)}"
            f"   documents written: {batch.get('documents_written') or 0}"
            f"   skipped (already processed): {progress.get('objects_skipped') or 0}",
            highlight=False,
            soft_wrap=True,
        )
        if task["status"] != "COMPLETED" and task.get("error"):
            failures.append((f"task {task['task_id']}", task["error"]))
        failures += [
            (summary.files_by_object.get(f["object_id"], f["object_id"]), f["error"])
            for f in batch.get("failed_objects") or []
        ]
    if failures:
        console.print(f"[red]{len(failures)} failure(s):[/red]")
        for what, error in failures[:50]:
            console.print(f"  {what}: {error}", highlight=False, markup=False, soft_wrap=True)
        if len(failures) > 50:
            console.print(f"  ... and {len(failures) - 50} more")
    ok = not failures and (batch is None or batch["task"]["status"] == "COMPLETED")
    return ok


def ingest(
    path: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="Folder of .txt, .md, .json")
    ],
    bucket: Annotated[str, typer.Option(help="The bucket (name or id)")],
    namespace: Namespace = None,
    collection: Annotated[
        str | None,
        typer.Option(help="Only this collection (default: all sourced from the bucket)"),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
) -> None:
    """Upload a folder's .txt, .md and .json files as objects of a bucket (a rerun uploads
    only what is missing), then process them in one batch and report."""
    with session(url, api_key, namespace) as api:
        summary, batch = run(path, api=api, bucket=bucket, collection=collection)
    if not report(summary, batch):
        raise typer.Exit(1)
