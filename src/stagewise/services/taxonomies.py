"""Taxonomies: create (config validated, services/taxonomy_config.py), resolve, list, patch
(name, description and metadata only), delete, and execute (validation on 1-5 sample
documents; nothing is stored)."""

from __future__ import annotations

import copy
from typing import Any

from stagewise.domain.records import CollectionRecord, NamespaceRecord
from stagewise.domain.taxonomy_records import TaxonomyRecord
from stagewise.errors import Conflict, NotFound, ValidationFailed
from stagewise.ids import new_id, utc_now
from stagewise.pipeline.stage import Budget, collection_version
from stagewise.pipeline.taxonomy_match import TaxonomyMatcher, annotate, apply_enrichment
from stagewise.services.context import Stores
from stagewise.services.follower import STRONG
from stagewise.services.records import checked
from stagewise.services.taxonomy_config import validate_config

MAX_SAMPLE_DOCUMENTS = 5
# Fixed at creation: clone the taxonomy to change them (as the SDK documents).
IMMUTABLE = ("config", "taxonomy_type", "retriever_id", "input_mappings", "source_collection")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise ValidationFailed(
            "taxonomy_name must be a non-empty string of at most 255 characters",
            code="invalid_name",
            field="taxonomy_name",
        )
    return value


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed(f"{field} must be an object", field=field)
    return value


def create_taxonomy(stores: Stores, *, ns: NamespaceRecord, body: dict[str, Any]) -> TaxonomyRecord:
    name = _name(body.get("taxonomy_name"))
    config = validate_config(stores, ns, body.get("config"))
    record = checked(
        TaxonomyRecord,
        {
            "taxonomy_id": new_id("tax_"),
            "namespace_id": ns.namespace_id,
            "taxonomy_name": name,
            "description": body.get("description"),
            "metadata": _object(body.get("metadata"), "metadata"),
            "config": config,
        },
    )
    stores.taxonomies.create_taxonomy(record)  # Conflict (409) when the name is taken
    return record


def get_taxonomy(
    stores: Stores, *, ns: NamespaceRecord, identifier: str, version: int | None = None
) -> TaxonomyRecord:
    tax = stores.taxonomies.get_taxonomy(ns.namespace_id, identifier)
    if tax is None:
        raise NotFound("taxonomy", identifier, namespace_id=ns.namespace_id)
    if version is not None and version != tax.version:
        # A config never changes, so a taxonomy has exactly one version.
        raise NotFound("taxonomy version", f"{identifier}@{version}", latest=tax.version)
    return tax


def list_taxonomies(
    stores: Stores, *, ns: NamespaceRecord, search: str | None, offset: int, limit: int
) -> tuple[list[TaxonomyRecord], int]:
    return stores.taxonomies.list_taxonomies(
        ns.namespace_id, search=search or None, offset=offset, limit=limit
    )


def patch_taxonomy(
    stores: Stores, *, ns: NamespaceRecord, identifier: str, body: dict[str, Any]
) -> TaxonomyRecord:
    tax = get_taxonomy(stores, ns=ns, identifier=identifier)
    sent = sorted(k for k in IMMUTABLE if k in body)
    if sent:
        raise ValidationFailed(
            f"{', '.join(sent)} cannot be changed: a taxonomy's config and type are fixed at "
            "creation; clone it to change them (PATCH takes taxonomy_name, description and "
            "metadata)",
            code="immutable_field",
            fields=sent,
        )
    changes: dict[str, Any] = {"updated_at": utc_now()}
    if body.get("taxonomy_name") is not None:
        changes["taxonomy_name"] = _name(body["taxonomy_name"])
    if "description" in body:
        changes["description"] = body["description"]
    if body.get("metadata") is not None:
        changes["metadata"] = _object(body["metadata"], "metadata")
    updated = checked(TaxonomyRecord, {**tax.model_dump(), **changes})
    if not stores.taxonomies.update_taxonomy(updated):  # Conflict (409) on a taken name
        raise NotFound("taxonomy", identifier, namespace_id=ns.namespace_id)
    return updated


