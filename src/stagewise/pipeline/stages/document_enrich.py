"""document_enrich: a left join of the candidates with the documents of another collection.

Each candidate's `source_field` value (a list value joins on each of its elements) is looked
up among the target collection's documents by `target_field`: ``document_id`` reads the
documents directly, any other field path (``sku``, ``metadata.product_id``) goes through an
``in`` filter on the index. The matched document, as users address it (root fields plus
``metadata``), is merged into the candidate:

* ``enrich``: adds what the candidate lacks (nested objects are merged key by key; a key
  holding null counts as missing); the candidate's values win.
* ``replace``: the target's values overwrite the candidate's (nested objects key by key).
* ``append``: values are appended to lists; with `output_field` each matched document (its
  selected fields) becomes one item of the list there, at the root each merged field becomes
  a list receiving the target's value.

`fields_to_merge` selects dot paths of the target (None: every field); `output_field` nests
the merged data under a dot path (None: the candidate's root, where its own document_id,
collection_id and score always stay). When a value matches several target documents,
``enrich`` and ``replace`` use the earliest written one and ``append`` takes them all.
Candidates not matching `when` pass through untouched. A target collection deleted after the
retriever was created fails the run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from stagewise.domain.filters import matches, parse_filter
from stagewise.domain.records import CollectionRecord, DocumentRecord
from stagewise.errors import StageFailed, ValidationFailed
from stagewise.pipeline.docpath import get_field, get_path, set_path
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)
from stagewise.pipeline.templating import has_template

Strategy = Literal["enrich", "replace", "append"]
LOOKUP_CHUNK = 256
# The Mixpeek SDK sends this placeholder when the caller leaves target_collection_id unset.
SDK_PLACEHOLDER = "{{COLLECTION_ID}}"
_IDENTITY = frozenset({"document_id", "collection_id", "score", "scores"})

JoinKey = tuple[str, Any]


class DocumentEnrichParams(StageParams):
    target_collection_id: str | None = Field(
        default=None, description="Collection to join with (id or name)"
    )
    source_field: str = Field(
        default="source_object_id", description="Dot path in the candidates to join on"
    )
    target_field: str = Field(
        default="document_id", description="Field of the target documents to match"
    )
    fields_to_merge: list[str] | None = Field(
        default=None, description="Dot paths of the target to merge; None: all fields"
    )
    output_field: str | None = Field(
        default=None, description="Dot path to nest the merged data under; None: the root"
    )
    strategy: Strategy = Field(default="enrich", description="enrich, replace or append")
    retriever_id: str | None = Field(default=None, description="Join through a retriever")
    retriever_config: dict[str, Any] | None = Field(
        default=None, description="Join through an inline retriever"
    )
    retriever_inputs: dict[str, Any] | None = Field(
        default=None, description="Inputs of the join retriever ({{DOC.*}} templates)"
    )
    when: dict[str, Any] | None = Field(
        default=None, description="Only candidates matching this filter are enriched"
    )
    allow_missing: bool = Field(
        default=True, description="False: a candidate without a match fails the stage"
    )
    cache_behavior: Literal["auto", "disabled", "aggressive"] | None = None
    cache_ttl_seconds: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _join_mode(self) -> DocumentEnrichParams:
        if self.retriever_id and self.retriever_config:
            raise ValueError("retriever_id and retriever_config are mutually exclusive")
        if not (self.retriever_id or self.retriever_config or self.target_collection_id):
            raise ValueError(
                "target_collection_id is required unless retriever_id or retriever_config is set"
            )
        return self


# ---------------------------------------------------------------------------------------------
# helpers


def _key(value: Any) -> JoinKey | None:
    """Type-strict join key of a scalar ("5" != 5, True != 1, 5 == 5.0); None otherwise."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value)
    return None


