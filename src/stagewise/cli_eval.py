"""`stagewise eval DATASET_DIR --retriever R`: nDCG@10 and Recall@100 of a retriever on a
BEIR-layout collection (corpus.jsonl[.gz], queries.jsonl, qrels/test.tsv or qrels.tsv).

Each judged query runs through the retriever's execute (its first 100 results); a hit maps
back to a corpus id through its document_id, which is the corpus `_id` when the corpus was
loaded by `stagewise load` (or `--load` here, which does that first, resumably), or through
`--id-field`. The metrics are eval_metrics.py's."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich import box
from rich.table import Table

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
from stagewise.cli_load import cache_state, load_file
from stagewise.cli_retrievers import input_fields
from stagewise.eval_metrics import Evaluation, evaluate, judged_queries

K_NDCG, K_RECALL = 10, 100
TEXT_TYPES = frozenset({"text", "string"})


def first_existing(root: Path, *names: str) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    raise CliError(f"{root} has none of {', '.join(names)}")


def read_queries(path: Path) -> dict[str, str]:
    queries = {}
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
                queries[str(row["_id"])] = str(row["text"])
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise CliError(f"{path}:{number}: not a query {{_id, text}}: {exc}") from exc
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, float]]:
    """query-id TAB corpus-id TAB score; a first line whose score is not a number is the
    header."""
    qrels: dict[str, dict[str, float]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        cells = line.split("\t") if "\t" in line else line.split()
        if not cells:
            continue
        try:
            if len(cells) < 3:
                raise ValueError("fewer than 3 columns")
            score = float(cells[-1])
        except ValueError as exc:
            if number == 1:
                continue
            raise CliError(f"{path}:{number}: not query-id, corpus-id, score: {exc}") from exc
        # The TREC layout (query, 0, doc, score) names the document in its third column.
        qrels.setdefault(cells[0], {})[cells[-2]] = score
    return qrels


def pick_input(retriever: dict[str, Any], override: str | None) -> str:
    """--input-name, else the first required text input, else the first text input."""
    if override:
        return override
    fields = input_fields(retriever)
    texts = [k for k, spec in fields.items() if spec.get("type") in TEXT_TYPES]
    required = [k for k in texts if fields[k].get("required")]
    if required or texts:
        return (required or texts)[0]
    raise CliError(
        f"retriever '{retriever['retriever_name']}' has no text input in its input_schema: "
        "name one with --input-name"
    )


def hit_id(doc: dict[str, Any], id_field: str) -> str | None:
    value: Any = doc
    for part in id_field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return None if value is None else str(value)


def run_queries(
    api: Api, retriever: str, input_name: str, queries: dict[str, str], id_field: str
) -> tuple[dict[str, list[str]], list[float]]:
    """Each query's ranked corpus ids, and each call's wall time in ms."""
    runs: dict[str, list[str]] = {}
    times: list[float] = []
    with progress_bar() as progress:
        bar = progress.add_task("querying", total=len(queries))
        for qid, text in queries.items():
            body = {"inputs": {input_name: text}, "limit": K_RECALL}
            started = time.perf_counter()
            out = api.call("POST", f"/v1/retrievers/{retriever}/execute", json=body, retries=2)
            times.append((time.perf_counter() - started) * 1000)
            if out.get("status") == "failed":
                raise CliError(f"query {qid}: the execution failed: {out.get('error')}")
            ids = (hit_id(d, id_field) for d in out.get("documents") or [])
            runs[qid] = [i for i in ids if i is not None]
            progress.advance(bar)
    return runs, times


def report(result: Evaluation, times: list[float], title: str) -> None:
    console.print(title, style="bold", highlight=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row(f"nDCG@{K_NDCG}", f"{result.ndcg:.4f}")
    table.add_row(f"Recall@{K_RECALL}", f"{result.recall:.4f}")
    table.add_row("queries", str(len(result.queries)))
    if times:
        ordered = sorted(times)
        table.add_row("query ms (p50)", f"{ordered[len(ordered) // 2]:.1f}")
        table.add_row("query ms (max)", f"{ordered[-1]:.1f}")
    console.print(table)


def as_json(result: Evaluation, retriever: str, dataset: Path) -> str:
    return orjson.dumps(
        {
            "dataset": str(dataset),
            "retriever": retriever,
            "queries": len(result.queries),
            f"ndcg@{K_NDCG}": result.ndcg,
            f"recall@{K_RECALL}": result.recall,
            "per_query": {
                s.query_id: {"ndcg": s.ndcg, "recall": s.recall, "returned": s.returned}
                for s in result.queries
            },
        },
        option=orjson.OPT_INDENT_2,
    ).decode()


@contextmanager
def human_output_to_stderr(enabled: bool) -> Iterator[None]:
    """With --json, stdout holds the JSON alone: tables, progress and notes go to stderr."""
    if not enabled:
        yield
        return
    console.file = sys.stderr
    try:
        yield
    finally:
        console.file = None  # type: ignore[assignment]  # back to whatever stdout is then


def read_dataset(dataset: Path) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """The judged queries that queries.jsonl has, and their qrels."""
    queries = read_queries(first_existing(dataset, "queries.jsonl"))
    qrels = read_qrels(first_existing(dataset, "qrels/test.tsv", "qrels.tsv"))
    judged = judged_queries(qrels)
    missing = [q for q in judged if q not in queries]
    if missing:
        console.print(
            f"[yellow]{len(missing)} judged query id(s) are not in queries.jsonl[/yellow]"
        )
    kept = [q for q in judged if q in queries]
    return {q: queries[q] for q in kept}, {q: qrels[q] for q in kept}


def eval_command(
    dataset: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="A BEIR-layout folder")
    ],
    retriever: Annotated[str, typer.Option(help="The retriever (name or id)")],
    namespace: Namespace = None,
    collection: Annotated[
        str | None,
        typer.Option(help="Where --load puts the corpus (default: the retriever's collection)"),
    ] = None,
    load: Annotated[
        bool, typer.Option("--load", help="Load the corpus first (idempotent, resumable)")
    ] = False,
    input_name: Annotated[
        str | None, typer.Option(help="The input the query text goes to (default: see docs)")
    ] = None,
    id_field: Annotated[
        str, typer.Option(help="The hit field holding the corpus id (dotted path)")
    ] = "document_id",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON (the rest goes to stderr)")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = "",
) -> None:
    """nDCG@10 and Recall@100 of a retriever on a BEIR-layout dataset."""
    with human_output_to_stderr(json_out):
        queries, qrels = read_dataset(dataset)
        with session(url, api_key, namespace) as api:
            r = api.call("GET", f"/v1/retrievers/{retriever}")
            name = pick_input(r, input_name)
            loaded_ok = True
            if load:
                if not namespace:
                    raise typer.BadParameter("--load needs --namespace", param_hint="--namespace")
                target = collection or next(iter(r.get("collection_identifiers") or []), None)
                if target is None:
                    raise CliError("the retriever reads no collection: name one with --collection")
                corpus = first_existing(dataset, "corpus.jsonl", "corpus.jsonl.gz")
                # The checkpoint goes to the cache folder: data sets are often shared, read-only.
                loaded_ok = load_file(
                    api, corpus, namespace=namespace, collection=target, state=cache_state(corpus)
                )
            runs, times = run_queries(api, r["retriever_id"], name, queries, id_field)
        result = evaluate(runs, qrels, K_NDCG, K_RECALL)
        if json_out:
            typer.echo(as_json(result, r["retriever_name"], dataset))
        else:
            report(result, times, f"{r['retriever_name']} on {dataset.name} (input '{name}')")
        if not loaded_ok:
            console.print("[red]some corpus lines did not load: the figures miss them[/red]")
            raise typer.Exit(1)
