"""How a document is laid out as a Qdrant payload."""

from __future__ import annotations

from typing import Any

from stagewise.domain.records import CollectionRecord, DocumentRecord

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