def _scalars(value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    return [v for v in items if _key(v) is not None]


def _view(rec: DocumentRecord) -> dict[str, Any]:
    """A target document as users address it (and as the index payload lays it out)."""
    return {**rec.fields, "metadata": rec.metadata}


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _contains_template(obj: Any) -> bool:
    if isinstance(obj, dict):
        return any(_contains_template(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_contains_template(v) for v in obj)
    return has_template(obj)


def check_when(when: dict[str, Any] | None) -> None:
    """A stage's `when` filter, checked at creation unless templated (rendered per run);
    dynamic values resolve at run time."""
    if when and not _contains_template(when):
        try:
            parse_filter(when)
        except ValidationFailed as exc:
            if exc.code != "filter_input_missing":
                raise


def merge_dict(dest: dict[str, Any], src: dict[str, Any], *, overwrite: bool) -> None:
    """Deep merge: nested objects key by key; otherwise the target wins iff `overwrite`."""
    for key, value in src.items():
        current = dest.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merge_dict(current, value, overwrite=overwrite)
        elif overwrite or current is None:
            dest[key] = copy.deepcopy(value)


def append_dict(dest: dict[str, Any], src: dict[str, Any]) -> None:
    """Every leaf of `src` is appended to a list at the same place in `dest`."""
    for key, value in src.items():
        current = dest.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            append_dict(current, value)
            continue
        if current is None:
            items: list[Any] = []
        elif isinstance(current, list):
            items = current
        else:
            items = [current]
        items.append(copy.deepcopy(value))
        dest[key] = items


# ---------------------------------------------------------------------------------------------
# stage


@register
class DocumentEnrich(Stage):
    stage_id: ClassVar[str] = "document_enrich"
    category: ClassVar[Category] = "apply"
    description: ClassVar[str] = (
        "Left-join documents with another collection on a field and merge the matched "
        "document's fields (enrich, replace or append)"
    )
    icon: ClassVar[str] = "git-merge"
    Params = DocumentEnrichParams
    credits_per_document: ClassVar[float] = 0.001

    @classmethod
    def validate_for(cls, params: StageParams, collections: list[CollectionRecord]) -> None:
        p: DocumentEnrichParams = params  # type: ignore[assignment]
        if p.retriever_id:
            raise ValidationFailed(
                "document_enrich via retriever_id is not supported yet",
                code="unsupported_join_mode",
            )
        if p.retriever_config:
            raise ValidationFailed(
                "document_enrich via retriever_config is not supported yet",
                code="unsupported_join_mode",
            )
        if p.target_collection_id == SDK_PLACEHOLDER:
            raise ValidationFailed(
                "document_enrich: target_collection_id is the placeholder "
                f"'{SDK_PLACEHOLDER}'; set it to the collection to join with",
                code="invalid_stage_parameters",
            )
        check_when(p.when)

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: DocumentEnrichParams = self.params  # type: ignore[assignment]
        if p.retriever_id or p.retriever_config:
            raise ValidationFailed(
                "document_enrich via retriever_id is not supported yet",
                code="unsupported_join_mode",
            )
        ident = p.target_collection_id or ""
        target = ctx.collection(ident)
        if target is None:
            raise StageFailed(f"document_enrich: collection '{ident}' no longer exists")
        node = parse_filter(p.when, ctx.inputs) if p.when else None
        chosen: list[Candidate] = []
        skipped = 0
        for i, c in enumerate(candidates):
            if i % 256 == 0:
                ctx.budget.check()
            if node is None or matches(node, c.public()):
                chosen.append(c)
            else:
                skipped += 1
        values = [v for c in chosen for v in _scalars(get_field(c, p.source_field))]
        found = self._lookup(ctx, target, p.target_field, values)
        joined = missing = multiple = 0
        for c in chosen:
            ctx.budget.check()
            hits = self._matches_of(c, p, found)
            if not hits:
                missing += 1
                if not p.allow_missing:
                    raise StageFailed(
                        f"document_enrich: document '{c.document_id}' has no match in "
                        f"collection '{target.collection_name}' ({p.source_field}="
                        f"{get_field(c, p.source_field)!r}) and allow_missing is false"
                    )
                continue
            joined += 1
            multiple += len(hits) > 1
            self._merge(c, hits, p)
        metadata = {
            "target_collection_id": target.collection_id,
            "target_field": p.target_field,
            "strategy": p.strategy,
            "joined": joined,
            "missing": missing,
            "multiple_matches": multiple,
            "skipped_by_when": skipped,
        }
        return StageResult(candidates, metadata=metadata)

    # -- lookup --------------------------------------------------------------------------------

    @staticmethod
    def _lookup(
        ctx: StageContext, target: CollectionRecord, target_field: str, values: list[Any]
    ) -> dict[JoinKey, list[DocumentRecord]]:
        """Target documents by join key, each list in write (seq) order."""
        out: dict[JoinKey, list[DocumentRecord]] = {}
        if not values:
            return out
        records: dict[str, DocumentRecord] = {}
        if target_field == "document_id":
            ids = list(dict.fromkeys(str(v) for v in values))
            for chunk in _chunks(ids, LOOKUP_CHUNK):
                ctx.budget.check()
                records.update(ctx.stores.metadata.get_documents(target.collection_id, chunk))
        else:
            unique = list({_key(v): v for v in values}.values())
            for chunk in _chunks(unique, LOOKUP_CHUNK):
                ctx.budget.check()
                flt = {"AND": [{"field": target_field, "operator": "in", "value": chunk}]}
                node = parse_filter(flt, where=f"document_enrich join on '{target_field}'")
                ids = list(ctx.stores.index.filter_ids(target.collection_id, node))
                for id_chunk in _chunks(ids, LOOKUP_CHUNK):
                    records.update(
                        ctx.stores.metadata.get_documents(target.collection_id, id_chunk)
                    )
        live = sorted(
            (r for r in records.values() if not r.deleted), key=lambda r: (r.seq, r.document_id)
        )
        for rec in live:
            if target_field == "document_id":
                keys: Iterable[Any] = [rec.document_id]
            else:
                keys = _scalars(get_path(_view(rec), target_field))
            for value in keys:
                key = _key(value)
                if key is not None:
                    out.setdefault(key, []).append(rec)
        return out

    @staticmethod
    def _matches_of(
        c: Candidate, p: DocumentEnrichParams, found: dict[JoinKey, list[DocumentRecord]]
    ) -> list[DocumentRecord]:
        seen: dict[str, DocumentRecord] = {}
        for value in _scalars(get_field(c, p.source_field)):
            # Document ids are strings: a document_id join compares the value's text.
            key = ("s", str(value)) if p.target_field == "document_id" else _key(value)
            for rec in found.get(key, []) if key is not None else []:
                seen.setdefault(rec.document_id, rec)
        return list(seen.values())

    # -- merge ---------------------------------------------------------------------------------

    @staticmethod
    def _selected(rec: DocumentRecord, p: DocumentEnrichParams) -> dict[str, Any]:
        view = _view(rec)
        if p.output_field is not None:
            view = {**view, "document_id": rec.document_id, "collection_id": rec.collection_id}
        if p.fields_to_merge is None:
            return copy.deepcopy(view)
        out: dict[str, Any] = {}
        for path in p.fields_to_merge:
            value = get_path(view, path)
            if value is not None:
                set_path(out, path, copy.deepcopy(value))
        return out

    def _merge(self, c: Candidate, hits: list[DocumentRecord], p: DocumentEnrichParams) -> None:
        payloads = [self._selected(rec, p) for rec in hits]
        if p.output_field is None:
            # At the root the candidate keeps its identity whatever the target holds.
            payloads = [{k: v for k, v in d.items() if k not in _IDENTITY} for d in payloads]
            if p.strategy == "append":
                for payload in payloads:
                    append_dict(c.doc, payload)
            else:
                merge_dict(c.doc, payloads[0], overwrite=p.strategy == "replace")
            return
        current = get_path(c.doc, p.output_field)
        if p.strategy == "append":
            items = [] if current is None else current if isinstance(current, list) else [current]
            items.extend(payloads)
            set_path(c.doc, p.output_field, items)
            return
        if not isinstance(current, dict):
            if current is not None and p.strategy == "enrich":
                return  # enrich never overwrites a value the candidate already has
            current = {}
            set_path(c.doc, p.output_field, current)
        merge_dict(current, payloads[0], overwrite=p.strategy == "replace")
