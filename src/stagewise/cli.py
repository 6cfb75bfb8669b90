"""The `stagewise` command: serve | worker | keys | db | index on this machine; ingest | load |
retrievers | executions | eval against a server over HTTP (cli_client.py)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from stagewise import __version__
from stagewise.api.logs import LogFormat
from stagewise.cli_eval import eval_command
from stagewise.cli_ingest import ingest
from stagewise.cli_load import load
from stagewise.cli_retrievers import executions_app, retrievers_app
from stagewise.config import Settings

if TYPE_CHECKING:
    from stagewise.storage.sql.store import SqlMetadataStore

app = typer.Typer(help="Stagewise: a self-hosted retrieval engine that speaks the Mixpeek API.")
keys_app = typer.Typer(help="Manage API keys.")
db_app = typer.Typer(help="Manage the metadata database.")
index_app = typer.Typer(help="Maintain the search indexes (run with the server stopped).")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(index_app, name="index")
app.command("ingest")(ingest)
app.command("load")(load)
app.add_typer(retrievers_app, name="retrievers")
app.add_typer(executions_app, name="executions")
app.command("eval")(eval_command)
console = Console()


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"stagewise {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """Stagewise: a self-hosted retrieval engine that speaks the Mixpeek API."""


DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Where data lives (env STAGEWISE_DATA_DIR)")
]


def _settings(data_dir: Path | None) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    data_dir: DataDir = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    log_format: Annotated[
        LogFormat,
        typer.Option(
            envvar="STAGEWISE_LOG_FORMAT",
            help="json: one object per line, for log collectors; text: for reading",
        ),
    ] = "json",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="API worker processes (more than 1 needs PostgreSQL and Redis: docs/scaling.md)",
        ),
    ] = 1,
) -> None:
    """Run the API server (embedded defaults: SQLite + in-process Qdrant Edge)."""
    # One BLAS thread: threaded BLAS on small mat-vecs is ~30x slower on these machines.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import gc

    import uvicorn

    from stagewise.api.app import create_app
    from stagewise.api.logs import log_config
    from stagewise.api.memory import limit_arenas
    from stagewise.errors import InvalidRequest
    from stagewise.services.context import check_topology

    # A request allocates thousands of containers (1,000 documents of a BYO upsert, 100-hit
    # candidate lists), so the default gen-0 threshold (700) runs the collector many times
    # per request; measured: BYO ingest +28% with these thresholds.
    gc.set_threshold(50_000, 50, 1000)
    limit_arenas(2)  # before uvicorn starts its threads (api/memory.py)

    settings = _settings(data_dir).model_copy(update={"workers": workers})
    try:
        check_topology(settings)
    except InvalidRequest as exc:
        raise typer.BadParameter(exc.message, param_hint="--workers") from exc
    if not settings.admin_key:
        console.print(
            "[yellow]STAGEWISE_ADMIN_KEY is not set: create a key with "
            "`stagewise keys create` or set that variable.[/yellow]"
        )
    # Applied by uvicorn in each worker process; the access lines are ours (api/logs.py).
    run = functools.partial(
        uvicorn.run,
        host=host,
        port=port,
        log_level=log_level,
        http="httptools",
        log_config=log_config(log_format, log_level),
        access_log=False,
    )
    if workers == 1:
        run(create_app(settings))
        return
    # Each worker process builds its app from the environment (uvicorn imports it by name).
    os.environ["STAGEWISE_WORKERS"] = str(workers)
    os.environ["STAGEWISE_DATA_DIR"] = str(settings.data_dir.resolve())
    run("stagewise.api.app:app_from_environment", factory=True, workers=workers)


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each loads the model)")
    ] = 1,
    threads: Annotated[
        int,
        typer.Option(
            min=0,
            max=256,
            help="Model threads per process (0: the machine's cores divided by --concurrency)",
        ),
    ] = 0,
    data_dir: DataDir = None,
    log_level: Annotated[str, typer.Option(help="Celery log level")] = "info",
) -> None:
    """Run a Celery ingestion worker (needs STAGEWISE_BROKER_URL and PostgreSQL)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from stagewise.errors import InvalidRequest
    from stagewise.services.context import check_topology
    from stagewise.worker.process import worker_app

    settings = _settings(data_dir)
    if not settings.broker_url:
        raise typer.BadParameter(
            "set STAGEWISE_BROKER_URL (e.g. amqp://guest:guest@127.0.0.1:5672//)",
            param_hint="STAGEWISE_BROKER_URL",
        )
    try:
        check_topology(settings)
    except InvalidRequest as exc:
        raise typer.BadParameter(exc.message, param_hint="STAGEWISE_DATABASE_URL") from exc
    threads = threads or max(1, (os.cpu_count() or 1) // concurrency)
    worker_app(settings, threads).worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--loglevel={log_level}",
            f"--queues={settings.broker_queue}",
            # A node name per worker process: several workers may run on one host.
            f"--hostname=stagewise-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


@contextmanager
def _key_store(data_dir: Path | None) -> Iterator[SqlMetadataStore]:
    """The server's own database, opened directly: what a command writes is what the next
    request reads, whichever process serves it (keys are never cached)."""
    from stagewise.storage.sql.store import SqlMetadataStore

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqlMetadataStore(settings.resolved_database_url())
    try:
        yield store
    finally:
        store.close()


def _namespace_id(store: SqlMetadataStore, namespace: str | None) -> str | None:
    if not namespace:
        return None
    ns = store.get_namespace(namespace)
    if ns is None:
        console.print(f"[red]namespace '{namespace}' not found[/red]")
        raise typer.Exit(1)
    return ns.namespace_id


@keys_app.command("create")
def create_key(
    namespace: Annotated[
        str | None, typer.Option(help="Bind the key to this namespace (name or id)")
    ] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="Only allow reads")] = False,
    name: Annotated[str, typer.Option(help="A label for the key")] = "",
    expires_at: Annotated[
        datetime | None,
        typer.Option(
            "--expires-at",
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
            help="Expire at this instant (ISO-8601; without an offset, UTC)",
        ),
    ] = None,
    ttl_seconds: Annotated[
        int | None, typer.Option("--ttl-seconds", help="Expire this many seconds from now")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from stagewise.errors import ValidationFailed
    from stagewise.services import keys

    try:
        expiry = keys.resolve_expiry(expires_at, ttl_seconds)
    except ValidationFailed as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    with _key_store(data_dir) as store:
        secret, record = keys.create_key(
            store,
            name=name,
            namespace_id=_namespace_id(store, namespace),
            read_only=read_only,
            expires_at=expiry,
        )
    console.print(f"key id: {record.key_id}", style="dim", highlight=False)
    typer.echo(secret)


@keys_app.command("list")
def list_keys(
    namespace: Annotated[
        str | None, typer.Option(help="Only the keys bound to this namespace (name or id)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """List the keys, revoked and expired ones included. Secrets are never shown (only their
    first characters, to tell them apart)."""
    from rich import box
    from rich.table import Table

    from stagewise.services import keys

    with _key_store(data_dir) as store:
        found = keys.list_keys(store, namespace_id=_namespace_id(store, namespace))
        names = {ns.namespace_id: ns.namespace_name for ns in store.list_namespaces()}
    # Only the free-text columns wrap: ids and prefixes get copied from here, and the short
    # fixed values are read at a glance.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in ("key id", "prefix", "name", "role", "namespace", "status", "expires (UTC)"):
        table.add_column(column, no_wrap=column not in ("name", "namespace"))
    for k in found:
        info = keys.describe(k)
        table.add_row(
            k.key_id,
            k.key_prefix,
            k.name,
            info["role"],
            names.get(k.namespace_id, k.namespace_id) if k.namespace_id else "(all)",
            info["status"],
            f"{k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at else "",
        )
    console.print(table)
    console.print(f"{len(found)} key(s)", style="dim")


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...), as `keys list` shows")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a key: refused from the next request on, by every server process."""
    from stagewise.errors import NotFound
    from stagewise.ids import iso
    from stagewise.services import keys

    with _key_store(data_dir) as store:
        try:
            record = keys.revoke_key(store, key_id)
        except NotFound as exc:
            console.print(f"[red]key '{key_id}' not found[/red]")
            raise typer.Exit(1) from exc
    # Revoking a revoked key changes nothing and shows the first revocation's time.
    console.print(f"revoked {record.key_id} at {iso(record.revoked_at)}", highlight=False)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Apply database migrations (the server also does this on start)."""
    from stagewise.storage.sql.store import SqlMetadataStore

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    SqlMetadataStore(settings.resolved_database_url()).close()
    console.print("database is at the latest migration")


@index_app.command("optimize")
def index_optimize(data_dir: DataDir = None) -> None:
    """Build HNSW and payload indexes for every collection's new points (offline)."""
    import time

    from stagewise.services.context import open_stores

    stores = open_stores(_settings(data_dir))
    maintenance = stores.maintenance
    if maintenance is None:
        stores.close()
        raise typer.BadParameter("the search index is a Qdrant server, which optimizes itself")
    try:
        for ns in stores.metadata.list_namespaces():
            for col in stores.metadata.list_collections(ns.namespace_id):
                stores.follower.catch_up(col)
                pending = maintenance.unindexed_points(col.collection_id)
                started = time.perf_counter()
                maintenance.optimize(col.collection_id)
                console.print(
                    f"{ns.namespace_name}/{col.collection_name}: {pending} new points indexed "
                    f"in {time.perf_counter() - started:.1f} s"
                )
    finally:
        stores.close()
