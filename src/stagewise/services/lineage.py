"""Where a document came from, read from the lineage fields processing stamped on it."""

from __future__ import annotations

from typing import Any

from stagewise.domain.records import CollectionRecord, NamespaceRecord
from stagewise.errors import NotFound
from stagewise.services.bucket_source import is_bucket_sourced
from stagewise.services.context import Stores

MAX_DOCUMENTS_PER_OBJECT = 1000


def document_lineage(stores: Stores, *, col: CollectionRecord, document_id: str) -> dict[str, Any]:
    doc = stores.metadata.get_document(col.collection_id, document_id)
    if doc is None:
        raise NotFound("document", document_id, collection_id=col.collection_id)
    out: dict[str, Any] = {"document_id": document_id, "collection_id": col.collection_id}
    fields = doc.fields
    if not fields.get("root_object_id"):
        return {
            **out,
            "lineage": None,
            "depth": 0,
            "total_steps": 0,
            "message": f"The document was written directly (source_type '{doc.source_type}'), "
            "not made from a bucket object, so it has no lineage",
        }
    chain = fields.get("lineage_chain") or []
    lineage = {
        "root_object_id": fields.get("root_object_id"),
        "root_bucket_id": fields.get("root_bucket_id"),
        "source_type": fields.get("source_type") or doc.source_type,
        "source_object_id": fields.get("source_object_id"),
        "lineage_chain": chain,
    }
    return {**out, "lineage": lineage, "depth": len(chain), "total_steps": len(chain)}


def documents_of_object(
    stores: Stores, *, ns: NamespaceRecord, object_id: str, collection_ids: list[str] | None
) -> dict[str, Any]:
    """Every document made from `object_id`, across the namespace's bucket-sourced
    collections (or the listed ones)."""
    cols = [c for c in stores.metadata.list_collections(ns.namespace_id) if is_bucket_sourced(c)]
    if collection_ids:
        cols = [
            c
            for c in cols
            if c.collection_id in collection_ids or c.collection_name in collection_ids
        ]
    documents: list[dict[str, Any]] = []
    for col in cols:
        ids = stores.metadata.document_ids_by_source(col.collection_id, [object_id]).get(
            object_id, []
        )
        found = stores.metadata.get_documents(col.collection_id, ids[:MAX_DOCUMENTS_PER_OBJECT])
        documents += [
            {
                "document_id": d.document_id,
                "collection_id": d.collection_id,
                "chunk_index": d.fields.get("chunk_index"),
                "text": d.fields.get("text"),
            }
            for d in sorted(found.values(), key=lambda d: d.fields.get("chunk_index") or 0)
        ]
    if not documents and not any(
        stores.ingest.get_objects(b, [object_id])
        for c in cols
        for b in c.source.get("bucket_ids") or ()
    ):
        raise NotFound("object", object_id, namespace_id=ns.namespace_id)
    return {"object_id": object_id, "documents": documents, "total": len(documents)}


def decomposition_tree(
    stores: Stores, *, ns: NamespaceRecord, object_id: str, include_document_ids: bool
) -> dict[str, Any]:
    """The object's documents grouped by collection (one tier: objects -> documents)."""
    found = documents_of_object(stores, ns=ns, object_id=object_id, collection_ids=None)
    per: dict[str, list[str]] = {}
    for doc in found["documents"]:
        per.setdefault(doc["collection_id"], []).append(doc["document_id"])
    collections = [
        {
            "collection_id": collection_id,
            "tier": 0,
            "document_count": len(ids),
            **({"document_ids": ids} if include_document_ids else {}),
        }
        for collection_id, ids in per.items()
    ]
    return {"object_id": object_id, "collections": collections, "total_documents": found["total"]}
