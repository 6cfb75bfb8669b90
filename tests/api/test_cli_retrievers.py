"""`stagewise retrievers list|show|run`, `executions show` and `eval` against a live server:
tables hold what the API answers, the waterfall has one row per stage, and eval's figures
match the ones worked out by hand from a ranking the retriever fixes."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagewise.cli_client import console
from tests.support.cli import new_namespace, run_cli, text_collection
from tests.support.corpus import DENSE_URI
from tests.support.server import ServerHandle, free_port

pytestmark = [pytest.mark.api]

NOTES = [
    ("owl", "Owls hunt at night and see well in the dark.", "bird"),
    ("heron", "Herons stand still in shallow water waiting for fish.", "bird"),
    ("trout", "Trout live in cold clear rivers and eat insects.", "fish"),
    ("oak", "Oak trees grow slowly and live for centuries.", "tree"),
    ("gull", "Gulls follow fishing boats along the coast.", "bird"),
]
STAGES = ["search", "birds", "ordered"]


@pytest.fixture(autouse=True)
def wide_console() -> Iterator[None]:
    """Rich draws 80 columns when the output is not a terminal; these tables want more."""
    before = console.width
    console.width = 160
    yield
    console.width = before


@pytest.fixture(scope="module")
def world(server: ServerHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A namespace with a text collection loaded by `stagewise load` and a 3-stage retriever."""
    ns, http = new_namespace(server, "cli")
    text_collection(http, "notes")
    data = tmp_path_factory.mktemp("notes") / "notes.jsonl"
    data.write_text(
        "".join(json.dumps({"_id": i, "text": t, "kind": k}) + "\n" for i, t, k in NOTES)
    )
    code, output = invoke(server, ns, "load", str(data), "--collection", "notes")
    assert code == 0, output
    search = {
        "feature_uri": DENSE_URI,
        "query": {"input_mode": "text", "value": "{{INPUT.query}}"},
        "top_k": 10,
    }
    retriever = {
        "retriever_name": "notes-search",
        "collection_identifiers": ["notes"],
        "input_schema": {
            "query": {"type": "text", "required": True, "description": "what to look for"},
            "kind": {"type": "string", "default": "bird"},
        },
        "stages": [
            {
                "stage_name": "search",
                "config": {"stage_id": "feature_search", "parameters": {"searches": [search]}},
            },
            {
                "stage_name": "birds",
                "config": {
                    "stage_id": "attribute_filter",
                    "parameters": {"field": "metadata.kind", "value": "{{INPUT.kind}}"},
                },
            },
            {"stage_name": "ordered", "config": {"stage_id": "sort_relevance", "parameters": {}}},
        ],
    }
    http.post("/v1/retrievers", json=retriever).raise_for_status()
    yield ns
    http.close()


def invoke(server: ServerHandle, ns: str | None, *args: str) -> tuple[int, str]:
    result = run_cli(server, *args, namespace=ns)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_list_and_show(server: ServerHandle, world: str) -> None:
    code, output = invoke(server, world, "retrievers", "list")
    assert code == 0, output
    assert "notes-search" in output and "search → birds → ordered" in output
    assert "query, kind" in output and "1 retriever(s)" in output
    code, output = invoke(server, world, "retrievers", "show", "notes-search")
    assert code == 0, output
    assert re.search(r"query +text +yes +what to look for", output), output
    assert re.search(r"kind +string +no +\"bird\"", output), output
    for i, (name, stage_id) in enumerate(
        zip(STAGES, ["feature_search", "attribute_filter", "sort_relevance"], strict=True), 1
    ):
        assert re.search(rf"{i} +{name} +{stage_id}", output), output


def test_run_then_show_the_execution(server: ServerHandle, world: str) -> None:
    code, output = invoke(
        server, world, "retrievers", "run", "notes-search", "--input", "query=birds near water"
    )
    assert code == 0, output
    # The same query through the API (a cache hit of the same run): the table's rows are its
    # documents, in its order, with its scores.
    with server.client(server.admin_key, namespace=world) as http:
        body = {"inputs": {"query": "birds near water"}, "limit": 10}
        expected = http.post("/v1/retrievers/notes-search/execute", json=body).json()
    docs = expected["documents"]
    assert [d["document_id"] for d in docs] and {d["document_id"] for d in docs} <= {
        "owl",
        "heron",
        "gull",
    }
    rows = re.findall(r"^ +(\d+) +(\S+) +(\d\.\d{4}) +(.+?) *$", output, re.M)
    assert [(int(r), doc) for r, doc, _, _ in rows] == [
        (i, d["document_id"]) for i, d in enumerate(docs, 1)
    ]
    for (_, _, score, text), d in zip(rows, docs, strict=True):
        assert float(score) == pytest.approx(d["score"], abs=1e-4)
        assert text == d["text"]
    stats = expected["stage_statistics"]["stages"]
    for name in STAGES:
        s = stats[name]
        assert re.search(rf"{name} +{s['input_count']} → {s['output_count']} +[\d.]+", output)
    assert re.search(r"search +5 → \d+ +[\d.]+ +(hit|miss) \(\d+/\d+\)", output), output
    execution_id = re.search(r"execution (exec_\w+) +completed", output)
    assert execution_id, output

    for extra in (["--retriever", "notes-search"], []):  # without it, each retriever is asked
        code, shown = invoke(server, world, "executions", "show", execution_id[1], *extra)
        assert code == 0, shown
        assert f"execution {execution_id[1]}" in shown and "completed" in shown
        assert "budget:" in shown and "credits used" in shown
        bars = [line for line in shown.splitlines() if "█" in line]
        assert [line.split()[0] for line in bars] == STAGES  # one row per stage, in order
        assert all(re.search(r"[\d.]+ ms$", line.rstrip()) for line in bars)
        # Each bar starts where the stages before it end (offsets grow, never go back).
        starts = [line.index("█") for line in bars]
        assert starts == sorted(starts) and starts[0] == max(map(len, STAGES)) + 2


