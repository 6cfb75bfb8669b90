"""`stagewise retrievers list|show|run` and `stagewise executions show`, over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich import box
from rich.markup import escape
from rich.table import Table
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
    session,
)

retrievers_app = typer.Typer(help="List, inspect and run retrievers.", no_args_is_help=True)
executions_app = typer.Typer(help="Inspect retriever executions.", no_args_is_help=True)
LIST_LIMIT = 1000  # the list routes' largest page
SNIPPET = 80
_IDENTITY = frozenset({"document_id", "collection_id", "score", "scores", "metadata"})

Retriever = Annotated[str, typer.Argument(help="The retriever (name or id)")]


def parse_inputs(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; a value that parses as JSON is that value, else the string."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"'{pair}' is not key=value", param_hint="--input")
        try:
            inputs[key] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            inputs[key] = raw
    return inputs


def input_fields(retriever: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The input_schema's fields, whether stored flat or under `properties`."""
    schema = retriever.get("input_schema") or {}
    props = schema.get("properties", schema)
    if not isinstance(props, dict):
        return {}
    return {k: v if isinstance(v, dict) else {} for k, v in props.items()}


def _json(value: Any, limit: int = 200) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def snippet(doc: dict[str, Any]) -> str:
    """The document's text, else its first string field (root, then metadata), shortened."""
    meta = doc.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    candidates = [doc.get("text"), *(v for k, v in doc.items() if k not in _IDENTITY)]
    candidates += [meta.get("text"), *meta.values()]
    text = next((v for v in candidates if isinstance(v, str) and v.strip()), "")
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


