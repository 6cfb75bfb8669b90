"""How a collection's shard is laid out in Qdrant Edge: vector and memory configuration, our own
payload indexes, points, and the dense search parameters that go with that layout."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qdrant_edge import (
    AcornSearchParams,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    HnswIndexConfig,
    IntegerIndexParams,
    KeywordIndexParams,
    Language,
    Memory,
    Point,
    QuantizationSearchParams,
    ScalarQuantizationConfig,
    ScalarType,
    SearchParams,
    SnowballLanguage,
    SnowballParams,
    TextIndexParams,
    TokenizerType,
    UpdateOperation,
)

from stagewise.domain.records import CollectionRecord
from stagewise.ids import point_id
from stagewise.storage.index.qdrant_filter import payload_index_schema
from stagewise.storage.payload import SEQ_FIELD, TEXT_FIELD
from stagewise.storage.protocols import IndexPoint

_DISTANCES = {"cosine": Distance.Cosine, "dot": Distance.Dot, "euclidean": Distance.Euclid}


def dense_search_params(limit: int, *, acorn: bool = False, exact: bool = False) -> SearchParams:
    # Rescoring with the originals after an oversampled search over int8 codes.
    return SearchParams(
        hnsw_ef=max(128, limit),
        exact=exact,
        quantization=QuantizationSearchParams(rescore=True, oversampling=2.0),
        acorn=AcornSearchParams(enable=True) if acorn else None,
    )


def bm25_text_index() -> TextIndexParams:
    """Word tokens, lower-cased, English stop words, Snowball stemming, BM25 scoring."""
    return TextIndexParams(
        tokenizer=TokenizerType.Word,
        lowercase=True,
        stopwords=Language.English,
        stemmer=SnowballParams(SnowballLanguage.English),
        phrase_matching=True,
        scoring=True,
        enable_hnsw=False,
    )


# Our own payload indexes: not user-declared, so never copied as "extra" between generations.
OWN_FIELDS = (SEQ_FIELD, TEXT_FIELD, "document_id")


def create_shard(path: Path, collection: CollectionRecord, extra: dict[str, str]) -> EdgeShard:
    """A new, empty shard for a collection, with our payload indexes and `extra` ones
    (field -> kind)."""
    # Memory layout, measured at 1M x 384 in bench/build_probe.py: HNSW over int8 scalar
    # quantized vectors kept in RAM, the float32 originals and the payloads on disk (the page
    # cache serves them; rescoring reads 2 x limit originals per search). Serving RSS 1.1 GB
    # instead of 2.1 GB, dense search 1.6 ms instead of 2.7 ms, recall@10 0.978.
    vectors = {
        spec.name: EdgeVectorParams(
            size=spec.dimensions,
            distance=_DISTANCES[spec.distance],
            quantization_config=ScalarQuantizationConfig(
                ScalarType.Int8, quantile=0.99, memory=Memory.Pinned
            ),
            memory=Memory.Cold,
        )
        for spec in collection.vector_indexes
    }
    config = EdgeConfig(
        vectors=vectors,
        # Qdrant needs one vector config; a sparse slot lets text-only collections exist.
        sparse_vectors={"_sparse": EdgeSparseVectorParams()},
        hnsw_config=HnswIndexConfig(m=16, ef_construct=128, full_scan_threshold=10_000),
        payload_memory=Memory.Cold,
    )
    shard = EdgeShard.create(str(path), config)
    # enable_hnsw=False on our own fields: Qdrant otherwise builds extra payload-aware HNSW
    # links for every indexed field, and no vector search is ever filtered on these three.
    # Measured at 100k (bench/build_probe.py): the HNSW build took 50 s instead of 151 s.
    shard.update(
        UpdateOperation.create_field_index(
            SEQ_FIELD, IntegerIndexParams(lookup=False, range=True, enable_hnsw=False)
        )
    )
    shard.update(
        UpdateOperation.create_field_index("document_id", KeywordIndexParams(enable_hnsw=False))
    )
    shard.update(UpdateOperation.create_field_index(TEXT_FIELD, bm25_text_index()))
    for field, kind in extra.items():
        shard.update(UpdateOperation.create_field_index(field, payload_index_schema(kind)))
    return shard


def index_payload(point: IndexPoint) -> dict[str, Any]:
    """What a point stores (both transports): the document's payload and its `seq`, which
    max_seq() orders by."""
    return {**point.payload, SEQ_FIELD: point.seq}


def to_points(points: Sequence[IndexPoint]) -> list[Point]:
    return [Point(point_id(p.document_id), dict(p.vectors), index_payload(p)) for p in points]
