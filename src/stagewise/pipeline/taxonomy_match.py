"""Matching documents to taxonomy nodes, and writing the assignments onto documents.

One engine serves the taxonomy execute endpoint (services/taxonomies.py), the
`taxonomy_enrich` stage and materialisation at ingestion (services/taxonomy_materialize.py).

* **Nodes** are the documents of the taxonomy's node collections: `source_collection` for a
  flat taxonomy, each `hierarchical_nodes[].collection_id` for a hierarchical one.
* **Matching** builds the retriever's inputs from the document with `input_mappings`
  (`payload`: a dot path into the document's root fields; `literal`: `override`), runs the
  node's retriever restricted to the node collection (its stages see that collection alone,
  and hits from any other are dropped), and takes the hits as the matched nodes, best first.
  A document lacking a mapped payload path matches nothing.
* **Hierarchies** are walked from the roots: at each level the child collection whose best
  hit scores highest is taken, until no child matches; the deepest match wins, and its path
  holds the labels of the matches from the root down.
* **Label** of a node: its `label` field, else `metadata.label`, else its collection's text
  field (what it was embedded from), else the hierarchical node's configured `label`, else
  its document id.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stagewise.domain.records import CollectionRecord
from stagewise.domain.taxonomy_records import TaxonomyRecord
from stagewise.errors import StageFailed, ValidationFailed
from stagewise.pipeline.docpath import get_path, set_path
from stagewise.pipeline.runner import run_stages
from stagewise.pipeline.stage import Budget, Candidate

# The SDK's default taxonomy_id in the taxonomy_enrich parameters: never a real taxonomy.
PLACEHOLDER = "{{TAXONOMY_ID}}"
_IDENTITY = frozenset({"document_id", "collection_id", "score", "scores", "_internal"})

CollectionLookup = Callable[[str], CollectionRecord | None]


def field_prefix(taxonomy_id: str) -> str:
    return f"_taxonomy_{taxonomy_id}"


def build_inputs(mappings: list[dict[str, Any]], doc: dict[str, Any]) -> dict[str, Any] | None:
    """The retriever inputs of one document; None when a payload path is missing."""
    inputs: dict[str, Any] = {}
    for m in mappings:
        if m.get("source_type") == "literal":
            inputs[m["input_key"]] = m.get("override")
            continue
        value = get_path(doc, m["path"])
        if value is None and isinstance(doc.get("payload"), dict):
            value = get_path(doc["payload"], m["path"])  # the {'payload': {...}} envelope
        if value is None:
            return None
        inputs[m["input_key"]] = value
    return inputs


@dataclass
class Node:
    """One node collection with what matches against it."""

    collection: CollectionRecord
    retriever: Any  # RetrieverRecord
    input_mappings: list[dict[str, Any]]
    # Effective enrichment fields (a child without its own has its parent's); None: the
    # whole node document.
    fields: list[dict[str, Any]] | None
    label: str | None = None
    parent: str | None = None  # the parent node's collection_id


@dataclass
class Assignment:
    node_id: str
    collection_id: str
    label: str
    score: float
    path: list[str]
    level: int
    # (node document, its enrichment fields) from the root down to the matched node.
    chain: list[tuple[dict[str, Any], list[dict[str, Any]] | None]] = field(default_factory=list)
    # Hierarchies: each level's match, root first ({level, node_id, collection_id, label,
    # score}).
    tiers: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "label": self.label, "score": self.score}


@dataclass
class MatchStats:
    retriever_runs: int = 0
    unmapped: int = 0  # documents lacking a mapped payload path


class TaxonomyMatcher:
    """Matches documents against one taxonomy. `collection` resolves a node collection (a
    stage passes StageContext.collection, so its run records what it read)."""

    def __init__(
        self,
        stores: Any,
        taxonomy: TaxonomyRecord,
        budget: Budget,
        collection: CollectionLookup,
        *,
        consistency: Any = None,
    ) -> None:
        self.stores, self.taxonomy, self.budget = stores, taxonomy, budget
        self.consistency = consistency
        self.stats = MatchStats()
        self.nodes = self._nodes(collection)
        self.children: dict[str | None, list[Node]] = {}
        for node in self.nodes:
            self.children.setdefault(node.parent, []).append(node)

    # -- configuration -------------------------------------------------------------------------

    def _broken(self, what: str) -> ValidationFailed:
        # A piece deleted after the taxonomy was made: the taxonomy needs fixing (a 422 from
        # execute; a failed run in a retriever).
        return ValidationFailed(
            f"taxonomy '{self.taxonomy.taxonomy_name}' ({self.taxonomy.taxonomy_id}) cannot "
            f"run: {what}",
            code="taxonomy_unusable",
        )

    def _retriever(self, retriever_id: str) -> Any:
        r = self.stores.metadata.get_retriever(self.taxonomy.namespace_id, retriever_id)
        if r is None:
            raise self._broken(f"its retriever '{retriever_id}' no longer exists")
        return r

    def _collection(self, lookup: CollectionLookup, collection_id: str) -> CollectionRecord:
        col = lookup(collection_id)
        if col is None:
            raise self._broken(f"its node collection '{collection_id}' no longer exists")
        return col

    def _nodes(self, lookup: CollectionLookup) -> list[Node]:
        config = self.taxonomy.config
        if self.taxonomy.taxonomy_type == "flat":
            source = config["source_collection"]
            return [
                Node(
                    self._collection(lookup, source["collection_id"]),
                    self._retriever(config["retriever_id"]),
                    config["input_mappings"],
                    source.get("enrichment_fields"),
                )
            ]
        specs = {n["collection_id"]: n for n in config["hierarchical_nodes"]}
        nodes = []
        for spec in config["hierarchical_nodes"]:
            nodes.append(
                Node(
                    self._collection(lookup, spec["collection_id"]),
                    self._retriever(spec.get("retriever_id") or config["retriever_id"]),
                    spec.get("input_mappings") or config["input_mappings"],
                    inherited_fields(specs, spec["collection_id"]),
                    spec.get("label"),
                    spec.get("parent_collection_id"),
                )
            )
        return nodes

    # -- matching ------------------------------------------------------------------------------

    def _hits(self, node: Node, doc: dict[str, Any], min_score: float) -> list[Candidate]:
        inputs = build_inputs(node.input_mappings, doc)
        if inputs is None:
            return []
        for name, spec in (node.retriever.input_schema or {}).items():
            if name not in inputs and isinstance(spec, dict) and spec.get("default") is not None:
                inputs[name] = spec["default"]
        self.budget.check()
        self.stats.retriever_runs += 1
        outcome = run_stages(
            stores=self.stores,
            namespace_id=self.taxonomy.namespace_id,
            collections=[node.collection],
            stages=node.retriever.stages,
            inputs=inputs,
            request_filter=None,
            budget=self.budget,
            consistency=self.consistency,
        )
        if outcome.error is not None:
            raise StageFailed(
                f"taxonomy '{self.taxonomy.taxonomy_name}': its retriever "
                f"'{node.retriever.retriever_name}' failed: {outcome.error}"
            )
        return [
            c for c in outcome.candidates if c.collection_id == own(node) and c.score >= min_score
        ]

    def label_of(self, node: Node, hit: Candidate) -> str:
        text_field = node.collection.text_field
        for value in (
            hit.doc.get("label"),
            get_path(hit.doc, "metadata.label"),
            get_path(hit.doc, text_field) if text_field else None,
            node.label,
        ):
            if isinstance(value, str) and value:
                return value
        return hit.document_id

    def match(self, doc: dict[str, Any], top_k: int, min_score: float = 0.0) -> list[Assignment]:
        """The document's assignments, best first: up to top_k for a flat taxonomy, the
        deepest match (one) for a hierarchical one."""
        if self.taxonomy.taxonomy_type == "flat":
            node = self.nodes[0]
            if build_inputs(node.input_mappings, doc) is None:
                self.stats.unmapped += 1
                return []
            out = []
            for hit in self._hits(node, doc, min_score)[:top_k]:
                label = self.label_of(node, hit)
                view = [(_node_view(hit), node.fields)]
                out.append(
                    Assignment(hit.document_id, own(node), label, hit.score, [label], 0, view)
                )
            return out
        chain: list[tuple[Node, Candidate]] = []
        level = self.children.get(None, [])
        while level:
            best: tuple[Node, Candidate] | None = None
            for node in level:
                hits = self._hits(node, doc, min_score)
                if hits and (best is None or hits[0].score > best[1].score):
                    best = (node, hits[0])
            if best is None:
                break
            chain.append(best)
            level = self.children.get(best[0].collection.collection_id, [])
        if not chain:
            return []
        node, hit = chain[-1]
        return [
            Assignment(
                hit.document_id,
                own(node),
                self.label_of(node, hit),
                hit.score,
                [self.label_of(n, h) for n, h in chain],
                len(chain) - 1,
                [(_node_view(h), n.fields) for n, h in chain],
                [
                    {
                        "level": level,
                        "node_id": h.document_id,
                        "collection_id": own(n),
                        "label": self.label_of(n, h),
                        "score": h.score,
                    }
                    for level, (n, h) in enumerate(chain)
                ],
            )
        ]


def inherited_fields(
    specs: dict[str, dict[str, Any]], collection_id: str
) -> list[dict[str, Any]] | None:
    """A hierarchical node's enrichment fields: its own, or else its nearest ancestor's
    (children inherit their parent's); None when no node up to the root declares any."""
    seen: set[str] = set()
    cur: str | None = collection_id
    while cur is not None and cur in specs and cur not in seen:
        seen.add(cur)
        if specs[cur].get("enrichment_fields"):
            return list(specs[cur]["enrichment_fields"])
        cur = specs[cur].get("parent_collection_id")
    return None


def own(node: Node) -> str:
    return node.collection.collection_id


def _node_view(hit: Candidate) -> dict[str, Any]:
    return {k: v for k, v in hit.doc.items() if k not in _IDENTITY}


# -- writing assignments onto documents ---------------------------------------------------------


def _append(doc: dict[str, Any], target: str, value: Any) -> None:
    current = get_path(doc, target)
    items = [] if current is None else list(current) if isinstance(current, list) else [current]
    items.extend(copy.deepcopy(value) if isinstance(value, list) else [copy.deepcopy(value)])
    set_path(doc, target, items)


def apply_enrichment(
    doc: dict[str, Any],
    assignments: list[Assignment],
    fields: list[dict[str, Any]] | None = None,
) -> list[str]:
    """Copies node fields onto `doc`; returns the names written. `fields` (a stage's own)
    replaces the taxonomy's enrichment fields. `replace` fields come from the best match,
    each level of its chain applied root first, so the deepest present value wins; `append`
    ones collect from every match. A level with no fields declared copies its whole node
    document, adding only what `doc` lacks (never overwriting the document's own fields),
    deepest level first so that the deepest match wins there too."""
    written: list[str] = []
    for rank, assignment in enumerate(assignments):
        levels = [(n, fields if fields is not None else f) for n, f in assignment.chain]
        whole = [node_doc for node_doc, declared in levels if declared is None]
        for node_doc in reversed(whole if rank == 0 else []):
            for key, value in node_doc.items():
                if doc.get(key) is None:
                    doc[key] = copy.deepcopy(value)
                    written.append(key)
        for node_doc, declared in levels:
            for spec in declared or []:
                value = get_path(node_doc, spec["field_path"])
                target = spec.get("target_field") or spec["field_path"]
                if value is None or (rank > 0 and spec.get("merge_mode") != "append"):
                    continue
                if spec.get("merge_mode") == "append":
                    _append(doc, target, value)
                else:
                    set_path(doc, target, copy.deepcopy(value))
                written.append(target)
    return list(dict.fromkeys(written))


def annotate(
    doc: dict[str, Any], taxonomy_id: str, assignments: list[Assignment], *, ranked: bool
) -> list[str]:
    """The materialised fields: the best match's `_taxonomy_<id>_id`, `_label` and
    `_score`, and with `ranked` (top_k > 1) every kept match in `_assignments`."""
    if not assignments:
        return []
    prefix, best = field_prefix(taxonomy_id), assignments[0]
    doc[f"{prefix}_id"], doc[f"{prefix}_label"] = best.node_id, best.label
    doc[f"{prefix}_score"] = best.score
    names = [f"{prefix}_id", f"{prefix}_label", f"{prefix}_score"]
    if ranked:
        doc[f"{prefix}_assignments"] = [a.summary() for a in assignments]
        names.append(f"{prefix}_assignments")
    return names
