"""Reading and writing dot paths in candidate documents (`metadata.year`, `score`, ...)."""

from __future__ import annotations

from typing import Any

from stagewise.pipeline.stage import Candidate

_MISSING = object()


def candidate_view(c: Candidate) -> dict[str, Any]:
    """What templates and field paths see: the public document, score and provenance."""
    return c.public()


def get_path(obj: Any, path: str) -> Any:
    """The value at a dot path of a plain document (None when any step is missing)."""
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Sets a dot path of a plain document, creating (or replacing non-object) steps."""
    parts = path.split(".")
    for part in parts[:-1]:
        nxt = obj.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            obj[part] = nxt
        obj = nxt
    obj[parts[-1]] = value


def get_field(c: Candidate, path: str) -> Any:
    if path == "score":
        return c.score
    if path == "document_id":
        return c.document_id
    if path == "collection_id":
        return c.collection_id
    root: dict[str, Any] = c.scores if path.startswith("scores.") else c.doc
    parts = path.split(".")[1:] if path.startswith("scores.") else path.split(".")
    cur: Any = root
    for part in parts:
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def set_field(c: Candidate, path: str, value: Any) -> None:
    if path == "score":
        c.score = float(value)
        return
    if path.startswith("scores."):
        set_path(c.scores, path.removeprefix("scores."), value)
    else:
        set_path(c.doc, path, value)


def sort_key(value: Any) -> tuple[int, Any]:
    """Orders mixed values: numbers, then strings, then anything else as JSON text."""
    if isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    return (2, repr(value))
