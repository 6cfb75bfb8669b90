"""Data and references for the SearchIndex conformance suite (`search_index.py`): odd
payloads, a filter catalogue with every operator, and the BM25 and dense scores a
transport must reproduce."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping
from typing import Any

from stagewise.domain.records import CollectionRecord, VectorIndexSpec
from stagewise.ids import new_id
from stagewise.storage.index.bm25 import bm25_terms
from stagewise.storage.payload import TEXT_FIELD
from stagewise.storage.protocols import IndexPoint

DIM = 8
TEXT_VECTOR = "text_vec"  # cosine, DIM
IMAGE_VECTOR = "image_vec"  # dot, 4
BM25_K1, BM25_B = 1.2, 0.75


def make_collection(*, vectors: bool = True) -> CollectionRecord:
    """A collection with two named vectors (or none: text only) whose text is `text`."""
    specs = [
        VectorIndexSpec(
            name=TEXT_VECTOR,
            short_name="text",
            feature_uri="mixpeek://test@v1/text",
            dimensions=DIM,
            distance="cosine",
            input_field="text",
        ),
        VectorIndexSpec(
            name=IMAGE_VECTOR,
            short_name="image",
            feature_uri="mixpeek://test@v1/image",
            dimensions=4,
            distance="dot",
        ),
    ]
    return CollectionRecord(
        collection_id=new_id("col_"),
        namespace_id="ns_conformance",
        collection_name=new_id("c_"),
        vector_indexes=specs if vectors else [],
    )


def unit(rng: random.Random, dim: int = DIM) -> list[float]:
    v = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def point(
    document_id: str,
    seq: int,
    payload: Mapping[str, Any],
    vectors: dict[str, list[float]] | None = None,
    *,
    text: str | None = None,
) -> IndexPoint:
    """An index point laid out as `storage.payload.document_payload` lays documents out."""
    body: dict[str, Any] = {
        **payload,
        "document_id": document_id,
        "collection_id": "col_any",
    }
    body.setdefault("metadata", {})
    if text is not None:
        body["text"] = text
        body[TEXT_FIELD] = text
    return IndexPoint(document_id, seq, vectors or {}, body)


# ---------------------------------------------------------------------------------------------
# payloads with every shape a filter meets

_CATEGORIES = ["news", "News", "NEWS", "sports", "tech", "news-flash"]
_TITLES = [
    "The quick brown Fox jumps",
    "running dogs and a lazy cat",
    "Apple pie recipes, x-ray café",
    "généreux report about News",
    "Dogs run; the runner runs",
    "data_set 42 don't panic",
]


def filter_documents(n: int = 36, seed: int = 11) -> list[dict[str, Any]]:
    """Payloads with odd values: missing, null, lists, mixed types, dates, geo points."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        odd = i % 6
        meta: dict[str, Any] = {
            "category": rng.choice(_CATEGORIES)
            if odd
            else rng.choice([None, ["news", "tech"], 7, ""]),
            "count": rng.randint(0, 12) if odd != 1 else rng.choice([5.0, True, "5", [1, 5]]),
            "score": round(rng.uniform(-10, 10), 2),
            "tags": rng.sample(["a", "b", "Alpha", "beta", "gamma-ray"], rng.randint(0, 3)),
            "flag": rng.random() < 0.5 if odd != 2 else rng.choice([1, "true", [True]]),
            "when": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
            f"{rng.randint(0, 23):02d}:30:00Z"
            if odd != 3
            else rng.choice([1704067200, "2023-12-31", None]),
            "loc": {"lat": round(rng.uniform(-60, 60), 3), "lon": round(rng.uniform(-179, 179), 3)}
            if odd != 4
            else rng.choice([{"lat": 200.0, "lon": 0.0}, "x", None]),
            "items": [
                {"sku": rng.choice(["SKU-1", "sku-1", "X9"]), "qty": rng.randint(0, 5)}
                for _ in range(rng.randint(1, 2))
            ],
            "nested": {"level": rng.randint(0, 3)},
        }
        if odd == 5:
            for key in ("category", "count", "tags", "when"):
                meta.pop(key)
        doc: dict[str, Any] = {
            "document_id": f"doc_{i:03d}",
            "title": rng.choice(_TITLES) if odd != 0 else rng.choice([None, 42, _TITLES[:2]]),
            "notes": [rng.choice(_TITLES) for _ in range(rng.randint(1, 2))],
            "metadata": meta,
        }
        docs.append(doc)
    return docs


