"""How a document is laid out as a Qdrant payload."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stagewise.domain.records import CollectionRecord, DocumentRecord
from stagewise.storage.protocols import IndexPoint, MetadataStore

SEQ_FIELD = "_seq"
TEXT_FIELD = "_text"  # the text the collection's feature was computed from (BM25 source)
RESERVED_FIELDS = frozenset({"document_id", "collection_id", "metadata", SEQ_FIELD, TEXT_FIELD})


def get_path(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def source_text(collection: CollectionRecord, doc: DocumentRecord) -> str | None:
    """The text a collection embeds: its input field at the root, else under metadata."""
    field = collection.text_field
    if field is None:
        return None
    view = {**doc.fields, "metadata": doc.metadata}
    value = get_path(view, field)
    if value is None:
        value = get_path(doc.metadata, field)
    return value if isinstance(value, str) else None


def document_payload(collection: CollectionRecord, doc: DocumentRecord) -> dict[str, Any]:
    payload: dict[str, Any] = {
        **doc.fields,
        "metadata": doc.metadata,
        "document_id": doc.document_id,
        "collection_id": doc.collection_id,
    }
    text = source_text(collection, doc)
    if text is not None:
        payload[TEXT_FIELD] = text
    return payload


def index_changes(
    metadata: MetadataStore, collection: CollectionRecord, since: int, page: int = 1000
) -> Iterator[tuple[list[IndexPoint], list[str], int]]:
    """The source of truth's writes after `seq` `since`, in `seq` order, a page at a time:
    (live documents as index points, deleted document ids, the page's last seq)."""
    while True:
        changes = metadata.changes_since(collection.collection_id, since, limit=page)
        if not changes:
            return
        live = [
            IndexPoint(d.document_id, d.seq, d.vectors, document_payload(collection, d))
            for d in changes
            if not d.deleted
        ]
        since = changes[-1].seq
        yield live, [d.document_id for d in changes if d.deleted], since
