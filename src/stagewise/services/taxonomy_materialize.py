"""Persisted taxonomy enrichment: a collection's `taxonomy_applications`, validated, and
`materialize_taxonomies`, which ingestion calls on each batch of documents before writing it.

Fields written at the document's root (users cannot write `_`-prefixed fields themselves):
`_taxonomy_<id>_id`, `_label`, `_score` (the best match), `_assignments` (every kept match,
ranked, when the taxonomy's top_k > 1), for a hierarchy `_path` (labels, root first) and,
unless the application's hierarchical_enrichment_style is `best_match`, `_tiers` (each
level's match); then the enrichment fields (a `metadata.*` target lands in metadata).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stagewise.domain.filters import matches, parse_filter
from stagewise.domain.records import CollectionRecord, DocumentRecord, NamespaceRecord
from stagewise.errors import NotFound, ValidationFailed
from stagewise.pipeline.taxonomy_match import annotate, apply_enrichment, field_prefix
from stagewise.services.context import Stores
from stagewise.services.taxonomies import matcher_for, taxonomy_top_k

STYLES = ("full_chain", "best_match", "combined")
MAX_APPLICATIONS = 10


def _fail(message: str, field: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_taxonomy_application", field=field)


def validate_applications(stores: Stores, ns: NamespaceRecord, raw: Any) -> list[dict[str, Any]]:
    """A collection's taxonomy_applications as stored: every taxonomy resolved to its id."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_APPLICATIONS:
        raise _fail(f"taxonomy_applications must be a list of at most {MAX_APPLICATIONS}", "")
    out: list[dict[str, Any]] = []
    for i, app in enumerate(raw):
        where = f"taxonomy_applications[{i}]"
        if not isinstance(app, dict) or not isinstance(app.get("taxonomy_id"), str):
            raise _fail(f"{where} needs a taxonomy_id", where)
        tax = stores.taxonomies.get_taxonomy(ns.namespace_id, app["taxonomy_id"])
        if tax is None:
            raise NotFound("taxonomy", app["taxonomy_id"], namespace_id=ns.namespace_id)
        if app.get("execution_mode") not in (None, "materialize"):
            raise _fail(f"{where}.execution_mode must be 'materialize'", where)
        if app.get("target_collection_id") is not None:
            raise _fail(
                f"{where}.target_collection_id is not supported: assignments are written onto "
                "the collection's own documents",
                where,
            )
        if app.get("hierarchical_enrichment_style") not in (None, *STYLES):
            raise _fail(f"{where}.hierarchical_enrichment_style must be one of {STYLES}", where)
        if app.get("scroll_filters"):
            parse_filter(app["scroll_filters"], where=f"{where}.scroll_filters")
        for key in ("execution_phase", "priority"):
            value = app.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise _fail(f"{where}.{key} must be an integer", where)
        # Stored as sent (an echo), the taxonomy resolved to its id; unset keys stay unset.
        stored = {"taxonomy_id": tax.taxonomy_id, "execution_mode": "materialize"}
        for key in ("scroll_filters", "execution_phase", "priority"):
            if app.get(key) is not None:
                stored[key] = app[key]
        if app.get("hierarchical_enrichment_style") is not None:
            stored["hierarchical_enrichment_style"] = app["hierarchical_enrichment_style"]
        out.append(stored)
    ids = [a["taxonomy_id"] for a in out]
    if len(set(ids)) != len(ids):
        raise _fail("a taxonomy may be applied to a collection once", "taxonomy_applications")
    # Lower phases first, then higher priority (the SDK's documented order).
    return sorted(out, key=lambda a: (a.get("execution_phase", 1), -a.get("priority", 0)))


def materialize_taxonomies(
    stores: Stores, col: CollectionRecord, docs: Sequence[DocumentRecord]
) -> list[DocumentRecord]:
    """The documents with every taxonomy application of `col` materialised onto them (new
    records; the inputs are not changed). A document a taxonomy does not match (or that its
    scroll_filters leave out) keeps no fields of it. Raises a clear error when an applied
    taxonomy, or its retriever or node collection, is gone."""
    out = [d.model_copy(deep=True) for d in docs]
    if not col.taxonomy_applications or not out:
        return out
    for app in col.taxonomy_applications:
        tax = stores.taxonomies.get_taxonomy(col.namespace_id, app["taxonomy_id"])
        if tax is None:
            raise ValidationFailed(
                f"collection '{col.collection_name}' applies taxonomy '{app['taxonomy_id']}', "
                "which no longer exists; remove it from its taxonomy_applications",
                code="taxonomy_unusable",
            )
        flt = parse_filter(app["scroll_filters"]) if app.get("scroll_filters") else None
        matcher, top_k = matcher_for(stores, tax), taxonomy_top_k(tax)
        prefix = field_prefix(tax.taxonomy_id)
        for doc in out:
            view = {**doc.fields, "metadata": doc.metadata}
            if flt is not None and not matches(flt, {**view, "document_id": doc.document_id}):
                continue
            found = matcher.match(view, top_k)
            if not found:
                continue
            annotate(view, tax.taxonomy_id, found, ranked=top_k > 1)
            if tax.taxonomy_type == "hierarchical":
                view[f"{prefix}_path"] = found[0].path
                if app.get("hierarchical_enrichment_style") != "best_match":
                    view[f"{prefix}_tiers"] = found[0].tiers
            apply_enrichment(view, found)
            metadata = view.pop("metadata", None)
            doc.metadata = metadata if isinstance(metadata, dict) else {}
            doc.fields = view
    return out
