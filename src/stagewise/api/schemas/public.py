"""Public (wire) shapes of stored records, as the Mixpeek SDK parses them."""

from __future__ import annotations

from typing import Any

from stagewise.domain.records import CollectionRecord, DocumentRecord, NamespaceRecord
from stagewise.ids import iso
from stagewise.services.stats import CollectionStats, NamespaceStats


def namespace_public(ns: NamespaceRecord, stats: NamespaceStats) -> dict[str, Any]:
    # Figures come from `stats` (read on this request); fields Stagewise has no source for
    # (buckets, objects, namespace types, adaptive indexing) are left out.
    return {
        "object": "namespace",  # the resource's type tag
        "namespace_id": ns.namespace_id,
        "namespace_name": ns.namespace_name,
        "description": ns.description,
        "feature_extractors": ns.feature_extractors,
        "payload_indexes": ns.payload_indexes,
        "payload_index_count": len(ns.payload_indexes),
        "document_count": stats.document_count,
        "collection_count": stats.collection_count,
        "mode": ns.mode,
        "vector_configs": ns.vector_configs,
        "vector_inference_map": stats.vector_inference_map,
        "namespace_ready": stats.ready,
        "created_at": iso(ns.created_at),
        "updated_at": iso(ns.updated_at),
    }


def collection_public(col: CollectionRecord, stats: CollectionStats) -> dict[str, Any]:
    extractor = col.feature_extractor or {
        "feature_extractor_name": "none",
        "version": "v1",
        "feature_extractor_id": "none_v1",
    }
    vector_indexes = [
        {
            "name": spec.short_name,
            "feature_uri": spec.feature_uri,
            "type": "single",
            "index": {
                "name": spec.name,
                "dimensions": spec.dimensions,
                "distance": spec.distance,
                "inference_name": spec.inference_name,
            },
            # The SDK's enum knows one source: vectors declared by the namespace (BYO).
            **({} if spec.inference_name else {"source": "namespace_vector_config"}),
        }
        for spec in col.vector_indexes
    ]
    output_schema = {
        "properties": {
            spec.short_name: {"type": "array", "description": f"{spec.dimensions}-d vector"}
            for spec in col.vector_indexes
        }
    }
    out: dict[str, Any] = {
        "collection_id": col.collection_id,
        "collection_name": col.collection_name,
        "description": col.description,
        "input_schema": col.input_schema,
        "output_schema": output_schema,
        "feature_extractor": extractor,
        "source": col.source,
        "vector_indexes": vector_indexes,
        "index_map": {spec.feature_uri: spec.feature_uri for spec in col.vector_indexes},
        "enabled": col.enabled,
        "metadata": col.metadata,
        "created_at": iso(col.created_at),
        "updated_at": iso(col.updated_at),
        "document_count": stats.document_count,
        "retriever_count": stats.retriever_count,
        "indexing_status": stats.indexing_status,
        "taxonomy_applications": col.taxonomy_applications,
        "taxonomy_count": len(col.taxonomy_applications),
    }
    if stats.payload_indexes is not None:
        # Fields with a payload index, ours (underscored) left out.
        out["payload_indexes"] = [
            {"field_name": name, "type": kind.rsplit(".", 1)[-1].lower()}
            for name, kind in sorted(stats.payload_indexes.items())
            if not name.startswith("_") and name not in ("document_id",)
        ]
    return out


def document_public(doc: DocumentRecord, *, return_vectors: bool = False) -> dict[str, Any]:
    created, updated = iso(doc.created_at), iso(doc.updated_at)
    out: dict[str, Any] = {
        **doc.fields,
        "document_id": doc.document_id,
        "collection_id": doc.collection_id,
        "metadata": doc.metadata,
        "source_type": doc.source_type,
        # Writes are indexed before they are acknowledged: searchable as of the last write.
        "searchable_at": updated,
        "_internal": {
            "internal_id": str(doc.seq),
            "namespace_id": doc.namespace_id,
            "document_id": doc.document_id,
            "collection_id": doc.collection_id,
            "created_at": created,
            "updated_at": updated,
            "metadata": doc.metadata,
        },
    }
    if return_vectors:
        out["vectors"] = doc.vectors
        out["vector_hydration_incomplete"] = False
    return out


def list_pagination(
    *, limit: int, offset: int, total: int | None, has_more: bool, next_cursor: str | None
) -> dict[str, Any]:
    page = offset // limit + 1 if limit else 1
    total_pages = (total + limit - 1) // limit if total is not None and limit else None
    return {
        "total": total,
        "total_pages": total_pages,
        "page": page,
        "page_size": limit,
        # The SDK declares these as strings.
        "next_page": str(page + 1) if has_more else None,
        "previous_page": str(page - 1) if page > 1 else None,
        "next_cursor": next_cursor,
    }


def counted_page(
    results: list[dict[str, Any]], *, total: int, limit: int, offset: int
) -> dict[str, Any]:
    """A list answer with its total: results, total_count and offset pagination."""
    return {
        "results": results,
        "total_count": total,
        "pagination": list_pagination(
            limit=limit,
            offset=offset,
            total=total,
            has_more=offset + len(results) < total,
            next_cursor=None,
        ),
    }
