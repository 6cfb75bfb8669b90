"""`stagewise load FILE --collection C`: a JSONL, CSV or Parquet file into a collection through
the bulk upsert (POST /v1/namespaces/{ns}/documents/upsert), over HTTP.

Resuming: every document has a deterministic id (its own, else one made from its content:
cli_load_format.py), so a resent row replaces its document and never duplicates it. A
checkpoint beside the file (FILE.stagewise-load.json, or --state) records the line up to which
every row was acknowledged by the server or recorded as failed, rewritten atomically after
each batch; a rerun for the same file content and collection skips those lines and says so.
What a kill loses is at most the batch in flight, which the rerun sends again: the server's
upsert replaces, so the count stays exact. (No idempotency key: a stored answer would be
replayed for a batch whose documents were deleted since, and the ids already make a resend
harmless.)"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from stagewise.cli_client import (
    DEFAULT_URL,
    Api,
    ApiError,
    ApiKey,
    CliError,
    Namespace,
    Url,
    console,
    progress_bar,
    session,
)
from stagewise.cli_load_format import FileScan, detect_format, read_rows, scan, to_document

SPLIT_STATUSES = frozenset({413, 422})  # a document's own fault: bisect to find which
STATE_SUFFIX = ".stagewise-load.json"
KEPT_FAILURES = 1000  # failures the checkpoint remembers by line (all are counted)


@dataclass(frozen=True)
class Target:
    namespace_id: str
    collection_id: str
    collection_name: str
    text_fields: frozenset[str]


def resolve_target(api: Api, namespace: str, collection: str) -> Target:
    ns = api.call("GET", f"/v1/namespaces/{namespace}")
    col = api.call("GET", f"/v1/collections/{collection}")
    mappings = (col.get("feature_extractor") or {}).get("input_mappings") or {}
    fields = frozenset(v for v in mappings.values() if isinstance(v, str))
    return Target(ns["namespace_id"], col["collection_id"], col["collection_name"], fields)


def default_state(path: Path) -> Path:
    """Beside the file; where its folder is read-only, under the user's cache folder. The
    mode bits are read as well as access(): root may write anywhere, but a folder without
    write bits is one its owner meant to keep as it is (a shared data set)."""
    folder = path.parent
    if os.access(folder, os.W_OK) and folder.stat().st_mode & stat.S_IWUSR:
        return path.with_name(path.name + STATE_SUFFIX)
    return cache_state(path)


def cache_state(path: Path) -> Path:
    """A checkpoint path under $XDG_CACHE_HOME (~/.cache)/stagewise, one per file path."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stagewise"
    tag = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    return cache / f"{tag}-{path.name}{STATE_SUFFIX}"


