"""The file formats `stagewise load` reads (JSONL, CSV, Parquet) and how a line or row becomes
a document of the bulk upsert (docs/cli.md, "The load format").

A row is a flat or nested object. `document_id` (else `_id`, the BEIR name) names the
document; `metadata`, `vectors` and `payload` objects are taken as they are, and so are
columns named `metadata.x`, `vectors.x` or `payload.x`; `text` and the collection's input
fields go to the payload (the document root, where the server reads the text it embeds);
every other key goes to metadata (a key of the `metadata` object wins over a top-level one).

A document without an id gets one made from its content, so the same row always names the
same document: resending it replaces it, and identical rows are one document."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

FORMATS = ("jsonl", "csv", "parquet")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
_SUFFIXES |= {".parquet": "parquet", ".pq": "parquet"}
_NESTED = ("metadata", "vectors", "payload")
_ID_KEYS = ("document_id", "_id")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Row:
    """One line (JSONL, CSV: its line in the file) or row (Parquet: 1-based) of the file."""

    line: int
    record: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class FileScan:
    sha256: str  # of the file's bytes: its identity for the checkpoint
    size: int
    rows: int  # for the progress bar (CSV: lines less the header)


def detect_format(path: Path, override: str | None) -> str:
    if override:
        if override not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)}")
        return override
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    fmt = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise ValueError(f"cannot tell the format of {path.name}: name it with --format")
    return fmt


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return gzip.GzipFile(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def scan(path: Path, fmt: str) -> FileScan:
    """One pass over the file: its hash, and its rows counted for the progress bar."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(path).metadata.num_rows
    else:
        lines, last = 0, b"\n"
        with _open_binary(path) as f:
            while chunk := f.read(CHUNK):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        rows = lines + (last != b"\n") - (fmt == "csv")
    return FileScan(digest.hexdigest(), path.stat().st_size, max(0, rows))


def read_rows(path: Path, fmt: str, after: int = 0) -> Iterator[Row]:
    """The rows whose line (row) number is greater than `after`, parsed."""
    if fmt == "jsonl":
        yield from _jsonl(path, after)
    elif fmt == "csv":
        yield from _csv(path, after)
    else:
        yield from _parquet(path, after)


def _jsonl(path: Path, after: int) -> Iterator[Row]:
    with _open_binary(path) as f:
        for number, raw in enumerate(f, start=1):
            if number <= after or not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield Row(number, None, f"not valid JSON: {exc}")
                continue
            if isinstance(value, dict):
                yield Row(number, value)
            else:
                yield Row(number, None, f"a line must hold a JSON object, not {_kind(value)}")


def _csv(path: Path, after: int) -> Iterator[Row]:
    with _open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.DictReader(text)
        for cells in reader:
            number = reader.line_num  # the line the row ends on (the header is line 1)
            if number <= after:
                continue
            if None in cells:
                yield Row(number, None, "more cells than the header has columns")
                continue
            yield Row(number, {k: _cell(k, v) for k, v in cells.items() if v not in ("", None)})


def _cell(column: str, value: str) -> Any:
    """A cell holding a JSON number, true/false, array or object is that value; anything
    else (ids and text included) is the string."""
    if column in _ID_KEYS or column == "text":
        return value
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    return value if parsed is None or isinstance(parsed, str) else parsed


def _parquet(path: Path, after: int) -> Iterator[Row]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    first = 0  # the 0-based index of the group's first row
    for group in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(group).num_rows
        if first + n <= after:  # whole row groups already done are never read
            first += n
            continue
        for batch in pf.iter_batches(batch_size=1000, row_groups=[group]):
            for record in batch.to_pylist():
                first += 1
                if first > after:
                    yield Row(first, {k: v for k, v in record.items() if v is not None})


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), "a number"
    )


def to_document(record: dict[str, Any], text_fields: Collection[str]) -> dict[str, Any]:
    """The upsert's document for one row (see the module's docstring); ValueError says why a
    row cannot be one."""
    row = dict(record)
    nested: dict[str, dict[str, Any]] = {}
    for key in _NESTED:
        value = row.pop(key, None)
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"'{key}' must be an object, not {_kind(value)}")
        nested[key] = dict(value or {})
    for key in [k for k in row if "." in k]:
        head, _, rest = key.partition(".")
        if head in _NESTED and rest:
            nested[head].setdefault(rest, row.pop(key))
    document_id = row.pop("document_id", None)
    if document_id is None and "_id" in row:
        document_id = row.pop("_id")
    for key in [k for k in row if k == "text" or k in text_fields]:
        nested["payload"].setdefault(key, row.pop(key))
    metadata = {**row, **nested["metadata"]}
    doc: dict[str, Any] = {
        "metadata": metadata,
        "payload": nested["payload"],
        "vectors": nested["vectors"],
    }
    if document_id is None:
        document_id = content_id(doc)
    elif isinstance(document_id, int) and not isinstance(document_id, bool):
        document_id = str(document_id)
    elif not isinstance(document_id, str):
        raise ValueError(f"document_id must be a string, not {_kind(document_id)}")
    return {"document_id": document_id, **doc}


def content_id(doc: dict[str, Any]) -> str:
    """128 bits of the SHA-256 of the document's canonical JSON (sorted keys)."""
    canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return "h-" + hashlib.sha256(canonical).hexdigest()[:32]