def results_table(docs: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("rank", justify="right")
    table.add_column("document_id", no_wrap=True)
    table.add_column("score", justify="right")
    table.add_column("text")
    for rank, doc in enumerate(docs, start=1):
        score = doc.get("score")
        shown = f"{score:.4f}" if isinstance(score, int | float) else "-"
        table.add_row(str(rank), escape(str(doc.get("document_id"))), shown, escape(snippet(doc)))
    return table


def _cache(stats: dict[str, Any]) -> str:
    cache = (stats.get("metadata") or {}).get("cache")
    if "stage_cache_hit" not in stats and not isinstance(cache, dict):
        return "-"  # a stage without a cache of its own
    counts = f" ({cache.get('hits', 0)}/{cache.get('misses', 0)})" if cache else ""
    return ("hit" if stats.get("stage_cache_hit") else "miss") + counts


def stages_table(stages: dict[str, dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("stage", no_wrap=True)
    table.add_column("input → output", justify="right")
    table.add_column("ms", justify="right")
    table.add_column("cache (hits/misses)")
    for name, s in stages.items():
        flow = f"{s.get('input_count', '-')} → {s.get('output_count', '-')}"
        ms = s.get("duration_ms")
        table.add_row(escape(name), flow, f"{ms:.1f}" if ms is not None else "-", _cache(s))
    return table


@retrievers_app.command("list")
def list_retrievers(
    namespace: Namespace = None, url: Url = DEFAULT_URL, api_key: ApiKey = ""
) -> None:
    """A table of the namespace's retrievers."""
    with session(url, api_key, namespace) as api:
        page = api.call("GET", "/v1/retrievers", params={"limit": LIST_LIMIT})
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("name", "retriever id", "stages", "inputs", "collections", "version"):
        table.add_column(column, no_wrap=column in ("name", "retriever id"))
    for r in page["results"]:
        table.add_row(
            escape(str(r["retriever_name"])),
            r["retriever_id"],
            escape(" → ".join(s["stage_name"] for s in r["stages"])),
            escape(", ".join(input_fields(r))),
            escape(", ".join(r.get("collection_identifiers") or [])),
            str(r.get("version", "")),
        )
    console.print(table)
    console.print(f"{page.get('total', len(page['results']))} retriever(s)", style="dim")


@retrievers_app.command("show")
def show_retriever(
    retriever: Retriever, namespace: Namespace = None, url: Url = DEFAULT_URL, api_key: ApiKey = ""
) -> None:
    """The retriever's stage pipeline and input schema."""
    with session(url, api_key, namespace) as api:
        r = api.call("GET", f"/v1/retrievers/{retriever}")
    console.print(
        f"[bold]{escape(r['retriever_name'])}[/bold] {r['retriever_id']}  version {r['version']}"
    )
    if r.get("description"):
        console.print(escape(r["description"]))
    console.print(f"collections: {escape(', '.join(r.get('collection_identifiers') or []))}")
    if r.get("budget_limits"):
        console.print(f"budget limits: {escape(_json(r['budget_limits']))}")
    inputs = Table(title="input_schema", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for column in ("input", "type", "required", "default", "description"):
        inputs.add_column(column)
    for name, spec in input_fields(r).items():
        default = spec.get("default")
        inputs.add_row(
            escape(name),
            escape(str(spec.get("type", "-"))),
            "yes" if spec.get("required") else "no",
            escape(_json(default)) if default is not None else "",
            escape(str(spec.get("description") or "")),
        )
    console.print(inputs)
    stages = Table(title="stages", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for column in ("#", "stage", "stage_id", "type", "parameters"):
        stages.add_column(column, no_wrap=column != "parameters")
    for i, s in enumerate(r["stages"], start=1):
        stages.add_row(
            str(i),
            escape(s["stage_name"]),
            escape(str(s["config"].get("stage_id", "-"))),
            escape(str(s.get("stage_type") or "-")),
            escape(_json(s.get("parameters") or {}, 400)),
        )
    console.print(stages)


@retrievers_app.command("run")
def run_retriever(
    retriever: Retriever,
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", help="key=value (repeatable; JSON values parse as JSON)"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Results to show")] = 10,
    namespace: Namespace = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
) -> None:
    """Execute a retriever: its results with scores, then its stage statistics."""
    body = {"inputs": parse_inputs(inputs or []), "limit": limit}
    with session(url, api_key, namespace) as api:
        out = api.call("POST", f"/v1/retrievers/{retriever}/execute", json=body)
    docs = out.get("documents") or []
    console.print(results_table(docs))
    total = (out.get("pagination") or {}).get("total", len(docs))
    console.print(f"{len(docs)} of {total} result(s)", style="dim")
    stats = out.get("stage_statistics") or {}
    console.print(stages_table(stats.get("stages") or {}))
    for warning in out.get("warnings") or []:
        console.print(Text(f"warning: {warning}", style="yellow"))
    cached = "  (served from the result cache)" if out.get("cache_hit") else ""
    console.print(
        f"execution {out['execution_id']}  {out['status']}  "
        f"{stats.get('total_time_ms') or 0:.1f} ms{cached}",
        highlight=False,
    )
    if out.get("status") == "failed":
        raise typer.Exit(1)


def find_execution(api: Api, execution_id: str, retriever: str | None) -> dict[str, Any]:
    """The execution's detail. Without a retriever: an adhoc run's route first, then each of
    the namespace's retrievers (executions are addressed under their retriever)."""
    if retriever:
        return dict(api.call("GET", f"/v1/retrievers/{retriever}/executions/{execution_id}"))
    paths = [f"/v1/retrievers/executions/{execution_id}"]
    page = api.call("GET", "/v1/retrievers", params={"limit": LIST_LIMIT})
    paths += [
        f"/v1/retrievers/{r['retriever_id']}/executions/{execution_id}" for r in page["results"]
    ]
    for path in paths:
        try:
            return dict(api.call("GET", path))
        except ApiError as exc:
            if exc.status != 404:
                raise
    raise CliError(f"execution '{execution_id}' not found in this namespace's retrievers")


def waterfall(stages: dict[str, dict[str, Any]], width: int) -> list[Text]:
    """One row per stage: a bar offset by the stages before it and as long as its own
    duration, on one scale for the whole run; at least one cell, so a fast stage shows."""
    durations = [(name, float(s.get("duration_ms") or 0.0)) for name, s in stages.items()]
    total = sum(d for _, d in durations)
    name_w = max((len(n) for n, _ in durations), default=5)
    ms_w = max((len(f"{d:.1f}") for _, d in durations), default=3) + 3
    bar_w = max(10, width - name_w - ms_w - 4)
    rows, start = [], 0.0
    for i, (name, ms) in enumerate(durations):
        # Cells from the cumulative times, so bars tile without gaps or overlaps.
        left = round(start / total * bar_w) if total else 0
        right = round((start + ms) / total * bar_w) if total else 0
        length = max(1, right - left)
        left = min(left, bar_w - length)
        row = Text(f"{name:<{name_w}}  ")
        row.append(" " * left + "█" * length, style=("cyan", "magenta", "green", "yellow")[i % 4])
        row.append(" " * (bar_w - left - length) + f"  {ms:.1f} ms".rjust(ms_w))
        rows.append(row)
        start += ms
    return rows


@executions_app.command("show")
def show_execution(
    execution_id: Annotated[str, typer.Argument(help="The execution id (exec_...)")],
    retriever: Annotated[
        str | None,
        typer.Option(help="Its retriever (name or id); without it each retriever is asked"),
    ] = None,
    namespace: Namespace = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
) -> None:
    """An execution's status, budget, warnings and errors, and a waterfall of its stages."""
    with session(url, api_key, namespace) as api:
        x = find_execution(api, execution_id, retriever)
    stats = x.get("stage_statistics") or {}
    stages = stats.get("stages") or {}
    style = {"completed": "green", "failed": "red"}.get(x["status"], "yellow")
    console.print(
        f"execution {x['execution_id']}  retriever {x.get('retriever_id') or '(adhoc)'}  "
        f"[{style}]{x['status']}[/{style}]  stages {x.get('stages_completed')}/"
        f"{x.get('total_stages')}",
        highlight=False,
    )
    console.print(f"created {x.get('created_at')}  completed {x.get('completed_at') or '-'}")
    budget = x.get("budget") or {}
    remaining = budget.get("credits_remaining")
    console.print(
        f"budget: {budget.get('credits_used', 0):.4f} credits used"
        + (f", {remaining:.4f} remaining" if remaining is not None else "")
        + f", {budget.get('time_used_ms') or 0:.1f} ms"
        + (f"  limits {escape(_json(budget['limits']))}" if budget.get("limits") else ""),
        highlight=False,
    )
    if x.get("cache_hit"):
        console.print(f"served from the result cache of {x.get('source_execution_id', 'a run')}")
    for warning in x.get("warnings") or []:
        console.print(Text(f"warning: {warning}", style="yellow"))
    for entry in x.get("degraded") or []:
        console.print(Text(f"degraded: {_json(entry, 400)}", style="yellow"))
    if x.get("error"):
        console.print(Text(f"error: {x['error']}", style="red"))
    for name, s in stages.items():
        if s.get("error"):
            console.print(Text(f"stage {name} error: {s['error']}", style="red"))
    console.print()
    console.print(f"waterfall ({stats.get('total_time_ms') or 0:.1f} ms)", style="bold")
    for row in waterfall(stages, console.width):
        console.print(row, no_wrap=True, overflow="crop")
    console.print(stages_table(stages))
    if x.get("status") == "failed":
        raise typer.Exit(1)