@dataclass
class Checkpoint:
    path: Path
    identity: dict[str, Any]
    line: int = 0  # every row up to this line was acknowledged or recorded as failed
    loaded: int = 0
    failed: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)
    complete: bool = False
    note: str = ""  # why an existing checkpoint was set aside

    @classmethod
    def open(cls, path: Path, identity: dict[str, Any], restart: bool) -> Checkpoint:
        cp = cls(path, identity)
        if restart or not path.exists():
            return cp
        try:
            data = orjson.loads(path.read_bytes())
            if data["identity"] != identity:
                cp.note = f"the checkpoint {path} is for another file content or collection"
                return cp
            cp.line, cp.loaded, cp.failed = data["line"], data["loaded"], data["failed"]
            cp.failures = [(int(n), str(m)) for n, m in data["failures"]]
            cp.complete = bool(data["complete"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            cp.note = f"the checkpoint {path} is unreadable"
        return cp

    def advance(self, line: int, loaded: int, failures: list[tuple[int, str]]) -> None:
        self.line, self.loaded, self.failed = (
            line,
            self.loaded + loaded,
            self.failed + len(failures),
        )
        self.failures += failures[: max(0, KEPT_FAILURES - len(self.failures))]
        self.save()

    def save(self) -> None:
        data = {
            "identity": self.identity,
            "line": self.line,
            "loaded": self.loaded,
            "failed": self.failed,
            "failures": self.failures,
            "complete": self.complete,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(data))
        os.replace(tmp, self.path)  # atomic: a kill leaves the old or the new one


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        rate = task.finished_speed or task.speed
        speed = f"{rate:,.0f}" if rate else "-"
        return Text(f"{speed} docs/s", style="progress.data.speed")


class Sender:
    def __init__(self, api: Api, target: Target) -> None:
        self.api, self.target = api, target
        self.path = f"/v1/namespaces/{target.namespace_id}/documents/upsert"

    def send(self, docs: list[tuple[int, dict[str, Any]]]) -> tuple[int, list[tuple[int, str]]]:
        """(documents acknowledged, (line, reason) of those refused). A batch refused for a
        document's content is split in halves until the refused rows are pinned, so one bad
        row never sinks its batch; any other error ends the load (the checkpoint stays)."""
        body = {"collection_id": self.target.collection_id, "documents": [d for _, d in docs]}
        try:
            self.api.call(
                "POST",
                self.path,
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
                retries=4,  # safe: a resent document replaces itself
            )
        except ApiError as exc:
            if exc.status not in SPLIT_STATUSES:
                raise
            if len(docs) == 1:
                return 0, [(docs[0][0], f"refused by the server ({exc.short})")]
            mid = len(docs) // 2
            first, second = self.send(docs[:mid]), self.send(docs[mid:])
            return first[0] + second[0], first[1] + second[1]
        return len(docs), []


@dataclass
class Outcome:
    rows: int  # rows this run read (after the checkpoint)
    loaded: int
    seconds: float


def run_load(
    api: Api, path: Path, fmt: str, target: Target, cp: Checkpoint, info: FileScan, batch: int
) -> Outcome:
    header = 1 if fmt == "csv" else 0  # progress counts rows: CSV line 2 is row 1
    sender = Sender(api, target)
    docs: list[tuple[int, dict[str, Any]]] = []
    bad: list[tuple[int, str]] = []
    line = cp.line
    rows = loaded = 0
    started = time.perf_counter()
    columns = (RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with progress_bar(*columns) as progress:
        bar = progress.add_task("loading", total=info.rows, completed=max(0, cp.line - header))

        def flush() -> None:
            nonlocal loaded
            ok, refused = sender.send(docs) if docs else (0, [])
            loaded += ok
            cp.advance(line, ok, sorted(bad + refused))
            progress.update(bar, completed=line - header)
            docs.clear()
            bad.clear()

        for row in read_rows(path, fmt, after=cp.line):
            rows, line = rows + 1, row.line
            if row.record is None:
                bad.append((row.line, row.error or "unreadable"))
            else:
                try:
                    docs.append((row.line, to_document(row.record, target.text_fields)))
                except ValueError as exc:
                    bad.append((row.line, str(exc)))
            if len(docs) >= batch or len(bad) >= batch:
                flush()
        flush()
        progress.update(bar, completed=info.rows)
    cp.complete = True
    cp.save()
    return Outcome(rows, loaded, time.perf_counter() - started)


def report(target: Target, cp: Checkpoint, skipped: int, outcome: Outcome | None) -> bool:
    """Prints the summary; True when no row failed (in this run or the ones it resumed)."""
    where = f"'{target.collection_name}' ({target.collection_id})"
    if outcome is None:
        console.print(
            f"nothing to send: an earlier run went through every line of this file into {where}"
            f" (checkpoint {cp.path}; --restart sends it all again)",
            highlight=False,
            soft_wrap=True,
        )
    else:
        rate = outcome.loaded / outcome.seconds if outcome.seconds > 0 else 0.0
        console.print(
            f"loaded {outcome.loaded:,} documents from {outcome.rows:,} rows into {where} in "
            f"{outcome.seconds:.1f} s ({rate:,.0f} docs/s)",
            highlight=False,
            soft_wrap=True,
        )
    if skipped:
        console.print(
            f"skipped lines 1-{skipped:,}: acknowledged by an earlier run (checkpoint {cp.path})",
            highlight=False,
            soft_wrap=True,
        )
    if cp.failed:
        console.print(Text(f"{cp.failed:,} row(s) failed:", style="red"))
        for line, reason in cp.failures[:50]:
            console.print(f"  line {line}: {reason}", highlight=False, markup=False, soft_wrap=True)
        if cp.failed > 50:
            console.print(f"  ... and {cp.failed - 50:,} more (checkpoint {cp.path})")
    return cp.failed == 0


def load_file(
    api: Api,
    path: Path,
    *,
    namespace: str,
    collection: str,
    fmt: str | None = None,
    batch_size: int = 500,
    state: Path | None = None,
    restart: bool = False,
) -> bool:
    """The whole command on an open client: True when every row loaded."""
    try:
        kind = detect_format(path, fmt)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    target = resolve_target(api, namespace, collection)
    info = scan(path, kind)
    identity = {
        "file_sha256": info.sha256,
        "size": info.size,
        "format": kind,
        "namespace_id": target.namespace_id,
        "collection_id": target.collection_id,
    }
    cp = Checkpoint.open(state or default_state(path), identity, restart)
    if cp.note:
        console.print(f"{cp.note}: starting from the first line", highlight=False)
    skipped = cp.line
    if cp.complete:
        return report(target, cp, 0, None)
    if skipped:
        console.print(f"resuming after line {skipped:,} (checkpoint {cp.path})", highlight=False)
    try:
        outcome = run_load(api, path, kind, target, cp, info, batch_size)
    except KeyboardInterrupt:
        console.print(
            f"interrupted: every line up to {cp.line:,} is acknowledged (checkpoint {cp.path});"
            " run the same command again to resume",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    return report(target, cp, skipped, outcome)


def load(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="JSONL, CSV or Parquet (.gz for text)"),
    ],
    collection: Annotated[str, typer.Option(help="The collection (name or id)")],
    namespace: Namespace = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=1000, help="Documents per upsert call")
    ] = 500,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="jsonl, csv or parquet (default: from the extension)"),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(help="The checkpoint file (default: FILE.stagewise-load.json beside it)"),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Set the checkpoint aside and send every line")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
) -> None:
    """Load a JSONL, CSV or Parquet file into a collection (docs/cli.md: the row format).
    Interrupted, the same command resumes after what the server acknowledged."""
    if not namespace:
        raise typer.BadParameter(
            "set --namespace (or STAGEWISE_NAMESPACE)", param_hint="--namespace"
        )
    with session(url, api_key, namespace) as api:
        ok = load_file(
            api,
            file,
            namespace=namespace,
            collection=collection,
            fmt=fmt,
            batch_size=batch_size,
            state=state,
            restart=restart,
        )
    if not ok:
        raise typer.Exit(1)
