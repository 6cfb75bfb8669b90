"""The `stagewise load` row format: how a row maps to a document, content ids, and reading
JSONL, CSV and Parquet from a line on (what a resumed run does)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stagewise.cli_load_format import content_id, detect_format, read_rows, scan, to_document

pytestmark = [pytest.mark.unit]


def test_a_row_maps_to_payload_metadata_and_vectors() -> None:
    row = {
        "document_id": "d1",
        "text": "hello",
        "content": "the collection's input field",
        "color": "red",
        "metadata": {"color": "blue", "size": 3},
        "metadata.shape": "round",
        "vectors.emb": [0.5, 1.0],
        "payload": {"url": "http://x"},
    }
    doc = to_document(row, text_fields={"content"})
    assert doc == {
        "document_id": "d1",
        "metadata": {"color": "blue", "size": 3, "shape": "round"},  # the object wins
        "payload": {"url": "http://x", "text": "hello", "content": "the collection's input field"},
        "vectors": {"emb": [0.5, 1.0]},
    }


def test_ids_come_from_the_row_else_from_its_content() -> None:
    assert to_document({"_id": "7", "text": "t"}, ())["document_id"] == "7"  # BEIR's _id
    assert to_document({"document_id": 12}, ())["document_id"] == "12"
    a = to_document({"text": "same", "n": 1}, ())
    b = to_document({"n": 1, "text": "same"}, ())  # key order does not matter
    c = to_document({"text": "same", "n": 2}, ())
    assert a["document_id"] == b["document_id"] != c["document_id"]
    assert a["document_id"] == content_id({k: v for k, v in a.items() if k != "document_id"})
    assert a["document_id"].startswith("h-") and len(a["document_id"]) == 34
    with pytest.raises(ValueError, match="document_id must be a string"):
        to_document({"document_id": [1]}, ())
    with pytest.raises(ValueError, match="'vectors' must be an object"):
        to_document({"vectors": [1, 2]}, ())


def test_formats_come_from_the_extension_unless_named() -> None:
    assert detect_format(Path("a.jsonl.gz"), None) == "jsonl"
    assert detect_format(Path("a.CSV"), None) == "csv"
    assert detect_format(Path("a.parquet"), None) == "parquet"
    assert detect_format(Path("a.txt"), "jsonl") == "jsonl"
    with pytest.raises(ValueError, match="--format"):
        detect_format(Path("a.txt"), None)


def test_jsonl_rows_keep_their_line_numbers_and_report_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n\n{broken\n[1]\n{"a": 5}')  # no newline at the end
    rows = list(read_rows(path, "jsonl"))
    assert [(r.line, r.record) for r in rows] == [
        (1, {"a": 1}),
        (3, None),
        (4, None),
        (5, {"a": 5}),
    ]
    assert rows[1].error is not None and rows[1].error.startswith("not valid JSON")
    assert rows[2].error == "a line must hold a JSON object, not an array"
    assert [r.line for r in read_rows(path, "jsonl", after=3)] == [4, 5]
    assert scan(path, "jsonl").rows == 5


def test_csv_cells_parse_as_json_values_except_ids_and_text(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "document_id,text,n,flag,vectors.emb,note,empty\n"
        '007,12,3,true,"[0.5, 1]",hello,\n'
        'x2,"two\nlines",1.5,false,"[1, 2]","""quoted""",\n'
    )
    rows = list(read_rows(path, "csv"))
    assert [r.line for r in rows] == [2, 4]  # the line each row ends on; the header is line 1
    assert rows[0].record == {
        "document_id": "007",
        "text": "12",
        "n": 3,
        "flag": True,
        "vectors.emb": [0.5, 1],
        "note": "hello",
    }
    assert rows[1].record is not None and rows[1].record["note"] == '"quoted"'
    assert [r.line for r in read_rows(path, "csv", after=2)] == [4]
    assert scan(path, "csv").rows == 3  # lines less the header: a total for the progress bar


def test_parquet_skips_whole_row_groups_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    table = pa.table({"document_id": [f"d{i}" for i in range(10)], "n": list(range(10))})
    pq.write_table(table, path, row_group_size=3)
    assert scan(path, "parquet").rows == 10
    rows = list(read_rows(path, "parquet", after=4))
    assert [r.line for r in rows] == [5, 6, 7, 8, 9, 10]
    assert rows[0].record == {"document_id": "d4", "n": 4}


def test_gzipped_jsonl_reads_like_plain(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "in.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps({"i": i}) for i in range(4)) + "\n")
    assert [r.record for r in read_rows(path, "jsonl", after=2)] == [{"i": 2}, {"i": 3}]
    assert scan(path, "jsonl").rows == 4