def delete_taxonomy(stores: Stores, *, ns: NamespaceRecord, identifier: str) -> TaxonomyRecord:
    tax = get_taxonomy(stores, ns=ns, identifier=identifier)
    # Ingestion materialises applied taxonomies: one deleted under it would fail every batch.
    users = [
        col.collection_name
        for col in stores.metadata.list_collections(ns.namespace_id)
        if any(a.get("taxonomy_id") == tax.taxonomy_id for a in col.taxonomy_applications)
    ]
    if users:
        raise Conflict(
            f"taxonomy '{tax.taxonomy_name}' is applied to collections {users}; remove it from "
            "their taxonomy_applications first",
            code="taxonomy_in_use",
            collections=users,
        )
    if not stores.taxonomies.delete_taxonomy(tax.taxonomy_id):
        raise NotFound("taxonomy", identifier, namespace_id=ns.namespace_id)
    return tax


def fresh_collections(stores: Stores, namespace_id: str) -> Any:
    """A node-collection lookup that first brings this worker's index up to the
    collection's latest write (read-your-writes, as a strong retriever read does)."""

    def lookup(identifier: str) -> CollectionRecord | None:
        col = stores.metadata.get_collection(namespace_id, identifier)
        if col is not None:
            collection_version(stores, namespace_id, col.collection_id, STRONG)
        return col

    return lookup


def matcher_for(stores: Stores, tax: TaxonomyRecord) -> TaxonomyMatcher:
    budget = Budget(None, float(stores.settings.execution_deadline_ms))
    return TaxonomyMatcher(stores, tax, budget, fresh_collections(stores, tax.namespace_id))


def taxonomy_top_k(tax: TaxonomyRecord) -> int:
    """Matches kept per document: the flat config's top_k; one (the deepest) in a hierarchy."""
    return int(tax.config.get("top_k") or 1) if tax.taxonomy_type == "flat" else 1


def _sample_documents(body: dict[str, Any]) -> list[dict[str, Any]]:
    if body.get("retriever") is not None:
        raise ValidationFailed(
            "execute does not take a retriever override: the taxonomy runs its own retriever",
            code="unsupported_parameter",
            field="retriever",
        )
    if body.get("join_mode") not in (None, "on_demand"):
        raise ValidationFailed(
            "join_mode must be 'on_demand'; collections are enriched through taxonomy_applications",
            field="join_mode",
        )
    docs = body.get("source_documents")
    if (
        not isinstance(docs, list)
        or not 1 <= len(docs) <= MAX_SAMPLE_DOCUMENTS
        or not all(isinstance(d, dict) for d in docs)
    ):
        raise ValidationFailed(
            f"source_documents must hold 1 to {MAX_SAMPLE_DOCUMENTS} documents (objects): "
            "execute validates a taxonomy on samples and stores nothing",
            code="invalid_source_documents",
            field="source_documents",
        )
    return docs


def execute_taxonomy(
    stores: Stores,
    *,
    ns: NamespaceRecord,
    identifier: str,
    body: dict[str, Any],
    version: int | None = None,
) -> dict[str, Any]:
    """JoinResponse: the sample documents enriched (the fields materialisation would write)
    and one match per assignment."""
    tax = get_taxonomy(stores, ns=ns, identifier=identifier, version=version)
    docs = _sample_documents(body)
    matcher, top_k = matcher_for(stores, tax), taxonomy_top_k(tax)
    results: list[dict[str, Any]] = []
    matches: list[dict[str, Any]] = []
    enriched = 0
    for i, doc in enumerate(docs):
        found = matcher.match(doc, top_k)
        enriched += bool(found)
        out = copy.deepcopy(doc)
        names = annotate(out, tax.taxonomy_id, found, ranked=top_k > 1)
        names += apply_enrichment(out, found)
        results.append(out)
        doc_id = doc.get("document_id")
        for a in found:
            matches.append(
                {
                    "document_id": doc_id if isinstance(doc_id, str) else f"sample_{i}",
                    "taxonomy_id": tax.taxonomy_id,
                    "taxonomy_name": tax.taxonomy_name,
                    "node_id": a.node_id,
                    "label": a.label,
                    "score": a.score,
                    "path": a.path,
                    "hierarchy_level": a.level,
                    "enriched_fields": names,
                }
            )
    return {
        "stats": {"processed_docs": len(docs), "batches": 1, "errors": 0, "enriched": enriched},
        "results": results,
        "matches": matches,
    }
