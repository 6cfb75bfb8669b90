"""How a collection is laid out on a Qdrant server: the embedded layout (`layout.py`) in
qdrant_client models, plus the `_bm25` field that carries BM25 (`bm25.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from qdrant_client import models

from stagewise.domain.records import CollectionRecord
from stagewise.ids import point_id
from stagewise.storage.index.bm25 import BM25_FIELD, bm25_text
from stagewise.storage.index.layout import index_payload
from stagewise.storage.payload import SEQ_FIELD, TEXT_FIELD
from stagewise.storage.protocols import IndexPoint

_DISTANCES: Final = {
    "cosine": models.Distance.COSINE,
    "dot": models.Distance.DOT,
    "euclidean": models.Distance.EUCLID,
}
# Our own payload indexes, by kind (as indexed_fields() reports them).
OWN_INDEXES: Final = {SEQ_FIELD: "integer", "document_id": "keyword", BM25_FIELD: "text"}


def collection_config(collection: CollectionRecord) -> dict[str, Any]:
    """create_collection() arguments: a named dense vector per feature, as `create_shard`
    derives them (int8 quantized in RAM, originals and payloads on disk, HNSW m=16)."""
    vectors = {
        spec.name: models.VectorParams(
            size=spec.dimensions,
            distance=_DISTANCES[spec.distance],
            on_disk=True,
            quantization_config=models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, quantile=0.99, always_ram=True
                )
            ),
        )
        for spec in collection.vector_indexes
    }
    return {
        "vectors_config": vectors,
        # Qdrant needs one vector config; a sparse slot lets text-only collections exist.
        "sparse_vectors_config": {"_sparse": models.SparseVectorParams()},
        "hnsw_config": models.HnswConfigDiff(m=16, ef_construct=128, full_scan_threshold=10_000),
        "on_disk_payload": True,
    }


def own_index_schemas() -> dict[str, Any]:
    """Our payload indexes. enable_hnsw=False: no vector search is filtered on them (see
    layout.create_shard)."""
    return {
        SEQ_FIELD: models.IntegerIndexParams(
            type=models.IntegerIndexType.INTEGER, lookup=False, range=True, enable_hnsw=False
        ),
        "document_id": models.KeywordIndexParams(
            type=models.KeywordIndexType.KEYWORD, enable_hnsw=False
        ),
        # The terms are analysed already (bm25.py): the default word tokenizer keeps them.
        BM25_FIELD: models.TextIndexParams(
            type=models.TextIndexType.TEXT,
            tokenizer=models.TokenizerType.WORD,
            lowercase=True,
            scoring=models.TextScoringParams(type=models.TextScoringType.BM25),
            enable_hnsw=False,
        ),
    }


def to_point_structs(points: Sequence[IndexPoint]) -> list[models.PointStruct]:
    out = []
    for p in points:
        payload = index_payload(p)
        text = payload.get(TEXT_FIELD)
        if isinstance(text, str):
            payload[BM25_FIELD] = bm25_text(text)
        vectors: Any = dict(p.vectors)
        out.append(models.PointStruct(id=point_id(p.document_id), vector=vectors, payload=payload))
    return out


def dense_search_params(limit: int, *, acorn: bool, exact: bool) -> models.SearchParams:
    # As layout.dense_search_params: rescoring with the originals after an oversampled
    # search over the int8 codes.
    return models.SearchParams(
        hnsw_ef=max(128, limit),
        exact=exact,
        quantization=models.QuantizationSearchParams(rescore=True, oversampling=2.0),
        acorn=models.AcornSearchParams(enable=True) if acorn else None,
    )
