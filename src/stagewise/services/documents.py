"""Documents: embed, store (source of truth first), index, read, list, patch, delete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stagewise.domain.records import CollectionRecord, DocumentRecord
from stagewise.embeddings.base import Embedder
from stagewise.errors import NotFound, ValidationFailed
from stagewise.ids import check_client_id, new_id, utc_now
from stagewise.services.context import Stores
from stagewise.storage.payload import RESERVED_FIELDS, source_text

# Keys of a create/patch body that are not user fields.
_CONTROL_KEYS = frozenset({"collection_id", "metadata", "vectors", "features", "document_id"})


def _check_text_sizes(stores: Stores, values: dict[str, Any], where: str) -> None:
    limit = stores.settings.max_text_bytes
    for key, value in values.items():
        if isinstance(value, str) and len(value.encode()) > limit:
            raise ValidationFailed(
                f"Field '{where}{key}' is {len(value.encode())} bytes; the limit is {limit} bytes",
                code="field_too_large",
                field=f"{where}{key}",
                limit_bytes=limit,
            )


def _checked_vector(name: str, values: Any, storage_name: str, dims: int) -> list[float]:
    """One vector checked with numpy (a Python loop per float costs ~0.4 ms per vector)."""
    arr = np.asarray(values) if isinstance(values, list) else None
    # Kinds: 'i'/'u' integers and 'f' floats; booleans, strings, nested lists are refused.
    if arr is None or arr.ndim != 1 or arr.dtype.kind not in "iuf":
        raise ValidationFailed(
            f"Vector '{name}' must be a list of numbers", code="invalid_vector", vector=name
        )
    if arr.shape[0] != dims:
        raise ValidationFailed(
            f"Vector '{name}' has {arr.shape[0]} dimensions; '{storage_name}' expects {dims}",
            code="vector_dimension_mismatch",
            vector=name,
            expected=dims,
            received=int(arr.shape[0]),
        )
    if not np.isfinite(arr).all():
        raise ValidationFailed(f"Vector '{name}' contains NaN or infinity", vector=name)
    if arr.dtype == np.float64:
        same: list[float] = values  # already a list of Python floats: no second copy
        return same
    result: list[float] = arr.astype(np.float64).tolist()
    return result


def validate_vectors(col: CollectionRecord, vectors: dict[str, Any]) -> dict[str, list[float]]:
    """Map user vector names (short name, URI or storage name) to storage names, checking dims."""
    valid = {spec.name: spec.dimensions for spec in col.vector_indexes}
    out: dict[str, list[float]] = {}
    for name, values in vectors.items():
        spec = col.vector_index(name)
        if spec is None:
            raise ValidationFailed(
                f"Unknown vector '{name}' for collection '{col.collection_name}'. "
                f"Valid vectors: {valid or 'none (the collection has no vector index)'}",
                code="unknown_vector",
                valid_vectors=valid,
            )
        out[spec.name] = _checked_vector(name, values, spec.name, spec.dimensions)
    return out


def _split_body(stores: Stores, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValidationFailed("metadata must be an object", field="metadata")
    fields = {k: v for k, v in body.items() if k not in _CONTROL_KEYS}
    clash = sorted(k for k in fields if k in RESERVED_FIELDS or k.startswith("_"))
    if clash:
        raise ValidationFailed(
            f"Field names {clash} are reserved", code="reserved_field", fields=clash
        )
    _check_text_sizes(stores, fields, "")
    _check_text_sizes(stores, metadata, "metadata.")
    return fields, metadata


def embed_missing(
    embedder: Embedder, col: CollectionRecord, docs: Sequence[DocumentRecord]
) -> None:
    """Fill extractor vectors the user did not bring, in batches across all documents."""
    for spec in col.vector_indexes:
        if spec.inference_name is None:
            continue
        todo = [
            (doc, text)
            for doc in docs
            if spec.name not in doc.vectors and (text := source_text(col, doc)) is not None
        ]
        if not todo:
            continue
        matrix = embedder.embed([text for _, text in todo])
        for (doc, _), row in zip(todo, matrix, strict=True):
            doc.vectors[spec.name] = row.tolist()


def write_documents(
    stores: Stores, col: CollectionRecord, docs: Sequence[DocumentRecord]
) -> list[DocumentRecord]:
    """The one write path: embed, commit to the source of truth (the acknowledgement), then
    apply it to this process's index before answering (services/follower.py)."""
    embed_missing(stores.embedder, col, docs)
    with stores.follower.lock(col.collection_id):
        stored = stores.metadata.upsert_documents(docs)
        stores.follower.apply_own_write(col, stored)
    return stored


