"""Bucket objects into documents: read the mapped field, chunk it, copy the passthrough
fields, stamp the lineage, and write each chunk under an id derived from (collection,
object, content hash, chunk index). The same object with the same content always maps to the
same ids, so a repeated delivery of a task writes nothing twice (docs/ingestion.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stagewise.domain.ingest_records import ObjectRecord
from stagewise.domain.records import CollectionRecord, DocumentRecord
from stagewise.errors import NotFound
from stagewise.ids import utc_now
from stagewise.services.bucket_source import CHUNK_FIELD, LINEAGE_FIELDS, BucketSource
from stagewise.services.chunking import split_text
from stagewise.services.ingest_context import IngestContext
from stagewise.storage.payload import get_path


@dataclass
class ObjectOutcome:
    object_id: str
    status: str  # COMPLETED | FAILED | SKIPPED
    documents_written: int = 0
    error: str | None = None
    error_type: str | None = None  # permanent (bad data) | transient (worth a retry)


class ObjectFailure(Exception):
    """One object cannot become documents; the rest of its batch goes on."""

    def __init__(self, message: str, error_type: str = "permanent") -> None:
        super().__init__(message)
        self.error_type = error_type


def object_text(ctx: IngestContext, obj: ObjectRecord, field: str) -> str:
    for blob in obj.blobs:
        if blob.property != field:
            continue
        if blob.type != "text":
            raise ObjectFailure(f"blob '{field}' is {blob.type}; the text extractor reads text")
        try:
            data = ctx.blobs.get(blob.content_hash)
        except NotFound as exc:
            raise ObjectFailure(f"blob '{field}' is missing from the blob store") from exc
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ObjectFailure(f"blob '{field}' is not UTF-8 text") from exc
    value = get_path(obj.fields, field)
    if value is None:
        raise ObjectFailure(f"the object has no '{field}' to embed")
    if not isinstance(value, str):
        raise ObjectFailure(f"'{field}' is {type(value).__name__}, not text")
    return value


def document_id_for(collection_id: str, obj: ObjectRecord, index: int) -> str:
    key = f"{collection_id}\0{obj.object_id}\0{obj.content_hash}\0{index}"
    return "doc_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _copied_fields(source: BucketSource, obj: ObjectRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if source.include_all_source_fields:
        out.update(
            {k: v for k, v in obj.fields.items() if k not in LINEAGE_FIELDS and k[:1] != "_"}
        )
    for item in source.passthrough:
        value = get_path(obj.fields, item.source_path)
        if value is None and item.required:
            raise ObjectFailure(f"required passthrough field '{item.source_path}' is missing")
        value = item.default if value is None else value
        if value is not None:
            out[item.target_path] = value
    return out


def build_documents(
    ctx: IngestContext, col: CollectionRecord, source: BucketSource, obj: ObjectRecord
) -> list[DocumentRecord]:
    chunks = split_text(object_text(ctx, obj, source.input_field), source.chunking)
    if not chunks:
        raise ObjectFailure(f"'{source.input_field}' is empty: nothing to embed")
    copied = _copied_fields(source, obj)
    extractor_id = str(col.feature_extractor.get("feature_extractor_id") or "text_extractor_v1")
    stamp = utc_now().isoformat()
    docs: list[DocumentRecord] = []
    for index, chunk in enumerate(chunks):
        document_id = document_id_for(col.collection_id, obj, index)
        chain = [
            {
                "collection_id": col.collection_id,
                "feature_extractor_id": extractor_id,
                "document_id": document_id,
                "timestamp": stamp,
            }
        ]
        fields = {
            **copied,
            CHUNK_FIELD: chunk,
            "source_type": "bucket",
            "source_object_id": obj.object_id,
            "root_object_id": obj.object_id,
            "root_bucket_id": obj.bucket_id,
            "lineage_chain": chain,
            "chunk_index": index,
            "chunk_count": len(chunks),
        }
        docs.append(
            DocumentRecord(
                document_id=document_id,
                collection_id=col.collection_id,
                namespace_id=col.namespace_id,
                fields=fields,
                source_type="bucket",
            )
        )
    return docs


Pending = list[tuple[ObjectRecord, list[DocumentRecord]]]


def _enriched(
    ctx: IngestContext, col: CollectionRecord, pending: Pending
) -> tuple[Pending, list[ObjectOutcome]]:
    """The documents with the collection's taxonomy applications materialised. Where that
    cannot run (a Celery worker has no index to match against; an applied taxonomy is gone)
    the objects fail with the reason, rather than being written without their labels."""
    if ctx.enrich is None:
        error = (
            "taxonomy_applications need a serving process's search index: run this "
            "collection's ingestion in-process, or use the taxonomy_enrich stage at query time"
        )
        return [], [ObjectOutcome(o.object_id, "FAILED", 0, error, "permanent") for o, _ in pending]
    out: Pending = []
    failed: list[ObjectOutcome] = []
    for obj, docs in pending:
        try:
            out.append((obj, ctx.enrich(col, docs)))
        except Exception as exc:  # this object fails; the batch goes on
            error = f"taxonomy enrichment failed: {getattr(exc, 'message', exc)}"
            failed.append(ObjectOutcome(obj.object_id, "FAILED", 0, error, "permanent"))
    return out, failed


def process_objects(
    ctx: IngestContext,
    col: CollectionRecord,
    source: BucketSource,
    objects: Sequence[ObjectRecord],
    dedup_strategy: str,
) -> tuple[list[ObjectOutcome], int]:
    """Writes the documents of `objects` into `col`; each object's outcome, and the highest
    seq committed (0: nothing written). A failed write fails its objects as transient."""
    existing = ctx.metadata.document_ids_by_source(
        col.collection_id, [o.object_id for o in objects]
    )
    outcomes: list[ObjectOutcome] = []
    pending: Pending = []
    for obj in objects:
        try:
            docs = build_documents(ctx, col, source, obj)
        except ObjectFailure as failure:
            outcomes.append(
                ObjectOutcome(obj.object_id, "FAILED", 0, str(failure), failure.error_type)
            )
            continue
        have = set(existing.get(obj.object_id, ()))
        if dedup_strategy == "skip" and have and have == {d.document_id for d in docs}:
            outcomes.append(ObjectOutcome(obj.object_id, "SKIPPED"))
            continue
        pending.append((obj, docs))
    if not pending:
        return outcomes, 0
    if col.taxonomy_applications:
        pending, failed = _enriched(ctx, col, pending)
        outcomes += failed
        if not pending:
            return outcomes, 0
    try:
        stored = ctx.write_documents(col, [d for _, docs in pending for d in docs])
        # Documents of an earlier version of an object (other content, other ids) go.
        stale = [
            doc_id
            for obj, docs in pending
            for doc_id in set(existing.get(obj.object_id, ())) - {d.document_id for d in docs}
        ]
        if stale:
            ctx.delete_documents(col, stale)
    except Exception as exc:  # the objects fail; the batch goes on
        error = f"writing documents failed: {type(exc).__name__}: {exc}"
        outcomes += [
            ObjectOutcome(o.object_id, "FAILED", 0, error, "transient") for o, _ in pending
        ]
        return outcomes, 0
    outcomes += [ObjectOutcome(o.object_id, "COMPLETED", len(docs)) for o, docs in pending]
    return outcomes, max(d.seq for d in stored)