def test_errors_are_readable(server: ServerHandle, world: str) -> None:
    code, output = invoke(server, world, "retrievers", "run", "nope", "--input", "query=x")
    assert code == 1
    assert "POST /v1/retrievers/nope/execute -> HTTP 404 retriever_not_found" in output
    code, output = invoke(server, world, "executions", "show", "exec_missing")
    assert code == 1 and "execution 'exec_missing' not found" in output
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(server, "retrievers", "list", STAGEWISE_URL=url)
    assert result.exit_code == 1 and f"cannot reach {url}" in result.output
    assert "Traceback" not in result.output


def test_eval_on_a_tiny_beir_dataset(server: ServerHandle, tmp_path: Path) -> None:
    """The retriever ranks by rule, not by a model: the documents whose topic is the query,
    by their `pos`. So each query's ranking is known, and the figures follow by hand."""
    ns, http = new_namespace(server, "eval")
    text_collection(http, "corpus")
    stages = [
        {
            "stage_name": "topic",
            "config": {
                "stage_id": "attribute_filter",
                "parameters": {"field": "metadata.topic", "value": "{{INPUT.question}}"},
            },
        },
        {
            "stage_name": "by_pos",
            "config": {
                "stage_id": "sort_attribute",
                "parameters": {"field": "metadata.pos", "direction": "asc"},
            },
        },
    ]
    retriever = {
        "retriever_name": "by-topic",
        "collection_identifiers": ["corpus"],
        "input_schema": {"limit": {"type": "integer"}, "question": {"type": "text"}},
        "stages": stages,
    }
    http.post("/v1/retrievers", json=retriever).raise_for_status()

    data = tmp_path / "tiny"
    (data / "qrels").mkdir(parents=True)
    corpus = [  # (id, topic, pos): birds rank d1, d2, d3; fish rank d4, d5; trees d6
        ("d1", "birds", 1),
        ("d2", "birds", 2),
        ("d3", "birds", 3),
        ("d4", "fish", 1),
        ("d5", "fish", 2),
        ("d6", "trees", 1),
    ]
    (data / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": i, "title": "", "text": f"A note on {t} {p}.", "topic": t, "pos": p})
            + "\n"
            for i, t, p in corpus
        )
    )
    queries = [("q1", "birds"), ("q2", "fish"), ("q3", "trees"), ("q4", "rocks")]
    (data / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries)
    )
    qrels = [("q1", "d2", 2), ("q1", "d3", 1), ("q1", "d4", 1), ("q2", "d4", 1), ("q2", "d5", 0)]
    qrels += [("q4", "d6", 1)]  # q3 has no judgment: it does not count
    (data / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    )

    # q1 ranks d1, d2 (gain 2), d3 (gain 1); d4 (gain 1) is never found.
    #   DCG = 2/log2(3) + 1/log2(4); IDCG = 2/log2(2) + 1/log2(3) + 1/log2(4)
    #   recall = 2/3
    # q2 ranks d4 (gain 1), d5 (gain 0): nDCG 1, recall 1.
    # q4 ("rocks") finds nothing: 0 and 0.
    q1 = (2 / math.log2(3) + 1 / 2) / (2 + 1 / math.log2(3) + 1 / 2)  # 0.562707
    expected_ndcg = (q1 + 1 + 0) / 3
    expected_recall = (2 / 3 + 1 + 0) / 3

    args = ["eval", str(data), "--retriever", "by-topic", "--namespace", ns, "--load", "--json"]
    cache = str(tmp_path / "cache")  # where --load keeps its checkpoint
    result = run_cli(server, *args, XDG_CACHE_HOME=cache)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queries"] == 3
    assert report["ndcg@10"] == pytest.approx(expected_ndcg)
    assert report["recall@100"] == pytest.approx(expected_recall)
    assert report["per_query"]["q1"] == {
        "ndcg": pytest.approx(q1),
        "recall": pytest.approx(2 / 3),
        "returned": 3,
    }
    assert http.get("/v1/collections/corpus/documents/count").json()["count"] == 6

    # Again, as a table: the corpus is not sent twice (the checkpoint says it was loaded).
    result = run_cli(server, *args[:-1], XDG_CACHE_HOME=cache)
    assert result.exit_code == 0, result.output
    assert "nothing to send" in result.output
    assert re.search(rf"nDCG@10 +{expected_ndcg:.4f}", result.output), result.output
    assert re.search(rf"Recall@100 +{expected_recall:.4f}", result.output), result.output
    assert "(input 'question')" in result.output  # the first text input, not `limit`
    http.close()