def create_document(
    stores: Stores, *, col: CollectionRecord, body: dict[str, Any]
) -> DocumentRecord:
    if body.get("collection_id") not in (None, col.collection_id):
        raise ValidationFailed(
            f"collection_id '{body['collection_id']}' does not match the path's collection "
            f"'{col.collection_id}'",
            code="collection_mismatch",
        )
    fields, metadata = _split_body(stores, body)
    vectors = validate_vectors(col, body.get("vectors") or {})
    doc = DocumentRecord(
        document_id=new_id("doc_"),
        collection_id=col.collection_id,
        namespace_id=col.namespace_id,
        metadata=metadata,
        fields=fields,
        vectors=vectors,
        source_type=str(fields.pop("source_type", None) or "direct_upsert"),
    )
    return write_documents(stores, col, [doc])[0]


def get_document(stores: Stores, *, col: CollectionRecord, document_id: str) -> DocumentRecord:
    doc = stores.metadata.get_document(col.collection_id, document_id)
    if doc is None:
        raise NotFound("document", document_id, collection_id=col.collection_id)
    return doc


def patch_document(
    stores: Stores, *, col: CollectionRecord, document_id: str, body: dict[str, Any]
) -> DocumentRecord:
    doc = get_document(stores, col=col, document_id=document_id)
    patch_fields, patch_meta = _split_body(stores, body)
    fields = dict(doc.fields)
    for key, value in patch_fields.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    metadata = dict(doc.metadata)
    for key, value in patch_meta.items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    vectors = dict(doc.vectors)
    vectors.update(validate_vectors(col, body.get("vectors") or {}))
    updated = doc.model_copy(
        update={"fields": fields, "metadata": metadata, "vectors": vectors, "updated_at": utc_now()}
    )
    if source_text(col, updated) != source_text(col, doc):
        # The embedded text changed: drop inferred vectors so they are recomputed.
        for spec in col.vector_indexes:
            if spec.inference_name is not None and spec.name not in (body.get("vectors") or {}):
                updated.vectors.pop(spec.name, None)
    return write_documents(stores, col, [updated])[0]


def delete_document(stores: Stores, *, col: CollectionRecord, document_id: str) -> None:
    with stores.follower.lock(col.collection_id):
        if stores.metadata.delete_documents(col.collection_id, [document_id]) == 0:
            raise NotFound("document", document_id, collection_id=col.collection_id)
        stores.follower.catch_up(col)


def byo_document(col: CollectionRecord, stores: Stores, raw: dict[str, Any]) -> DocumentRecord:
    document_id = check_client_id(raw.get("document_id"), "document_id")
    payload = raw.get("payload") or {}
    metadata = raw.get("metadata") or {}
    if not isinstance(payload, dict) or not isinstance(metadata, dict):
        raise ValidationFailed(f"Document '{document_id}': payload and metadata must be objects")
    fields, _ = _split_body(stores, payload)
    _check_text_sizes(stores, metadata, "metadata.")
    vectors = raw.get("vectors")
    if not isinstance(vectors, dict):
        raise ValidationFailed(f"Document '{document_id}' needs a vectors object")
    try:
        checked = validate_vectors(col, vectors)
    except ValidationFailed as exc:
        exc.details["document_id"] = document_id
        exc.message = f"Document '{document_id}': {exc.message}"
        raise
    doc = DocumentRecord(
        document_id=document_id,
        collection_id=col.collection_id,
        namespace_id=col.namespace_id,
        metadata=metadata,
        fields=fields,
        vectors=checked,
        source_type=str(raw.get("source_type") or "direct_upsert"),
    )
    # Empty vectors: the collection's extractor embeds the text (batched over the call).
    if not checked and (
        not any(spec.inference_name for spec in col.vector_indexes) or source_text(col, doc) is None
    ):
        raise ValidationFailed(
            f"Document '{document_id}' has no vectors, and no text that collection "
            f"'{col.collection_name}' embeds (its extractor's input field)",
            code="vectors_required",
            document_id=document_id,
        )
    return doc