_RADIUS = {"lat": 0, "lon": 0, "radius_m": 6e6}
_BOX = {"top_left": {"lat": 50, "lon": 150}, "bottom_right": {"lat": -50, "lon": -150}}
_POLYGON = {"points": [{"lat": -40, "lon": -100}, {"lat": 40, "lon": -100}, {"lat": 0, "lon": 100}]}

# Every operator, on the fields and value types it is meant for and on some it is not.
FILTER_CATALOGUE: list[dict[str, Any]] = [
    {"metadata.category": "news"},
    {"field": "metadata.category", "operator": "ne", "value": "news"},
    {"field": "metadata.category", "operator": "in", "value": ["news", "tech", 7]},
    {"field": "metadata.category", "operator": "nin", "value": ["news", "sports"]},
    {"field": "metadata.category", "operator": "starts_with", "value": "ne"},
    {"field": "metadata.category", "operator": "ends_with", "value": "ws"},
    {"field": "metadata.category", "operator": "contains", "value": "ew"},
    {"field": "metadata.category", "operator": "regex", "value": "^n.*s$"},
    {"field": "metadata.category", "operator": "text", "value": "NEWS"},
    {"field": "metadata.tags", "operator": "contains", "value": "a"},
    {"field": "metadata.tags", "operator": "eq", "value": "alpha"},
    {"field": "metadata.count", "operator": "eq", "value": 5},
    {"field": "metadata.count", "operator": "gt", "value": 6},
    {"field": "metadata.count", "operator": "gte", "value": 6},
    {"field": "metadata.count", "operator": "lt", "value": 3.5},
    {"field": "metadata.count", "operator": "lte", "value": 3},
    {"field": "metadata.count", "operator": "in", "value": [1, 2, 5.0]},
    {"field": "metadata.count", "operator": "contains", "value": 5},
    {"field": "metadata.score", "operator": "gt", "value": 0},
    {"field": "metadata.flag", "operator": "eq", "value": True},
    {"field": "metadata.flag", "operator": "ne", "value": False},
    {"field": "metadata.when", "operator": "gte", "value": "2024-06-15T12:00:00+02:00"},
    {"field": "metadata.when", "operator": "lt", "value": "2024-03-01"},
    {"field": "metadata.when", "operator": "exists"},
    {"field": "metadata.category", "operator": "is_null"},
    {"field": "metadata.tags", "operator": "exists", "value": False},
    {"field": "title", "operator": "words", "value": "running dog"},
    {"field": "title", "operator": "phrase", "value": "brown fox"},
    {"field": "notes", "operator": "words", "value": "runner report"},
    {"field": "metadata.loc", "operator": "geo_radius", "value": _RADIUS},
    {"field": "metadata.loc", "operator": "geo_bounding_box", "value": _BOX},
    {"field": "metadata.loc", "operator": "geo_polygon", "value": _POLYGON},
    {"field": "metadata.items[].sku", "operator": "eq", "value": "SKU-1"},
    {"field": "metadata.items[].qty", "operator": "gte", "value": 4},
    {"field": "metadata.nested.level", "operator": "in", "value": [0, 3]},
    {"field": "document_id", "operator": "in", "value": ["doc_001", "doc_007", "doc_999"]},
    {
        "AND": [{"metadata.category": "news"}],
        "OR": [
            {"field": "title", "operator": "ends_with", "value": "s"},
            {"field": "metadata.count", "operator": "gt", "value": 3},
        ],
    },
    {"NOT": [{"field": "metadata.tags", "operator": "in", "value": ["a", "b"]}]},
    {
        "OR": [
            {"field": "metadata.flag", "operator": "eq", "value": True},
            {"AND": [{"metadata.category": "tech"}, {"NOT": [{"metadata.nested.level": 1}]}]},
        ]
    },
]


# ---------------------------------------------------------------------------------------------
# references


def reference_bm25(texts: Mapping[str, str], query: str) -> dict[str, float]:
    """Scores as the embedded text index computes them (`storage/index/bm25.py`'s module
    doc): live statistics over the points with at least one term."""
    docs = {d: bm25_terms(t) for d, t in texts.items()}
    docs = {d: terms for d, terms in docs.items() if terms}
    if not docs:
        return {}
    n = len(docs)
    avgdl = sum(len(t) for t in docs.values()) / n
    freqs = {d: Counter(t) for d, t in docs.items()}
    out: dict[str, float] = {}
    for term in set(bm25_terms(query)):
        df = sum(1 for f in freqs.values() if term in f)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for d, f in freqs.items():
            tf = f[term]
            if tf:
                norm = BM25_K1 * (1 - BM25_B + BM25_B * len(docs[d]) / avgdl)
                out[d] = out.get(d, 0.0) + idf * tf * (BM25_K1 + 1) / (tf + norm)
    return out


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))
